//! Per-widget workers: starting them, keeping them alive, and deciding whether a widget
//! can take a request right now.
//!
//! Each widget with a backend gets one supervising task (on the gateway's main thread)
//! that starts its Node child, publishes what the backend registered, and restarts the
//! child with exponential backoff when it dies. A backend that fails to load is not
//! restarted: it stays failed, with its load error, until its files change. Once a
//! version has loaded, though, the widget keeps it: the shim hands back the text of every
//! file the load read, and a restart after a crash, or a start whose folder no longer
//! loads, runs that last good version from those texts (reporting the folder's error).
//! Whatever happens to one widget's child touches only that widget's requests.

mod exchange;
mod frame_writer;
mod lane;
mod log_limit;
mod shim_check;
mod worker;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use slog::{error, info, o, warn, Logger};
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

pub use exchange::{BodyTooLarge, Exchange};
pub use shim_check::check_installed as check_shim_installed;
pub use worker::{WorkerConn, WorkerGone};

use crate::config::Config;
use crate::helpers::Helpers;
use crate::protocol::{Endpoint, LoadError, Sources};
use crate::registry::{self, WidgetSource};
use crate::sandbox::{Sandbox, WorkerPaths};

/// What a widget can do right now.
#[derive(Clone)]
pub enum WidgetState {
    /// The widget folder has no backend file.
    NoBackend,
    Starting,
    /// Serving on `workers` (one per pool slot that is up). `reload_error` is set when a
    /// newer version of the backend failed to load and this, the last good one, kept
    /// serving.
    Ready { workers: Vec<Arc<WorkerConn>>, endpoints: Vec<Endpoint>, reload_error: Option<LoadError> },
    /// The backend does not load; it stays so until its files change.
    LoadFailed(LoadError),
    /// The worker died and is waiting out its backoff before the next start.
    Restarting { until: Instant, reason: String },
}

/// What the supervisor asks of a widget's task: each change of `generation` means "the
/// files changed, load them again"; `stop` means "retire the worker and end".
#[derive(Clone, Copy, Default)]
struct Control {
    generation: u64,
    stop: bool,
}

/// The version a slot last had serving, kept to start it again as it loaded.
struct LastGood {
    sources: Sources,
    /// The paths it loaded from (they name its files in `sources`).
    paths: WorkerPaths,
    /// Why the newer version in the folder does not load, reported while this one serves.
    reload_error: Option<LoadError>,
}

impl LastGood {
    /// What `running` loaded, if its shim could carry its files (a widget whose files are
    /// too large for that restarts from its folder).
    fn of(running: &mut worker::Running) -> Option<LastGood> {
        running.sources.take().map(|sources| LastGood { sources, paths: running.paths.clone(), reload_error: None })
    }
}

/// One widget: its pool of workers (`workers.per_widget` slots, each supervised on its
/// own) and their history.
pub struct Widget {
    pub source: WidgetSource,
    slots: Vec<RwLock<WidgetState>>,
    pub restarts: AtomicU64,
    admission: Admission,
    control: watch::Sender<Control>,
    /// The fingerprint of the files the current generation was asked to load.
    fingerprint: AtomicU64,
    /// Set by a rescan that asked for a reload, cleared once the widget has dealt with it.
    reload_pending: AtomicBool,
    /// The uid/gid its workers run as, when the sandbox switches users.
    identity: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
}

impl Widget {
    fn new(source: WidgetSource, config: &Config, identity: Option<(nix::unistd::Uid, nix::unistd::Gid)>) -> Widget {
        let state = if source.backend.is_some() { WidgetState::Starting } else { WidgetState::NoBackend };
        Widget {
            fingerprint: AtomicU64::new(source.fingerprint),
            source,
            slots: (0..config.workers.per_widget).map(|_| RwLock::new(state.clone())).collect(),
            restarts: AtomicU64::new(0),
            admission: Admission {
                slots: Arc::new(Semaphore::new(config.workers.max_inflight)),
                queue: Semaphore::new(config.workers.queue_limit),
            },
            control: watch::Sender::new(Control::default()),
            reload_pending: AtomicBool::new(false),
            identity,
        }
    }

