//! Writes frames to a worker (its stdin, or one of its lanes) from whichever thread
//! produces them.
//!
//! Frames are produced on the threads that serve requests and run heartbeats. Handing
//! each one to a writer task on another thread costs a thread wake-up per frame, a large
//! part of a small request's cost in the gateway and of its latency. So
//! [`FrameWriter::send`] writes straight into the non-blocking pipe or socket when
//! nothing is queued ahead, and leaves only what it cannot take at once to the drain
//! task, which waits for the child to read. Frames keep their order: nothing is written
//! directly while older bytes wait.

use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// More bytes than a writer's limit were waiting for its child (their number).
#[derive(Debug)]
pub struct QueueFull(pub usize);

pub struct FrameWriter {
    /// A duplicate of the write end for direct writes. The child sees EOF once the drain
    /// task, which owns the original, has ended (after `close`) and the writer is dropped.
    pipe: OwnedFd,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Bytes the pipe has taken so far. While more wait behind them the pipe is full, so
    /// this grows only as the child reads: how a child busy with a backlog shows it is
    /// still reading.
    written: AtomicU64,
}

#[derive(Default)]
struct Queue {
    pending: BytesMut,
    /// The drain task is writing bytes it took from `pending`: this many.
    draining: bool,
    draining_bytes: usize,
    /// No more frames are accepted; the drain task writes what is pending and ends.
    closing: bool,
    /// The pipe is broken (the child is gone): nothing more can be written.
    broken: bool,
}

impl FrameWriter {
    /// The writer, and the drain task to spawn on the runtime that owns `sink`; `pipe` is
    /// a duplicate of `sink`'s file descriptor, for the direct writes.
    pub fn new<W>(pipe: OwnedFd, sink: W) -> std::io::Result<(Arc<Self>, impl Future<Output = ()> + use<W>)>
    where
        W: AsyncWrite + Unpin,
    {
        let flags = OFlag::from_bits_truncate(fcntl(pipe.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(pipe.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let writer = Arc::new(FrameWriter { pipe, queue: Mutex::default(), wake: Notify::new(), written: AtomicU64::new(0) });
        Ok((writer.clone(), writer.drain(sink)))
    }

    /// Writes `frame` now if the pipe takes it, else queues it for the drain task. For a
    /// channel whose queue other limits already bound (a lane: flow-control windows).
    pub fn send(&self, frame: &[u8]) {
        // No limit, so never full.
        let _ = self.send_within(frame, usize::MAX);
    }

    /// Like [`FrameWriter::send`], but when more than `limit` bytes would wait for the
    /// child, the writer gives up instead: it drops what waits, takes no more frames, and
    /// says how much was waiting. A child that stops reading must not make the gateway
    /// hold without bound what is sent to it.
    pub fn send_within(&self, frame: &[u8], limit: usize) -> Result<(), QueueFull> {
        let mut queue = self.lock();
        if queue.closing || queue.broken {
            return Ok(());
        }
        let mut rest = frame;
        if queue.pending.is_empty() && !queue.draining {
            match nix::unistd::write(&self.pipe, frame) {
                Ok(written) => {
                    self.written.fetch_add(written as u64, Ordering::Relaxed);
                    rest = &frame[written..];
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => {
                    // The reader task sees the child go and fails its requests.
                    queue.broken = true;
                    return Ok(());
                }
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        let waiting = queue.pending.len() + rest.len();
        if waiting > limit {
            queue.broken = true;
            queue.pending.clear();
            return Err(QueueFull(waiting));
        }
        queue.pending.extend_from_slice(rest);
        drop(queue);
        self.wake.notify_one();
        Ok(())
    }

    /// Bytes given to this writer that the child has not taken yet.
    pub fn waiting(&self) -> usize {
        let queue = self.lock();
        queue.pending.len() + queue.draining_bytes
    }

    /// Bytes the pipe has taken so far (see the field).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Accepts no more frames; what is queued is still written.
    pub fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }

    async fn drain<W: AsyncWrite + Unpin>(self: Arc<Self>, mut sink: W) {
        loop {
            let batch = {
                let mut queue = self.lock();
                queue.draining = !queue.pending.is_empty();
                queue.draining_bytes = queue.pending.len();
                if queue.draining {
                    Some(queue.pending.split())
                } else if queue.closing || queue.broken {
                    return;
                } else {
                    None
                }
            };
            match batch {
                Some(bytes) => {
                    // Piece by piece, so that `waiting` and `written` follow the child's reading.
                    let mut rest = &bytes[..];
                    while !rest.is_empty() {
                        match sink.write(rest).await {
                            Ok(written) if written > 0 => {
                                rest = &rest[written..];
                                self.written.fetch_add(written as u64, Ordering::Relaxed);
                                self.lock().draining_bytes = rest.len();
                            }
                            _ => {
                                let mut queue = self.lock();
                                queue.broken = true;
                                queue.pending.clear();
                                break;
                            }
                        }
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds plain bytes and flags: still consistent after a panic elsewhere.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;

    /// Far more than a pipe holds, sent while the child is not reading yet: `send` never
    /// blocks, and the child reads every frame, in order, once it starts.
    #[actix_web::test]
    async fn queues_what_the_pipe_cannot_take_and_keeps_the_order() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "sleep 0.2; exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh and cat are available");
        let stdin = child.stdin.take().unwrap();
        let (writer, drain) = FrameWriter::new(stdin.as_fd().try_clone_to_owned().unwrap(), stdin).unwrap();
        actix_web::rt::spawn(drain);
        let mut expected = Vec::new();
        for i in 0..20_000 {
            let frame = format!("{{\"frame\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 97));
            writer.send(frame.as_bytes());
            expected.extend_from_slice(frame.as_bytes());
        }
        writer.close();
        drop(writer);
        let mut received = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut received).await.unwrap();
        assert!(expected.len() > 1 << 20);
        assert!(received == expected, "frames arrived out of order or incomplete");
    }

    /// A child that does not read: once more than the limit waits, the writer refuses,
    /// drops what it held and takes nothing more.
    #[actix_web::test]
    async fn gives_up_on_a_child_that_does_not_read() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("5")
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sleep is available");
        let stdin = child.stdin.take().unwrap();
        let (writer, drain) = FrameWriter::new(stdin.as_fd().try_clone_to_owned().unwrap(), stdin).unwrap();
        actix_web::rt::spawn(drain);
        let frame = vec![b'x'; 64 * 1024];
        let limit = 1 << 20;
        let mut sent = 0;
        let full = loop {
            match writer.send_within(&frame, limit) {
                Ok(()) => sent += frame.len(),
                Err(full) => break full,
            }
            assert!(sent < 16 << 20, "never refused");
        };
        assert!(full.0 > limit);
        assert!(writer.lock().pending.is_empty() && writer.lock().broken);
        assert!(writer.send_within(&frame, limit).is_ok(), "a broken writer ignores frames");
        assert!(writer.lock().pending.is_empty());
    }
}
