//! One running Node child: its process, the handshake, and the connection that
//! multiplexes requests over its lanes.
//!
//! The connection ([`WorkerConn`]) is shared by every HTTP thread that sends it a
//! request; it holds the writers and the table of requests in flight. Each HTTP thread
//! sends its requests on its own lane and reads their responses there, in a task on that
//! thread ([`WorkerConn::read_lane`]); stdin/stdout carry the control frames (handshake,
//! heartbeats, logs, helper calls), read by one task on the supervisor's thread
//! ([`WorkerConn::read_control`]). Anything the child does wrong — a malformed line, an
//! unknown or misplaced frame, more body than its flow-control window allows — is a
//! fault: the child is killed and the supervisor restarts it. A worker is trusted with
//! nothing.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use slog::{debug, error, info, o, warn, Logger};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt as _, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio_util::codec::FramedRead;

use super::frame_writer::{FrameWriter, QueueFull};
use super::log_limit::LogLimit;
use super::lane::{self, Lane};
use crate::config::Config;
use crate::helpers::{HelperBudget, Helpers};
use crate::protocol::{
    CancelReason, Endpoint, FrameDecoder, FromShim, LoadError, ProtocolError, RequestHead, Sources, ToShim,
    PROTOCOL_VERSION,
};
use crate::registry::WidgetSource;
use crate::sandbox::WorkerPaths;

/// How many request-body bytes the gateway sends ahead of the shim's acks.
pub const REQUEST_WINDOW: usize = 256 * 1024;
/// How many response-body bytes the shim may send ahead of the gateway's acks.
pub const RESPONSE_WINDOW: usize = 256 * 1024;

/// Helper calls one worker may have running in the gateway at once; a widget that floods
/// the gateway with more is treated as faulty.
const MAX_CALLS: usize = 1024;
/// Most bytes that may wait for a worker to read its stdin: twice a helper result of the
/// largest size, far above what a reading worker ever lets pile up.
const MAX_CONTROL_QUEUE: usize = 128 * 1024 * 1024;

/// The status line and headers of a response, with its whole body when `end`.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// The widget's own reason phrase, when it set one.
    pub reason: Option<String>,
    /// Header values are written as UTF-8 instead of latin-1.
    pub utf8: bool,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub end: bool,
}

/// Why a request lost its worker: the child exited, was killed, or broke the protocol.
#[derive(Debug, Clone)]
pub struct WorkerGone(pub String);

impl std::fmt::Display for WorkerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkerGone {}

/// The gateway's side of one request in flight, as the reader task sees it.
struct Inflight {
    /// The lane the request travels on; its cancel must follow it there.
    lane: Arc<FrameWriter>,
    head: Option<oneshot::Sender<Result<ResponseHead, WorkerGone>>>,
    body: mpsc::UnboundedSender<Result<Bytes, WorkerGone>>,
    request_credit: Arc<Semaphore>,
    response_outstanding: Arc<AtomicUsize>,
}

/// The receiving ends handed to the gateway when a request starts.
pub struct RequestChannels {
    pub id: u64,
    /// Where the request's further frames (body, acks) go.
    pub lane: Arc<FrameWriter>,
    pub head: oneshot::Receiver<Result<ResponseHead, WorkerGone>>,
    pub body: mpsc::UnboundedReceiver<Result<Bytes, WorkerGone>>,
    pub request_credit: Arc<Semaphore>,
    pub response_outstanding: Arc<AtomicUsize>,
}

/// A live connection to one widget child.
pub struct WorkerConn {
    pub pid: u32,
    control: Arc<FrameWriter>,
    lanes: Vec<Lane>,
    /// Lane readers still running; the child's end is reported once they have read
    /// everything it wrote.
    lanes_reading: AtomicUsize,
    lane_ended: Notify,
    /// The first protocol fault a lane reader found (it then killed the child).
    fault: Mutex<Option<ProtocolError>>,
    inflight: Mutex<HashMap<u64, Inflight>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Resident memory and V8 heap reported by the last `pong`.
    pub rss: AtomicU64,
    pub heap: AtomicU64,
    last_pong: AtomicU64,
    calls_inflight: AtomicUsize,
    /// What its helper calls hold of the gateway's memory.
    helper_budget: HelperBudget,
}

