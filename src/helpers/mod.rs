//! `helper.Manager` and `helper.Request`, executed in the gateway for a worker's `call`
//! frames.
//!
//! A widget's process has no network, no manager address and no credentials: it asks
//! the gateway, which makes the HTTP request with its pooled awc clients, enforces where
//! such a request may go, and answers with a `ret` frame. The semantics are the stage
//! backend's `ManagerService` and `RequestService`.

mod manager;
mod query;
mod request;
pub mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use serde_json::Value;
use slog::{debug, Logger};

use crate::config::Config;
use crate::protocol::{CallError, CallResult};

pub use tls::TlsError;

/// Largest response a helper call buffers.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Most bytes one worker's helper calls may hold in the gateway at once: one response of
/// the largest size, or many smaller calls. Without it a widget could start its 1024
/// calls with 4 MiB of arguments or 64 MiB responses each and take the gateway down for
/// every widget.
const HELPER_BUDGET: usize = MAX_RESPONSE;

/// What one worker's helper calls hold of the gateway's memory: their arguments, the
/// responses being read, and the results already answered that still wait for the worker
/// to read them (so a worker that reads its input slower than responses arrive slows its
/// own calls down instead of piling results up in the gateway).
pub struct HelperBudget {
    held: AtomicUsize,
    waiting_for_worker: Box<dyn Fn() -> usize + Send + Sync>,
}

impl HelperBudget {
    /// `waiting_for_worker` tells how many bytes sent to the worker it has not read yet.
    pub fn new(waiting_for_worker: impl Fn() -> usize + Send + Sync + 'static) -> HelperBudget {
        HelperBudget { held: AtomicUsize::new(0), waiting_for_worker: Box::new(waiting_for_worker) }
    }
}

/// One call's share of a [`HelperBudget`], given back when dropped.
struct Held<'a> {
    budget: &'a HelperBudget,
    bytes: usize,
}

