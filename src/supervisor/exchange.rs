//! One request in flight on a worker, from the gateway's side: sending the request body
//! under flow control, waiting for the response head, and streaming the response body.
//!
//! An [`Exchange`] cancels its request when dropped before the response finished, so a
//! client that disconnects, a timeout, or a gateway error path can never leave a request
//! id behind in the worker's table.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::worker::{RequestChannels, ResponseHead, WorkerConn, WorkerGone};
use crate::protocol::{self, CancelReason, RequestHead, ToShim};

/// The request body was larger than `max_body_size`.
#[derive(Debug)]
pub struct BodyTooLarge;

pub struct Exchange {
    conn: Arc<WorkerConn>,
    channels: RequestChannels,
    finished: bool,
    /// The widget's admission slot, released when the exchange ends.
    _slot: OwnedSemaphorePermit,
}

impl Exchange {
    /// Sends the request head to the worker. `None` if the worker is shutting down.
    pub fn begin(conn: Arc<WorkerConn>, head: RequestHead, slot: OwnedSemaphorePermit) -> Option<Exchange> {
        let channels = conn.start(head)?;
        Some(Exchange { conn, channels, finished: false, _slot: slot })
    }

    /// Streams `payload` to the worker in the background, at the pace the widget reads
    /// it. The returned receiver fires if the body turns out larger than `limit`; if
    /// nobody is listening by then, the request is cancelled instead. A body the client
    /// breaks off (or frames wrongly) cancels the request: actix has closed the
    /// connection by then, so there is nobody to answer.
    pub fn send_body<S, E>(&self, mut payload: S, limit: u64) -> oneshot::Receiver<BodyTooLarge>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + 'static,
    {
        let (too_large_tx, too_large_rx) = oneshot::channel();
        let conn = self.conn.clone();
        let lane = self.channels.lane.clone();
        let id = self.channels.id;
        let credit = self.channels.request_credit.clone();
        actix_web::rt::spawn(async move {
            let mut total = 0u64;
            while let Some(chunk) = payload.next().await {
                let Ok(chunk) = chunk else {
                    conn.cancel(id, CancelReason::Client);
                    return;
                };
                total += chunk.len() as u64;
                if total > limit {
                    if too_large_tx.send(BodyTooLarge).is_err() {
                        conn.cancel(id, CancelReason::Client);
                    }
                    return;
                }
                for piece in protocol::chunks(&chunk) {
                    // A closed credit means the request is over: stop reading the client.
                    let Ok(permit) = credit.clone().acquire_many_owned(piece.len() as u32).await else { return };
                    permit.forget();
                    lane.send(&ToShim::Body { id, len: piece.len() }.encode_with_payload(&piece));
                }
            }
            if !credit.is_closed() {
                lane.send(&ToShim::End { id }.encode());
            }
        });
        too_large_rx
    }

    /// Waits for the response's status line and headers.
    pub async fn head(&mut self) -> Result<ResponseHead, WorkerGone> {
        let head = (&mut self.channels.head)
            .await
            .unwrap_or_else(|_| Err(WorkerGone("worker dropped the request".into())))?;
        if head.end {
            self.finished = true;
        }
        Ok(head)
    }

    pub fn cancel(mut self, reason: CancelReason) {
        self.finished = true;
        self.conn.cancel(self.channels.id, reason);
    }

    /// The rest of the response body, acknowledged to the worker as it is consumed.
    pub fn into_body(self) -> ResponseBody {
        ResponseBody { exchange: self, held_error: None }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.cancel(self.channels.id, CancelReason::Client);
        }
    }
}

pub struct ResponseBody {
    exchange: Exchange,
    /// An abort waiting for one `Pending` to go by first: actix-web drops a connection
    /// on a body error without writing what it buffered (the head, the last chunks),
    /// while Node has sent those before it destroys the socket. On `Pending` actix
    /// flushes, so the client gets what the widget wrote and then the cut.
    held_error: Option<WorkerGone>,
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, WorkerGone>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(gone) = self.held_error.take() {
            self.exchange.finished = true;
            return Poll::Ready(Some(Err(gone)));
        }
        let exchange = &mut self.exchange;
        match exchange.channels.body.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                let id = exchange.channels.id;
                exchange.channels.response_outstanding.fetch_sub(bytes.len(), Ordering::AcqRel);
                exchange.channels.lane.send(&ToShim::Ack { id, bytes: bytes.len() }.encode());
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(gone))) => {
                self.held_error = Some(gone);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                exchange.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
