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

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use slog::{debug, Logger};

use crate::config::Config;
use crate::protocol::{CallError, CallResult};

pub use tls::TlsError;

/// Largest response a helper call buffers.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

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
    pub async fn call(&self, helper: &str, function: &str, args: Value, log: &Logger) -> CallResult {
        debug!(log, "helper call");
        let result = match (helper, function) {
            ("manager", "call") => self.manager.call(args).await,
            ("manager", "getFull") => self.manager.get_full(args).await,
            ("request", "call") => self.request.call(args).await,
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

/// Turns a JSON `headers` object into header pairs, refusing values a header cannot hold.
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
        pairs.push((name.to_ascii_lowercase(), value));
    }
    Ok(pairs)
}

/// A sent helper request's response with its whole body (at most [`MAX_RESPONSE`]);
/// `what` names the request in the error the widget sees (`GET https://host/path`).
async fn read_response<S>(
    sent: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
    what: &str,
) -> Result<(awc::ClientResponse<S>, Bytes), CallError>
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut response = sent.map_err(|e| CallError::Transport { message: format!("{what} failed: {e}") })?;
    let bytes = response
        .body()
        .limit(MAX_RESPONSE)
        .await
        .map_err(|e| CallError::Transport { message: format!("{what}: response unreadable: {e}") })?;
    Ok((response, bytes))
}