impl Held<'_> {
    /// Takes `more` bytes of the budget, or nothing if that would exceed it.
    fn grow(&mut self, more: usize) -> bool {
        let held = self.budget.held.fetch_add(more, Ordering::AcqRel) + more;
        if held + (self.budget.waiting_for_worker)() > HELPER_BUDGET {
            self.budget.held.fetch_sub(more, Ordering::AcqRel);
            return false;
        }
        self.bytes += more;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The gateway-side helpers shared by every worker (one per gateway main thread: awc
/// clients are not thread-safe, and workers are supervised on that thread).
pub struct Helpers {
    manager: manager::Manager,
    request: request::RequestHelper,
}

impl Helpers {
    pub fn new(config: Arc<Config>) -> Result<Helpers, TlsError> {
        Ok(Helpers { manager: manager::Manager::new(config.clone())?, request: request::RequestHelper::new(config)? })
    }

    /// Executes one `call` frame. Never fails: every problem becomes an error result the
    /// widget's promise rejects with.
    /// `budget` is the calling worker's: what its calls may hold in the gateway at once.
    pub async fn call(&self, helper: &str, function: &str, args: Value, budget: &HelperBudget, log: &Logger) -> CallResult {
        debug!(log, "helper call");
        let mut arguments = Held { budget, bytes: 0 };
        if !arguments.grow(held_bytes(&args)) {
            return CallResult::error(CallError::Refused { message: over_budget(&format!("{helper}.{function}")) });
        }
        let result = match (helper, function) {
            ("manager", "call") => self.manager.call(args, budget).await,
            ("manager", "getFull") => self.manager.get_full(args, budget).await,
            ("request", "call") => self.request.call(args, budget).await,
            _ => Err(CallError::Refused { message: format!("unknown helper function {helper}.{function}") }),
        };
        match result {
            Ok(result) => result,
            Err(error) => CallResult::error(error),
        }
    }
}

/// Reads an optional string field of a call's arguments.
fn string_arg(args: &Value, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Headers a widget passes on from its own request (`headers: req.headers`) that describe
/// that request's hop, not the helper's: the helper's client sets its own. Among them the
/// browser's Accept-Encoding (`br`, `zstd`): the helper hands the widget decoded bytes,
/// so it asks only for the codings it can decode.
const CALLERS_HOP: [&str; 5] = ["host", "content-length", "connection", "transfer-encoding", "accept-encoding"];

/// Turns a JSON `headers` object into the header pairs to send, refusing values a header
/// cannot hold and leaving out those of [`CALLERS_HOP`].
fn header_args(args: &Value) -> Result<Vec<(String, String)>, CallError> {
    let Some(headers) = args.get("headers").and_then(Value::as_object) else { return Ok(Vec::new()) };
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        if actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || actix_web::http::header::HeaderValue::from_str(&value).is_err()
        {
            return Err(CallError::Refused { message: format!("invalid header `{name}`: names must be tokens and values may not contain CR or LF") });
        }
        let name = name.to_ascii_lowercase();
        if !CALLERS_HOP.contains(&name.as_str()) {
            pairs.push((name, value));
        }
    }
    Ok(pairs)
}

/// Sends a request that has no body as Node's HTTP client (the stage's) sends one: no
/// `Content-Length` on a GET or DELETE, `Content-Length: 0` on a method that normally
/// carries a body. (awc announces an empty body on every method.)
fn send_without_body(request: awc::ClientRequest) -> awc::SendClientRequest {
    if matches!(*request.get_method(), awc::http::Method::GET | awc::http::Method::DELETE) {
        request.send_body(awc::body::None::new())
    } else {
        request.send()
    }
}

/// A sent helper request's response with its whole body (at most [`MAX_RESPONSE`], and
/// within the worker's `budget` while it is read); `what` names the request in the error
/// the widget sees (`GET https://host/path`).
async fn read_response<S>(
    sent: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
    what: &str,
    budget: &HelperBudget,
) -> Result<(awc::ClientResponse<S>, Bytes), CallError>
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut response = sent.map_err(|e| CallError::Transport { message: format!("{what} failed: {e}") })?;
    let mut held = Held { budget, bytes: 0 };
    let mut body = BytesMut::new();
    while let Some(chunk) = response.next().await {
        let chunk = chunk.map_err(|e| CallError::Transport { message: format!("{what}: response unreadable: {e}") })?;
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(CallError::Transport { message: format!("{what}: response larger than {} MiB", MAX_RESPONSE >> 20) });
        }
        if !held.grow(chunk.len()) {
            return Err(CallError::Transport { message: over_budget(what) });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((response, body.freeze()))
}

fn over_budget(what: &str) -> String {
    format!(
        "{what}: this widget's helper calls already hold {} MiB in the gateway; make fewer or smaller calls at once",
        HELPER_BUDGET >> 20
    )
}

/// Roughly what a JSON value holds in memory: its strings plus a few words per value;
/// enough to tell a call's few hundred bytes from megabytes, without serialising it.
/// (serde_json refuses input nested over 128 levels, so the recursion is bounded.)
fn held_bytes(value: &Value) -> usize {
    const PER_VALUE: usize = 32;
    PER_VALUE
        + match value {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(held_bytes).sum(),
            Value::Object(fields) => fields.iter().map(|(name, field)| name.len() + held_bytes(field)).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused_for_budget(result: &CallResult) -> bool {
        matches!(result, CallResult::Error { error: CallError::Refused { message }, .. }
            if message.contains("helper calls already hold 64 MiB in the gateway"))
    }

    /// A worker that sent many large calls at once (their arguments held while each runs)
    /// gets the one that would pass its budget refused, and the budget back afterwards.
    #[actix_web::test]
    async fn a_call_whose_arguments_would_pass_the_budget_is_refused() {
        let helpers = Helpers::new(Arc::new(Config::default())).unwrap();
        let log = Logger::root(slog::Discard, slog::o!());
        // Results its worker has not read yet take all of the budget but 1000 bytes.
        let budget = HelperBudget::new(|| HELPER_BUDGET - 1000);
        let post = |size: usize| json!({"method": "POST", "url": "http://127.0.0.1:9/", "body": "x".repeat(size)});
        assert!(refused_for_budget(&helpers.call("request", "call", post(2000), &budget, &log).await));
        let small = helpers.call("request", "call", post(10), &budget, &log).await;
        assert!(!refused_for_budget(&small), "a small call goes ahead (and fails to connect)");
        assert_eq!(budget.held.load(Ordering::Acquire), 0, "what the calls held was given back");
    }

    #[test]
    fn header_args_leave_out_the_callers_hop_and_refuse_what_a_header_cannot_hold() {
        let args = json!({"headers": {"Host": "console", "content-length": "3", "Connection": "close",
            "transfer-encoding": "chunked", "Accept-Encoding": "br", "Cookie": "a=1", "x-n": 5, "gone": null}});
        let pairs = header_args(&args).unwrap();
        assert_eq!(pairs, [("cookie".to_string(), "a=1".to_string()), ("x-n".to_string(), "5".to_string())]);
        assert!(header_args(&json!({"headers": {"host": "a\r\nx: y"}})).is_err());
    }

    #[test]
    fn held_bytes_grows_with_the_strings_in_a_value() {
        let small = held_bytes(&json!({"url": "/x"}));
        assert!(small < 200);
        assert!(held_bytes(&json!({"body": {"blob": "a".repeat(1 << 20)}})) > 1 << 20);
    }
}
