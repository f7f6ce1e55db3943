//! Lanes: one socket pair per HTTP thread between the gateway and each worker, carrying
//! the frames of the requests that thread serves.
//!
//! With a single channel per worker, the response to a request sent from HTTP thread A
//! was read by a task on another thread and handed back to A: one more thread wake-up
//! per request, which on a small request is a large part of the gateway's cost and of
//! its latency. A lane is written and read by the same thread, so a response reaches its
//! request without leaving the thread. The worker's stdin/stdout remain the control
//! channel (handshake, heartbeats, logs, helper calls); see docs/PROTOCOL.md.
//!
//! A lane's gateway end is created with the child, but is only registered with a
//! runtime when the first request on it starts: that is when it is known which thread's
//! event loop must read it.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{fcntl, FcntlArg};
use tokio::net::unix::OwnedReadHalf;

use super::frame_writer::FrameWriter;

/// The file descriptor of the child's first lane; the others follow it.
pub const FIRST_LANE_FD: RawFd = 3;

/// The gateway's end of one lane.
pub struct Lane {
    /// Taken when the lane is opened on its thread.
    socket: Mutex<Option<UnixStream>>,
    writer: OnceLock<Arc<FrameWriter>>,
}

/// What opening a lane gives its thread: the reading half, for its reader task.
pub struct Opened {
    pub writer: Arc<FrameWriter>,
    pub reader: Option<OwnedReadHalf>,
}

impl Lane {
    /// The writer of this lane, opening it on the calling thread first if needed. On
    /// first opening, `reader` is the half the caller must read from (on this thread).
    pub fn open(&self) -> std::io::Result<Opened> {
        if let Some(writer) = self.writer.get() {
            return Ok(Opened { writer: writer.clone(), reader: None });
        }
        let mut socket = self.socket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(writer) = self.writer.get() {
            return Ok(Opened { writer: writer.clone(), reader: None });
        }
        let std_socket = socket.take().ok_or_else(|| std::io::Error::other("lane failed to open before"))?;
        std_socket.set_nonblocking(true)?;
        let (reader, sink) = tokio::net::UnixStream::from_std(std_socket)?.into_split();
        let pipe = sink.as_ref().as_fd().try_clone_to_owned()?;
        let (writer, drain) = FrameWriter::new(pipe, sink)?;
        actix_web::rt::spawn(drain);
        let _ = self.writer.set(writer.clone());
        Ok(Opened { writer, reader: Some(reader) })
    }

    /// Accepts no more frames on this lane (if it was ever opened).
    pub fn close(&self) {
        if let Some(writer) = self.writer.get() {
            writer.close();
        }
    }
}

/// The lanes of a child about to be spawned: the gateway's ends, and the child's ends to
/// place at [`FIRST_LANE_FD`] onwards (see [`Pending::child_fds`]).
pub struct Pending {
    lanes: Vec<Lane>,
    child_ends: Vec<OwnedFd>,
}

impl Pending {
    pub fn new(count: usize) -> std::io::Result<Pending> {
        let mut lanes = Vec::with_capacity(count);
        let mut child_ends = Vec::with_capacity(count);
        for _ in 0..count {
            let (gateway, child) = UnixStream::pair()?;
            // Above every target descriptor, so that moving one end into place in the
            // child can never overwrite another end still to be moved.
            let above = FIRST_LANE_FD + count as RawFd;
            let raised = fcntl(child.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(above))?;
            // SAFETY: fcntl just returned this descriptor, and nothing else owns it.
            child_ends.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raised) });
            lanes.push(Lane { socket: Mutex::new(Some(gateway)), writer: OnceLock::new() });
        }
        Ok(Pending { lanes, child_ends })
    }

    /// The child's ends, in lane order, for the pre-exec hook to `dup2` into place. They
    /// stay open in the gateway until [`Pending::spawned`].
    pub fn child_fds(&self) -> Vec<RawFd> {
        self.child_ends.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The child has its copies now: closes the gateway's, so that the lanes reach EOF
    /// when the child exits.
    pub fn spawned(self) -> Vec<Lane> {
        self.lanes
    }
}

/// Moves the child's lane ends into place; runs in the forked child before exec, so it
/// only makes system calls. `dup2` leaves the copies inheritable across exec.
pub fn place_in_child(child_fds: &[RawFd]) -> std::io::Result<()> {
    for (index, fd) in child_fds.iter().enumerate() {
        // SAFETY: plain dup2 on descriptors the parent opened for this child.
        if unsafe { nix::libc::dup2(*fd, FIRST_LANE_FD + index as RawFd) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

thread_local! {
    static THREAD_LANE: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_THREAD_LANE: AtomicUsize = AtomicUsize::new(0);

/// The lane the calling thread uses, out of `count`: each HTTP thread gets its own as
/// long as there are as many lanes as threads; beyond that threads share (still correct,
/// only without the saving).
pub fn for_this_thread(count: usize) -> usize {
    THREAD_LANE.with(|lane| match lane.get() {
        Some(index) => index % count,
        None => {
            let index = NEXT_THREAD_LANE.fetch_add(1, Ordering::Relaxed);
            lane.set(Some(index));
            index % count
        }
    })
}