    /// The widget's state as its pool adds up: serving if any worker serves (on all that
    /// do), else restarting, else failed to load, else starting.
    pub fn state(&self) -> WidgetState {
        let slots: Vec<WidgetState> = self.slots.iter().map(|s| s.read().unwrap_or_else(|p| p.into_inner()).clone()).collect();
        let mut ready: Option<WidgetState> = None;
        for slot in &slots {
            if let WidgetState::Ready { workers, endpoints, reload_error } = slot {
                match &mut ready {
                    Some(WidgetState::Ready { workers: all, .. }) => all.extend(workers.iter().cloned()),
                    _ => ready = Some(WidgetState::Ready { workers: workers.clone(), endpoints: endpoints.clone(), reload_error: reload_error.clone() }),
                }
            }
        }
        if let Some(ready) = ready {
            return ready;
        }
        let restarting = slots.iter().filter_map(|s| match s {
            WidgetState::Restarting { until, reason } => Some((*until, reason.clone())),
            _ => None,
        });
        if let Some((until, reason)) = restarting.min_by_key(|(until, _)| *until) {
            return WidgetState::Restarting { until, reason };
        }
        slots
            .iter()
            .find(|s| matches!(s, WidgetState::LoadFailed(_)))
            .or_else(|| slots.first())
            .cloned()
            .unwrap_or(WidgetState::NoBackend)
    }

    /// The least busy worker serving an endpoint `service`/`method`; read in place, since
    /// this runs for every request.
    fn least_busy_worker(&self, service: &str, method: &str) -> Option<Arc<WorkerConn>> {
        let mut best: Option<(usize, Arc<WorkerConn>)> = None;
        for slot in &self.slots {
            let slot = slot.read().unwrap_or_else(|p| p.into_inner());
            let WidgetState::Ready { workers, endpoints, .. } = &*slot else { continue };
            if !endpoints.iter().any(|e| e.name == service && e.method == method) {
                continue;
            }
            for worker in workers {
                let load = worker.inflight_count();
                if best.as_ref().map_or(true, |(least, _)| load < *least) {
                    best = Some((load, worker.clone()));
                }
            }
        }
        best.map(|(_, worker)| worker)
    }

    /// Why no worker of the widget can take a request right now, as the gateway answers it.
    fn why_not_routable(&self) -> RouteError {
        match self.state() {
            WidgetState::NoBackend => RouteError::NoBackend,
            WidgetState::LoadFailed(e) => RouteError::LoadFailed(e),
            WidgetState::Starting => RouteError::Unavailable { reason: "is starting".into(), retry_after: Duration::from_secs(1) },
            WidgetState::Restarting { until, reason } => RouteError::Unavailable {
                reason: format!("is restarting after a crash ({reason})"),
                retry_after: until.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)),
            },
            WidgetState::Ready { endpoints, .. } => RouteError::NoEndpoint { available: endpoints },
        }
    }

    fn set_state(&self, slot: usize, state: WidgetState) {
        if let Some(slot) = self.slots.get(slot) {
            *slot.write().unwrap_or_else(|p| p.into_inner()) = state;
        }
    }

    fn settling(&self) -> bool {
        self.reload_pending.load(Ordering::Acquire)
            || self.slots.iter().any(|s| matches!(*s.read().unwrap_or_else(|p| p.into_inner()), WidgetState::Starting))
    }
}

/// Bounds the work one widget can queue in the gateway: `max_inflight` requests run at
/// once, up to `queue_limit` more wait, and beyond that requests are refused at once.
struct Admission {
    slots: Arc<Semaphore>,
    /// Places in the queue. A place is a permit, given back however the wait ends (a
    /// slot, the timeout, or the gateway dropping the request when its client goes away).
    queue: Semaphore,
}

/// Why a request cannot be routed to a widget, in the terms the gateway answers with.
#[derive(Debug)]
pub enum RouteError {
    NoWidget,
    NoBackend,
    NoEndpoint { available: Vec<Endpoint> },
    LoadFailed(LoadError),
    Unavailable { reason: String, retry_after: Duration },
}

/// What a rescan changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

pub struct Supervisor {
    config: Arc<Config>,
    pub sandbox: Arc<Sandbox>,
    widgets: RwLock<BTreeMap<String, Arc<Widget>>>,
    settled: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Rescans are carried out on the main thread, where the workers' tasks and the
    /// helpers' (thread-bound) HTTP clients live; any thread may ask for one.
    rescans: mpsc::UnboundedSender<oneshot::Sender<ReloadSummary>>,
    log: Logger,
}

impl Supervisor {
    /// Scans the widget folders and starts a worker for every backend. Returns once every
    /// widget has either registered its endpoints or reported why it cannot.
    pub async fn start(config: Arc<Config>, sandbox: Arc<Sandbox>, helpers: Rc<Helpers>, log: Logger) -> Arc<Supervisor> {
        let (rescans, mut requests) = mpsc::unbounded_channel::<oneshot::Sender<ReloadSummary>>();
        let supervisor = Arc::new(Supervisor {
            config,
            sandbox,
            widgets: RwLock::new(BTreeMap::new()),
            settled: Notify::new(),
            tasks: Mutex::new(Vec::new()),
            rescans,
            log,
        });
        let rescanner = supervisor.clone();
        actix_web::rt::spawn(async move {
            while let Some(reply) = requests.recv().await {
                let _ = reply.send(rescanner.rescan(&helpers).await);
            }
        });
        supervisor.reload().await;
        supervisor
    }