impl Drop for WorkerConn {
    /// The last handle on this worker is gone: its stdin and lanes close once their
    /// queues are written.
    fn drop(&mut self) {
        self.control.close();
        for lane in &self.lanes {
            lane.close();
        }
    }
}

impl WorkerConn {
    /// Sends a control frame. A send is lost only once the child is gone (the reader
    /// notices the same and fails every request) or when the child has left too much of
    /// its input unread, which is a fault.
    pub fn send(&self, frame: &ToShim) {
        if let Err(QueueFull(waiting)) = self.control.send_within(&frame.encode(), MAX_CONTROL_QUEUE) {
            self.fail(ProtocolError(format!("the worker does not read its input: {waiting} bytes were waiting for it")));
        }
    }

    /// Registers a request and sends its `req` frame on the calling thread's lane.
    /// `None` when the worker is closing.
    pub fn start(self: &Arc<Self>, mut head: RequestHead) -> Option<RequestChannels> {
        let lane = self.open_lane()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        head.id = id;
        head.window = RESPONSE_WINDOW;
        let (head_tx, head_rx) = oneshot::channel();
        let (body_tx, body_rx) = mpsc::unbounded_channel();
        let request_credit = Arc::new(Semaphore::new(REQUEST_WINDOW));
        let response_outstanding = Arc::new(AtomicUsize::new(0));
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            inflight.insert(
                id,
                Inflight {
                    lane: lane.clone(),
                    head: Some(head_tx),
                    body: body_tx,
                    request_credit: request_credit.clone(),
                    response_outstanding: response_outstanding.clone(),
                },
            );
        }
        lane.send(&ToShim::Req(head).encode());
        Some(RequestChannels { id, lane, head: head_rx, body: body_rx, request_credit, response_outstanding })
    }

    /// The calling thread's lane, opened (and its reader started on this thread) on
    /// first use. `None` when it cannot be opened; the worker is then treated as broken.
    fn open_lane(self: &Arc<Self>) -> Option<Arc<FrameWriter>> {
        let lane = &self.lanes[lane::for_this_thread(self.lanes.len())];
        match lane.open() {
            Ok(lane::Opened { writer, reader }) => {
                if let Some(reader) = reader {
                    self.lanes_reading.fetch_add(1, Ordering::AcqRel);
                    actix_web::rt::spawn(self.clone().read_lane(reader));
                }
                Some(writer)
            }
            Err(e) => {
                self.fail(ProtocolError(format!("cannot open a lane to the worker: {e}")));
                None
            }
        }
    }

    /// Gives up on a request: forgets it and tells the shim, unless it already finished.
    pub fn cancel(&self, id: u64, reason: CancelReason) {
        if let Some(entry) = self.take(id) {
            entry.lane.send(&ToShim::Cancel { id, reason }.encode());
        }
    }

    /// Records `fault` and kills the child; the supervisor reports it and restarts.
    fn fail(&self, fault: ProtocolError) {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(fault);
        // The supervisor reaps the child only after closing the connection, so while it
        // is open this pid is still the child's and cannot name another process.
        if self.pid != 0 && !self.closed.load(Ordering::Acquire) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }

    pub fn inflight_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Inflight>> {
        // The table holds plain data; a panic elsewhere cannot leave it inconsistent.
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a finished or abandoned request; closing its credit stops the body pump.
    fn take(&self, id: u64) -> Option<Inflight> {
        let entry = self.lock().remove(&id);
        if let Some(entry) = &entry {
            entry.request_credit.close();
        }
        entry
    }

    /// Fails every request in flight with `reason` and refuses new ones.
    pub fn close(&self, reason: &WorkerGone) {
        let drained: Vec<Inflight> = {
            let mut inflight = self.lock();
            self.closed.store(true, Ordering::Release);
            inflight.drain().map(|(_, v)| v).collect()
        };
        for mut entry in drained {
            entry.request_credit.close();
            match entry.head.take() {
                Some(head) => {
                    let _ = head.send(Err(reason.clone()));
                }
                None => {
                    let _ = entry.body.send(Err(reason.clone()));
                }
            }
        }
    }

    /// Reads the control frames on the child's stdout until it closes it or breaks the
    /// protocol.
    async fn read_control(
        self: Arc<Self>,
        mut frames: FramedRead<ChildStdout, FrameDecoder>,
        helpers: Rc<Helpers>,
        log: Logger,
    ) -> Result<(), ProtocolError> {
        let mut log_limit = LogLimit::new();
        while let Some(frame) = frames.next().await {
            let (frame, _) = frame?;
            self.handle_control(frame, &helpers, &mut log_limit, &log)?;
        }
        Ok(())
    }

    /// Reads the response frames on one lane until the child closes it; a fault kills
    /// the child.
    async fn read_lane(self: Arc<Self>, lane: impl AsyncRead + Unpin) {
        let mut frames = FramedRead::new(lane, FrameDecoder::default());
        while let Some(frame) = frames.next().await {
            let handled = frame.and_then(|(frame, payload)| self.handle_response(frame, payload));
            if let Err(fault) = handled {
                self.fail(fault);
                break;
            }
        }
        self.lanes_reading.fetch_sub(1, Ordering::AcqRel);
        self.lane_ended.notify_waiters();
    }

    /// Frames for a request that already ended or was cancelled are normal (the shim may
    /// have answered while the cancel was on its way); frames for an id the gateway never
    /// issued are not.
    fn check_issued(&self, id: u64) -> Result<(), ProtocolError> {
        if id >= self.next_id.load(Ordering::Relaxed) {
            return Err(ProtocolError(format!("frame for request {id}, which was never sent")));
        }
        Ok(())
    }

    /// Handles one frame read on a lane, with the body bytes that followed it.
    fn handle_response(&self, frame: FromShim, payload: Bytes) -> Result<(), ProtocolError> {
        if let FromShim::Head { id, .. } | FromShim::Chunk { id, .. } | FromShim::End { id, .. } | FromShim::Ack { id, .. } = &frame {
            self.check_issued(*id)?;
        }
        match frame {
            FromShim::Head { id, status, reason, headers, utf8, end, .. } => {
                let mut table = self.lock();
                let Some(entry) = table.get_mut(&id) else { return Ok(()) };
                let Some(head_tx) = entry.head.take() else {
                    return Err(ProtocolError(format!("second head for request {id}")));
                };
                if !(100..=999).contains(&status) {
                    return Err(ProtocolError(format!("invalid status {status} for request {id}")));
                }
                // A body in a head that does not end is the first chunk of a stream.
                let body = if end || payload.is_empty() {
                    payload
                } else {
                    self.charge_window(entry, id, payload.len())?;
                    let _ = entry.body.send(Ok(payload));
                    Bytes::new()
                };
                drop(table);
                if end {
                    self.take(id);
                }
                let _ = head_tx.send(Ok(ResponseHead { status, reason, headers, utf8, body, end }));
            }
            FromShim::Chunk { id, .. } => {
                let mut table = self.lock();
                let Some(entry) = table.get_mut(&id) else { return Ok(()) };
                if entry.head.is_some() {
                    return Err(ProtocolError(format!("body chunk before head for request {id}")));
                }
                self.charge_window(entry, id, payload.len())?;
                let _ = entry.body.send(Ok(payload));
            }
            FromShim::End { id, abort } => match self.take(id) {
                Some(Inflight { head: Some(_), .. }) => {
                    return Err(ProtocolError(format!("end before head for request {id}")));
                }
                Some(entry) if abort => {
                    let _ = entry.body.send(Err(WorkerGone("the handler destroyed the response".into())));
                }
                _ => {}
            },
            FromShim::Ack { id, bytes } => {
                if let Some(entry) = self.lock().get(&id) {
                    if bytes > REQUEST_WINDOW {
                        return Err(ProtocolError(format!("ack of {bytes} bytes exceeds the window")));
                    }
                    entry.request_credit.add_permits(bytes);
                }
            }
            other => return Err(ProtocolError(format!("{} frame on a lane", other.kind()))),
        }
        Ok(())
    }

    fn handle_control(
        self: &Arc<Self>,
        frame: FromShim,
        helpers: &Rc<Helpers>,
        log_limit: &mut LogLimit,
        log: &Logger,
    ) -> Result<(), ProtocolError> {
        match frame {
            FromShim::Call { cid, id, helper, function, args } => {
                self.check_issued(id)?;
                if self.calls_inflight.fetch_add(1, Ordering::AcqRel) >= MAX_CALLS {
                    return Err(ProtocolError(format!("more than {MAX_CALLS} helper calls at once")));
                }
                let conn = self.clone();
                let helpers = helpers.clone();
                let log = log.new(o!("request" => id, "helper" => helper.clone(), "fn" => function.clone()));
                actix_web::rt::spawn(async move {
                    let result = helpers.call(&helper, &function, args, &conn.helper_budget, &log).await;
                    conn.calls_inflight.fetch_sub(1, Ordering::AcqRel);
                    conn.send(&ToShim::Ret { cid, result });
                });
            }
            FromShim::Log { level, category, msg } => {
                if !log_limit.allow(msg.len(), log, "widget logged") {
                    return Ok(());
                }
                let category = category.unwrap_or_else(|| "WidgetBackend".into());
                match level.as_str() {
                    "error" => error!(log, "{}", msg; "category" => category),
                    "warn" | "warning" => warn!(log, "{}", msg; "category" => category),
                    "info" => info!(log, "{}", msg; "category" => category),
                    _ => debug!(log, "{}", msg; "category" => category, "widget_level" => level),
                }
            }
            FromShim::Pong { seq, rss, heap } => {
                self.rss.store(rss, Ordering::Relaxed);
                self.heap.store(heap, Ordering::Relaxed);
                self.last_pong.store(seq, Ordering::Relaxed);
            }
            FromShim::Hello { .. } => return Err(ProtocolError("unexpected second hello".into())),
            other => return Err(ProtocolError(format!("{} frame on the control channel", other.kind()))),
        }
        Ok(())
    }

    /// Waits (up to `limit`) until every lane reader has read what the child wrote before
    /// it exited, so that no finished response is failed with the worker.
    async fn lanes_drained(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let ended = self.lane_ended.notified();
                if self.lanes_reading.load(Ordering::Acquire) == 0 {
                    return;
                }
                ended.await;
            }
        })
        .await;
    }

    fn charge_window(&self, entry: &Inflight, id: u64, len: usize) -> Result<(), ProtocolError> {
        let outstanding = entry.response_outstanding.fetch_add(len, Ordering::AcqRel) + len;
        if outstanding > RESPONSE_WINDOW {
            return Err(ProtocolError(format!(
                "request {id}: {outstanding} response bytes sent ahead of acks (window {RESPONSE_WINDOW})"
            )));
        }
        Ok(())
    }
}

