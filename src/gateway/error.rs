//! Every error the gateway answers with, as the contract's JSON `{"message": ...}`.
//!
//! Written the way the stage's error handler writes it (Express's `res.send(object)`):
//! `application/json; charset=utf-8`, a weak ETag of the body and Express's
//! `X-Powered-By`, so a client or cache behind nginx sees the same kind of answer from
//! wbe as from the stage.

use std::time::Duration;

use actix_web::http::header::{CONTENT_TYPE, ETAG, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

#[derive(Debug)]
pub struct GatewayError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl GatewayError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GatewayError { status, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        GatewayError { retry_after, ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message) }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: `Retry-After: 0` would invite a busy loop.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((RETRY_AFTER, seconds.max(1).to_string()));
        }
        let body = serde_json::json!({ "message": self.message }).to_string();
        response
            .insert_header((CONTENT_TYPE, "application/json; charset=utf-8"))
            .insert_header((ETAG, express_weak_etag(body.as_bytes())))
            .insert_header(("x-powered-by", "Express"))
            .body(body)
    }
}

/// The ETag Express 4 gives a body (the `etag` package, weak): its length in hex and the
/// first 27 characters of its SHA-1 in base64, which is the whole digest without padding.
fn express_weak_etag(body: &[u8]) -> String {
    format!("W/\"{:x}-{}\"", body.len(), STANDARD_NO_PAD.encode(Sha1::digest(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    #[test]
    fn etag_is_the_one_express_computes() {
        // require('etag')('{"message":"no such widget"}', { weak: true }) in Node.
        assert_eq!(express_weak_etag(br#"{"message":"no such widget"}"#), r#"W/"1c-rSOQTmMvgLLpyv+IidAJQoFJvXE""#);
    }

    #[test]
    fn answer_is_json_with_charset_etag_and_retry_after() {
        let error = GatewayError::unavailable("busy", Some(Duration::from_millis(1500)));
        let response = error.error_response();
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(CONTENT_TYPE).as_deref(), Some("application/json; charset=utf-8"));
        assert_eq!(header(ETAG), Some(express_weak_etag(br#"{"message":"busy"}"#)));
        assert_eq!(header(RETRY_AFTER).as_deref(), Some("2"));
        assert_eq!(header(HeaderName::from_static("x-powered-by")).as_deref(), Some("Express"));
    }
}