    /// Rescans the widget folders and brings the running widgets in line: new widgets
    /// start, removed ones retire, changed ones load their new version beside the old
    /// one, which keeps serving until the new one is ready (or for good, if the new one
    /// does not load). Returns once every widget has settled.
    pub async fn reload(&self) -> ReloadSummary {
        let (reply, summary) = oneshot::channel();
        if self.rescans.send(reply).is_err() {
            return ReloadSummary::default();
        }
        summary.await.unwrap_or_default()
    }

    async fn rescan(self: &Arc<Self>, helpers: &Rc<Helpers>) -> ReloadSummary {
        // Off the main thread: a walk of a hung network mount must not stall the workers'
        // supervision and the helpers that run here.
        let config = self.config.clone();
        let scan = match tokio::task::spawn_blocking(move || registry::scan(&config.widgets)).await {
            Ok(scan) => scan,
            Err(e) => {
                error!(self.log, "rescanning the widget folders failed, nothing changed: {}", e);
                return ReloadSummary::default();
            }
        };
        for warning in &scan.warnings {
            warn!(self.log, "{}", warning);
        }
        let mut summary = ReloadSummary::default();
        let current = self.widgets.read().unwrap_or_else(|p| p.into_inner()).clone();
        for (id, widget) in &current {
            let replaced = match scan.widgets.get(id) {
                None => true,
                Some(source) => source.dir != widget.source.dir || source.backend != widget.source.backend,
            };
            if replaced {
                widget.control.send_modify(|c| c.stop = true);
                self.write_widgets().remove(id);
                if !scan.widgets.contains_key(id) {
                    summary.removed.push(id.clone());
                }
            }
        }
        for (id, source) in scan.widgets {
            let existing = self.widget(&id);
            match existing {
                Some(widget) => {
                    if widget.fingerprint.swap(source.fingerprint, Ordering::AcqRel) != source.fingerprint
                        && widget.source.backend.is_some()
                    {
                        widget.reload_pending.store(true, Ordering::Release);
                        widget.control.send_modify(|c| c.generation += 1);
                        summary.changed.push(id);
                    }
                }
                None => {
                    let widget = Arc::new(Widget::new(source, &self.config, self.sandbox.identity_for_new_widget()));
                    self.write_widgets().insert(id.clone(), widget.clone());
                    if widget.source.backend.is_some() {
                        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
                        tasks.retain(|t| !t.is_finished());
                        for slot in 0..widget.slots.len() {
                            tasks.push(actix_web::rt::spawn(self.clone().keep_alive(widget.clone(), slot, helpers.clone())));
                        }
                    }
                    // A widget whose backend appeared or disappeared is new, not changed.
                    if current.contains_key(&id) {
                        summary.changed.push(id);
                    } else {
                        summary.added.push(id);
                    }
                }
            }
        }
        if !(summary.added.is_empty() && summary.changed.is_empty() && summary.removed.is_empty()) {
            info!(self.log, "widgets rescanned"; "added" => summary.added.join(","), "changed" => summary.changed.join(","), "removed" => summary.removed.join(","));
        }
        self.wait_settled().await;
        summary
    }