/// Why a worker could not be brought up.
#[derive(Debug)]
pub enum StartError {
    /// The backend itself is broken: restarting will not help until the file changes.
    Load(LoadError),
    /// The process could not be started or did not complete the handshake.
    Spawn(String),
}

/// A started worker: its connection, what the backend registered, and the process.
pub struct Running {
    pub conn: Arc<WorkerConn>,
    pub endpoints: Vec<Endpoint>,
    /// The widget's files as this worker loaded them, when the shim could carry them.
    pub sources: Option<Sources>,
    /// Where it loaded them from.
    pub paths: WorkerPaths,
    child: Child,
    reader: tokio::task::JoinHandle<Result<(), ProtocolError>>,
    pings_sent: u64,
    pub started: std::time::Instant,
}

/// Starts the child with `command` and its lanes, performs the handshake and starts the
/// control reader (lane readers start with the first request on each lane). With
/// `pinned`, the backend loads from those texts rather than from its folder.
pub async fn start(
    config: &Config,
    mut command: tokio::process::Command,
    source: &WidgetSource,
    paths: &WorkerPaths,
    pinned: Option<&Sources>,
    helpers: Rc<Helpers>,
    log: &Logger,
) -> Result<Running, StartError> {
    // One per HTTP thread; at least one, should the config not have been finished.
    let lanes = lane::Pending::new(config.server.threads.max(1))
        .map_err(|e| StartError::Spawn(format!("cannot create the worker's lanes: {e}")))?;
    let child_fds = lanes.child_fds();
    // SAFETY: place_in_child only makes system calls (dup2) on descriptors opened above.
    unsafe {
        command.pre_exec(move || lane::place_in_child(&child_fds));
    }
    let mut child = command
        .spawn()
        .map_err(|e| StartError::Spawn(format!("cannot start `{}`: {e}", config.workers.node.display())))?;
    let lanes = lanes.spawned();
    let pid = child.id().unwrap_or(0);
    let log = log.new(o!("pid" => pid));
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(StartError::Spawn("child has no stdio pipes".into()));
    };

    actix_web::rt::spawn(log_stderr(stderr, log.clone()));

    let (control, drain) = stdin
        .as_fd()
        .try_clone_to_owned()
        .and_then(|pipe| FrameWriter::new(pipe, stdin))
        .map_err(|e| StartError::Spawn(format!("cannot set up the worker's stdin: {e}")))?;
    actix_web::rt::spawn(drain);
    let hello = ToShim::Hello {
        v: PROTOCOL_VERSION,
        widget: source.id.clone(),
        backend: paths.backend.display().to_string(),
        modules_dir: paths.modules_dir.display().to_string(),
        allowed_modules: config.widgets.allowed_modules.clone(),
        allowed_builtins: config.widgets.allowed_builtins.clone(),
        lanes: lanes.len(),
        sources: pinned.cloned(),
    };
    control.send(&hello.encode());

    let mut frames = FramedRead::new(stdout, FrameDecoder::default());
    let first = tokio::time::timeout(config.workers.startup_timeout, frames.next()).await;
    let (endpoints, sources) = match first {
        Err(_) => {
            return Err(StartError::Spawn(format!(
                "no handshake within {}",
                humantime::format_duration(config.workers.startup_timeout)
            )))
        }
        Ok(None) => {
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let how = match status {
                Ok(Ok(status)) => status.to_string(),
                _ => "closed its output".into(),
            };
            return Err(StartError::Spawn(format!("worker exited before the handshake ({how}); see its stderr above")));
        }
        Ok(Some(Err(e))) => return Err(StartError::Spawn(format!("bad handshake: {e}"))),
        Ok(Some(Ok((frame, _)))) => match frame {
            FromShim::Hello { error: Some(error), .. } => return Err(StartError::Load(error)),
            FromShim::Hello { v, .. } if v != PROTOCOL_VERSION => {
                return Err(StartError::Spawn(format!(
                    "shim speaks protocol version {v}, gateway speaks {PROTOCOL_VERSION}: reinstall node-shim"
                )))
            }
            FromShim::Hello { endpoints, sources, .. } => {
                let mut endpoints = endpoints.unwrap_or_default();
                endpoints.sort();
                endpoints.dedup();
                (endpoints, sources)
            }
            other => return Err(StartError::Spawn(format!("expected hello, got {other:?}"))),
        },
    };

    let input = control.clone();
    let conn = Arc::new(WorkerConn {
        pid,
        control,
        lanes,
        lanes_reading: AtomicUsize::new(0),
        lane_ended: Notify::new(),
        fault: Mutex::new(None),
        inflight: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        closed: AtomicBool::new(false),
        rss: AtomicU64::new(0),
        heap: AtomicU64::new(0),
        last_pong: AtomicU64::new(0),
        calls_inflight: AtomicUsize::new(0),
        helper_budget: HelperBudget::new(move || input.waiting()),
    });
    let reader = actix_web::rt::spawn(conn.clone().read_control(frames, helpers, log));
    Ok(Running { conn, endpoints, sources, paths: paths.clone(), child, reader, pings_sent: 0, started: std::time::Instant::now() })
}