    /// Stops every worker and waits until each child process has exited. Call this after
    /// the HTTP server has drained.
    pub async fn shutdown(&self) {
        for widget in self.widgets() {
            widget.control.send_modify(|c| c.stop = true);
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn write_widgets(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Widget>>> {
        self.widgets.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn widgets(&self) -> Vec<Arc<Widget>> {
        self.widgets.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn widget(&self, id: &str) -> Option<Arc<Widget>> {
        self.widgets.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    async fn wait_settled(&self) {
        loop {
            let notified = self.settled.notified();
            if !self.widgets().iter().any(|w| w.settling()) {
                return;
            }
            notified.await;
        }
    }

    fn publish(&self, widget: &Widget, slot: usize, state: WidgetState) {
        widget.set_state(slot, state);
        widget.reload_pending.store(false, Ordering::Release);
        self.settled.notify_waiters();
    }

    /// The supervising task of one widget: start its worker, serve until it dies or its
    /// files change, restart with backoff or swap in the new version; end on `stop`.
    async fn keep_alive(self: Arc<Self>, widget: Arc<Widget>, slot: usize, helpers: Rc<Helpers>) {
        let config = self.config.clone();
        let log = match widget.slots.len() {
            1 => self.log.new(o!("widget" => widget.source.id.clone())),
            _ => self.log.new(o!("widget" => widget.source.id.clone(), "slot" => slot)),
        };
        let mut control = widget.control.subscribe();
        let mut backoff = config.workers.restart_backoff_min;
        let mut serving: Option<worker::Running> = None;
        let mut last_good: Option<LastGood> = None;
        // After a crash with the files unchanged, the version that crashed starts again
        // as it loaded, whatever its folder holds now.
        let mut restart_last_good = false;
        loop {
            if control.borrow_and_update().stop {
                if let Some(running) = serving.take() {
                    running.retire(config.server.shutdown_grace).await;
                }
                info!(log, "worker stopped");
                self.settled.notify_waiters();
                return;
            }
            let mut running = match serving.take() {
                Some(running) => running,
                None => match self.start_version(&widget, slot, &helpers, &log, &mut last_good, restart_last_good).await {
                    Ok(running) => running,
                    Err(worker::StartError::Load(load_error)) => {
                        error!(log, "backend failed to load: {}", load_error; "file" => load_error.file.clone(), "line" => load_error.line);
                        self.publish(&widget, slot, WidgetState::LoadFailed(load_error));
                        // Nothing to do until the files change.
                        let _ = control.changed().await;
                        restart_last_good = false;
                        continue;
                    }
                    Err(worker::StartError::Spawn(reason)) => {
                        let gone = WorkerGone(reason);
                        let files_changed = self.back_off(&widget, slot, &log, &mut control, &mut backoff, gone, Duration::ZERO, None).await;
                        restart_last_good &= !files_changed;
                        continue;
                    }
                },
            };
            match running.watch(config.workers.heartbeat, &mut control).await {
                Some(gone) => {
                    let lived = running.started.elapsed();
                    let files_changed = self.back_off(&widget, slot, &log, &mut control, &mut backoff, gone, lived, Some(running)).await;
                    restart_last_good = !files_changed;
                }
                None if control.borrow().stop => serving = Some(running),
                None => {
                    info!(log, "backend changed: loading the new version");
                    serving = Some(match self.start_worker(&widget, slot, &helpers, &log, None).await {
                        Ok(mut replacement) => {
                            actix_web::rt::spawn(running.retire(config.server.shutdown_grace));
                            last_good = LastGood::of(&mut replacement);
                            replacement
                        }
                        Err(worker::StartError::Load(load_error)) => {
                            error!(log, "new version failed to load, the previous one keeps serving: {}", load_error);
                            if let Some(good) = &mut last_good {
                                good.reload_error = Some(load_error.clone());
                            }
                            self.publish(&widget, slot, running.ready_state(Some(load_error)));
                            running
                        }
                        Err(worker::StartError::Spawn(reason)) => {
                            error!(log, "new version could not start, the previous one keeps serving: {}", reason);
                            if let Some(good) = &mut last_good {
                                good.reload_error = None;
                            }
                            self.publish(&widget, slot, running.ready_state(None));
                            running
                        }
                    });
                }
            }
        }
    }

    /// Starts the widget: the version in its folder or, with `restart_last_good`, the
    /// last good one as it loaded. When the folder's version does not load and a last
    /// good one exists, that one serves instead, reporting the folder's load error.
    async fn start_version(
        &self,
        widget: &Widget,
        slot: usize,
        helpers: &Rc<Helpers>,
        log: &Logger,
        last_good: &mut Option<LastGood>,
        restart_last_good: bool,
    ) -> Result<worker::Running, worker::StartError> {
        if let (true, Some(good)) = (restart_last_good, last_good.as_ref()) {
            return self.start_worker(widget, slot, helpers, log, Some(good)).await;
        }
        match self.start_worker(widget, slot, helpers, log, None).await {
            Ok(mut running) => {
                *last_good = LastGood::of(&mut running);
                Ok(running)
            }
            Err(worker::StartError::Load(load_error)) => match last_good {
                Some(good) => {
                    error!(log, "backend failed to load, its last good version serves again: {}", load_error; "file" => load_error.file.clone(), "line" => load_error.line);
                    good.reload_error = Some(load_error);
                    self.start_worker(widget, slot, helpers, log, Some(good)).await
                }
                None => Err(worker::StartError::Load(load_error)),
            },
            Err(spawn) => Err(spawn),
        }
    }

    /// Starts a worker on the widget's folder, or on `pinned`'s sources, and, when it is
    /// ready, makes it the one requests go to.
    async fn start_worker(
        &self,
        widget: &Widget,
        slot: usize,
        helpers: &Rc<Helpers>,
        log: &Logger,
        pinned: Option<&LastGood>,
    ) -> Result<worker::Running, worker::StartError> {
        let paths = match pinned {
            Some(good) => good.paths.clone(),
            None => {
                let backend = widget.source.backend.as_deref().unwrap_or(widget.source.dir.as_path());
                WorkerPaths::resolve(&self.config, &widget.source.dir, backend)
            }
        };
        let command = self.sandbox.worker_command(&self.config, &paths, widget.identity).map_err(worker::StartError::Spawn)?;
        let sources = pinned.map(|good| &good.sources);
        let running = worker::start(&self.config, command, &widget.source, &paths, sources, helpers.clone(), log).await?;
        let version = if pinned.is_some() { "last good" } else { "folder" };
        info!(log, "worker ready"; "pid" => running.pid(), "endpoints" => describe(&running.endpoints), "version" => version);
        self.publish(widget, slot, running.ready_state(pinned.and_then(|good| good.reload_error.clone())));
        Ok(running)
    }

    /// After a crash: stop routing to the worker, make sure it is gone, count it, answer
    /// 503 for the backoff period (shorter if the files change meanwhile), and make the
    /// next backoff longer unless the worker had lived long enough to count as healthy.
    /// Returns whether the backoff was cut short by a change of the files (or a stop).
    #[allow(clippy::too_many_arguments)]
    async fn back_off(
        &self,
        widget: &Widget,
        slot: usize,
        log: &Logger,
        control: &mut watch::Receiver<Control>,
        backoff: &mut Duration,
        gone: WorkerGone,
        lived: Duration,
        dead: Option<worker::Running>,
    ) -> bool {
        let workers = &self.config.workers;
        if lived > workers.restart_backoff_max {
            *backoff = workers.restart_backoff_min;
        }
        self.publish(widget, slot, WidgetState::Restarting { until: Instant::now() + *backoff, reason: gone.0.clone() });
        if let Some(dead) = dead {
            dead.stop(&gone).await;
        }
        widget.restarts.fetch_add(1, Ordering::Relaxed);
        error!(log, "worker crashed: {}", gone; "restart_in" => humantime::format_duration(*backoff).to_string());
        let files_changed = tokio::select! {
            _ = tokio::time::sleep(*backoff) => false,
            _ = control.changed() => true,
        };
        *backoff = (*backoff * 2).min(workers.restart_backoff_max);
        files_changed
    }

    /// Finds the worker that serves `service`/`method` of widget `id` and takes one of
    /// the widget's admission slots, waiting in its queue for up to `queue_timeout` if
    /// need be.
    pub async fn route(
        &self,
        id: &str,
        service: &str,
        method: &str,
        queue_timeout: Duration,
    ) -> Result<(Arc<WorkerConn>, OwnedSemaphorePermit), RouteError> {
        let widget = self.widget(id).ok_or(RouteError::NoWidget)?;
        // The stage matches upper-cased names, so must we (`ß` is `SS`, not `ß`).
        let service = service.to_uppercase();
        let pick = || widget.least_busy_worker(&service, method).ok_or_else(|| widget.why_not_routable());
        let conn = pick()?;
        let admission = &widget.admission;
        match admission.slots.clone().try_acquire_owned() {
            Ok(slot) => Ok((conn, slot)),
            Err(_) => {
                let place = admission.queue.try_acquire().map_err(|_| RouteError::Unavailable {
                    reason: "is busy: its request queue is full".into(),
                    retry_after: Duration::from_secs(1),
                })?;
                let slot = tokio::time::timeout(queue_timeout, admission.slots.clone().acquire_owned()).await;
                drop(place);
                match slot {
                    // The pool may have changed during the wait (a crash, a reload): pick again.
                    Ok(Ok(slot)) => Ok((pick()?, slot)),
                    Ok(Err(_)) => Err(RouteError::Unavailable { reason: "is stopping".into(), retry_after: Duration::from_secs(1) }),
                    Err(_) => Err(RouteError::Unavailable {
                        reason: "is busy: no worker was free within handler_timeout".into(),
                        retry_after: Duration::from_secs(1),
                    }),
                }
            }
        }
    }
}

/// `GET status, POST data` — endpoints as a person reads them.
pub fn describe(endpoints: &[Endpoint]) -> String {
    endpoints.iter().map(|e| format!("{} {}", e.method, e.name.to_lowercase())).collect::<Vec<_>>().join(", ")
}