/// Longest stderr line logged whole; the rest of a longer one is cut.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// Logs what a worker writes to its stderr (Node's own fatal errors: the shim turns the
/// widget's console into log frames) a line at a time. A widget can write there directly
/// too (`process._rawDebug`), so lines are cut at [`MAX_STDERR_LINE`] and held to the
/// same allowance as its log frames.
async fn log_stderr(stderr: ChildStderr, log: Logger) {
    let mut reader = BufReader::new(stderr);
    let mut limit = LogLimit::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte more than a line may hold, to tell a line that long from a longer one.
        match (&mut reader).take(MAX_STDERR_LINE as u64 + 1).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cut = !line.ends_with(b"\n") && line.len() > MAX_STDERR_LINE;
        if cut && skip_rest_of_line(&mut reader).await.is_err() {
            return;
        }
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_STDERR_LINE)]);
        let text = text.trim_end_matches(['\n', '\r']);
        if limit.allow(text.len(), &log, "worker wrote to stderr") {
            let suffix = if cut { format!(" … (line cut at {} KiB)", MAX_STDERR_LINE >> 10) } else { String::new() };
            warn!(log, "{}{}", text, suffix; "stream" => "stderr");
        }
    }
}

async fn skip_rest_of_line(reader: &mut BufReader<ChildStderr>) -> std::io::Result<()> {
    loop {
        let buffered = reader.fill_buf().await?;
        if buffered.is_empty() {
            return Ok(());
        }
        match buffered.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffered.len();
                reader.consume(all);
            }
        }
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.conn.pid
    }

    /// The state that publishes this worker as serving.
    pub fn ready_state(&self, reload_error: Option<LoadError>) -> super::WidgetState {
        super::WidgetState::Ready { workers: vec![self.conn.clone()], endpoints: self.endpoints.clone(), reload_error }
    }

    /// Watches the worker until it dies, is found hung or breaks the protocol — returning
    /// why — or until `control` changes (`None`; the worker is still running).
    ///
    /// Hung means three heartbeats without a sign of life: no pong, and none of its input
    /// read either. A ping waits on stdin behind whatever was sent before it (megabytes
    /// of helper results, say), so a worker still working through those is reading, not
    /// hung, even though its pong is late.
    pub async fn watch<T>(&mut self, heartbeat: Duration, control: &mut watch::Receiver<T>) -> Option<WorkerGone> {
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After each ping: what the child had been given, and whether more was waiting
        // (the pipe full). Behind such a backlog, anything more the pipe takes the child read.
        let mut written_at_ping = 0;
        let mut backlog_at_ping = false;
        let mut reading_at_ping = 0;
        loop {
            tokio::select! {
                // The child's exit shows up as the end of its output, after every frame it
                // wrote before dying has been delivered.
                result = &mut self.reader => {
                    self.conn.lanes_drained(Duration::from_secs(1)).await;
                    let lane_fault = self.conn.fault.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let fault = match (lane_fault, result) {
                        (Some(fault), _) | (None, Ok(Err(fault))) => Some(format!("protocol fault: {fault}")),
                        (None, Ok(Ok(()))) => None,
                        (None, Err(e)) => Some(format!("reader failed: {e}")),
                    };
                    let status = match fault {
                        Some(_) => None,
                        None => tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await.ok(),
                    };
                    return Some(WorkerGone(match (fault, status) {
                        (Some(fault), _) => fault,
                        (None, Some(Ok(status))) => format!("worker exited ({status})"),
                        (None, Some(Err(e))) => format!("worker lost: {e}"),
                        (None, None) => "worker closed its output".into(),
                    }));
                }
                changed = control.changed() => {
                    if changed.is_err() {
                        return Some(WorkerGone("its supervisor went away".into()));
                    }
                    return None;
                }
                _ = ticker.tick() => {
                    let sent = self.pings_sent;
                    if backlog_at_ping && self.conn.control.written() > written_at_ping {
                        reading_at_ping = sent;
                    }
                    let alive_at = self.conn.last_pong.load(Ordering::Relaxed).max(reading_at_ping);
                    if sent >= 3 && alive_at + 3 <= sent {
                        return Some(WorkerGone(format!(
                            "worker did not answer heartbeats for {}",
                            humantime::format_duration(heartbeat * 3)
                        )));
                    }
                    self.pings_sent += 1;
                    self.conn.send(&ToShim::Ping { seq: self.pings_sent });
                    written_at_ping = self.conn.control.written();
                    backlog_at_ping = self.conn.control.waiting() > 0;
                }
            }
        }
    }

    /// Kills the worker at once; whatever it still had in flight fails with `reason`.
    pub async fn stop(mut self, reason: &WorkerGone) {
        self.conn.close(reason);
        self.reader.abort();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Lets the requests in flight finish (up to `grace`), then stops the worker. New
    /// requests already go elsewhere; this is how a replaced version bows out.
    pub async fn retire(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        // A request routed just before the swap may still be on its way to this worker.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while self.conn.inflight_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop(&WorkerGone("replaced by a newer version".into())).await;
    }
}
