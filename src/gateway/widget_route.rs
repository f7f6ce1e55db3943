//! `ANY <context path>/wb/<service>[/<rest>]`: one widget request, from HTTP to the
//! widget's worker and back.
//!
//! The path is matched the way the stage's `router.use('/:service', …)` matches it, so a
//! handler sees the same `req.url` (`/rest?query`) and `req.baseUrl` it saw there. The
//! request body streams to the worker under flow control while the response streams back;
//! neither is ever held whole in the gateway.

use std::time::Instant;

use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use percent_encoding::percent_decode_str;
use slog::{info, warn};

use super::error::GatewayError;
use super::{auth, reason, AppState, PeerSocket};
use crate::metrics::RequestLabels;
use crate::protocol::{CancelReason, RequestHead};
use crate::registry::is_valid_widget_id;
use crate::supervisor::{describe, BodyTooLarge, Exchange, RouteError};

/// Methods the stage lets a widget register; anything else can never match an endpoint.
const WIDGET_METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Headers that describe one HTTP hop, not the response: the gateway sets its own.
const HOP_BY_HOP: [&str; 5] = ["connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"];

/// A widget URL path as the stage's `app.use('<context>/wb', router)` and
/// `router.use('/:service', ...)` take it apart, all parts as the client wrote them.
#[derive(Debug, PartialEq)]
struct WidgetPath<'a> {
    /// `<context>/wb`, in the client's case: a mount path matches in any case.
    mount: &'a str,
    /// The service segment, still percent-encoded.
    service: &'a str,
    /// What the handler sees as `req.url` (before the query); empty for `/`.
    rest: &'a str,
}

impl<'a> WidgetPath<'a> {
    fn parse(context_path: &str, path: &'a str) -> Option<Self> {
        let after_context = strip_prefix_ignore_ascii_case(path, context_path)?;
        let after_mount = strip_prefix_ignore_ascii_case(after_context, "/wb")?;
        let mount = &path[..path.len() - after_mount.len()];
        let after_mount = without_doubled_slash(after_mount).strip_prefix('/')?;
        let (service, rest) = after_mount.split_at(after_mount.find('/').unwrap_or(after_mount.len()));
        (!service.is_empty()).then(|| WidgetPath { mount, service, rest: without_doubled_slash(rest) })
    }

    /// `req.baseUrl`: Express joins the matched parts without their trailing slashes.
    fn base_url(&self) -> String {
        format!("{}/{}", self.mount, self.service)
    }
}

/// Express matches a path prefix with `\/?(?=\/|$)`: a slash that another one follows
/// (or that ends the path) belongs to the prefix, so `/console/wb//status/` is the
/// service `status` with `req.url` `/`, as `/console/wb/status` is.
fn without_doubled_slash(path: &str) -> &str {
    if path.starts_with("//") || path == "/" {
        &path[1..]
    } else {
        path
    }
}

/// The request's header lines for the worker, sorted by name. actix-web keeps headers in
/// a hash map with a random seed, so the client's order is lost and the map's own order
/// changes from request to request; sorted, `req.rawHeaders` and `req.headers` are at
/// least the same for the same request. Lines of one name keep their order.
fn header_lines(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = headers
        .iter()
        // Header bytes beyond ASCII reach Node as latin-1, as Node's own parser gives them.
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().iter().map(|&b| b as char).collect()))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

/// The `widget-id` header as the stage reads it (`req.header('widget-id')`): Node joins
/// repeated lines with ", ", so two of them name no widget, rather than the first one.
fn widget_header(headers: &HeaderMap) -> String {
    let mut values = headers.get_all("widget-id").map(|value| value.to_str().unwrap_or(""));
    let mut joined = values.next().unwrap_or("").to_owned();
    for more in values {
        joined.push_str(", ");
        joined.push_str(more);
    }
    joined
}

/// A path segment decoded as Express decodes route parameters (`decodeURIComponent`):
/// `None` for a `%` not followed by two hex digits or bytes that are not UTF-8, which
/// the stage answers with 400 (percent-encoding's own decoder would keep them as text).
fn decode_param(raw: &str) -> Option<String> {
    let well_formed = raw
        .split('%')
        .skip(1)
        .all(|after| after.as_bytes().get(..2).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    well_formed.then(|| percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())).flatten()
}

fn strip_prefix_ignore_ascii_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

pub async fn handle(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let mut record = RequestRecord {
        started: Instant::now(),
        request_id: state.next_request_id(),
        widget: widget_header(req.headers()),
        method: req.method().as_str().to_owned(),
        routed: Routed::default(),
        status: None,
        state: state.clone(),
    };
    let result = forward(&req, payload, &state, &record.widget, &mut record.routed).await;
    let mut response = result.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    if let Ok(value) = HeaderValue::from_str(&record.request_id) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    record.status = Some(response.status().as_u16());
    response
}

/// How far routing got, for the log line and the metrics labels.
#[derive(Default)]
struct Routed {
    service: String,
    widget_known: bool,
    endpoint_known: bool,
}

/// A request's log line and metrics, written once however it ends: when `handle`
/// answers, and also when actix drops the request unanswered (a request body whose
/// framing breaks midway, a shutdown past its grace), which is logged as 499.
struct RequestRecord {
    started: Instant,
    request_id: String,
    widget: String,
    method: String,
    routed: Routed,
    /// The status answered; `None` until then.
    status: Option<u16>,
    state: web::Data<AppState>,
}

/// nginx's "client closed request": the connection ended before the answer.
const UNANSWERED: u16 = 499;

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let status = self.status.unwrap_or(UNANSWERED);
        let routed = &self.routed;
        info!(self.state.log, "request";
            "request_id" => &self.request_id,
            "widget" => &self.widget,
            "endpoint" => &routed.service,
            "method" => &self.method,
            "status" => status,
            "duration_ms" => elapsed.as_secs_f64() * 1000.0,
        );
        if routed.widget_known {
            // The endpoint as registered (upper-cased, as matched), so that every spelling
            // a request may use for it (`status`, `STATUS`, `ß`/`ss`) counts under one label.
            let endpoint = if routed.endpoint_known { routed.service.to_uppercase().to_lowercase() } else { "unknown".into() };
            let labels = RequestLabels { widget: std::mem::take(&mut self.widget), endpoint, method: std::mem::take(&mut self.method), status };
            self.state.metrics.record(labels, elapsed);
        }
    }
}

async fn forward(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    widget: &str,
    routed: &mut Routed,
) -> Result<HttpResponse, GatewayError> {
    let config = &state.config;
    let path = req.uri().path();
    let widget_path = WidgetPath::parse(&config.server.context_path, path)
        .ok_or_else(|| GatewayError::not_found(format!("Cannot {} {path}", req.method())))?;
    let raw_service = widget_path.service;
    let service = decode_param(raw_service)
        .ok_or_else(|| GatewayError::bad_request(format!("Failed to decode param '{raw_service}'")))?;
    routed.service = service.clone();

    if req.headers().get("widget-id").is_none() {
        return Err(GatewayError::bad_request("The widget-id header is missing: say which widget is calling"));
    }
    if !is_valid_widget_id(widget) {
        return Err(GatewayError::bad_request(format!(
            "The widget-id header `{}` is not a widget folder name (no `/`, `\\`, `..` or control characters)",
            widget.escape_debug()
        )));
    }

    let user = auth::authenticate(req, config, &state.tokens, &state.auth_client()).await?;

    let declared_length = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > config.server.max_body_size) {
        return Err(too_large(config.server.max_body_size));
    }

    // Methods are case-sensitive (RFC 9110), as they are for the stage's Node server.
    let method = req.method().as_str();
    if !WIDGET_METHODS.contains(&method) {
        return Err(GatewayError::not_found(format!(
            "There is no service {} for method {method} for widget {widget} registered (valid methods: GET,POST,PUT,DELETE,PATCH)",
            service.to_uppercase()
        )));
    }
    // A wait in the widget's queue is bounded by the handler timeout too.
    let route = state.supervisor.route(widget, &service, method, config.workers.handler_timeout).await;
    routed.widget_known = !matches!(route, Err(RouteError::NoWidget));
    let (conn, slot) = route.map_err(|e| route_error(e, widget, &service, method))?;
    routed.endpoint_known = true;

    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let rest = widget_path.rest;
    let url = if rest.is_empty() { format!("/{query}") } else { format!("{rest}{query}") };
    // HTTP/1.1 framing: without a length or a transfer coding there is no body.
    let has_body = req.headers().contains_key("transfer-encoding") || declared_length.is_some_and(|len| len > 0);
    let head = RequestHead {
        id: 0,
        method: method.to_owned(),
        url,
        original_url: req.uri().path_and_query().map_or_else(|| path.to_owned(), |p| p.as_str().to_owned()),
        base_url: widget_path.base_url(),
        service: service.clone(),
        headers: header_lines(req.headers()),
        ip: req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        protocol: "http",
        user,
        window: 0,
        end: !has_body,
    };
    let mut exchange = Exchange::begin(conn, head, slot)
        .ok_or_else(|| {
            GatewayError::unavailable(
                format!("Widget {widget} cannot serve now: it is restarting after a crash"),
                Some(std::time::Duration::from_secs(1)),
            )
        })?;
    let mut too_large_rx = if has_body {
        exchange.send_body(payload, config.server.max_body_size)
    } else {
        // Never fires: there is nothing to read.
        tokio::sync::oneshot::channel().1
    };

    let timeout = config.workers.handler_timeout;
    let peer = req.conn_data::<PeerSocket>().copied();
    let head = tokio::select! {
        head = tokio::time::timeout(timeout, exchange.head()) => head,
        Ok(BodyTooLarge) = &mut too_large_rx => {
            exchange.cancel(CancelReason::Client);
            return Err(too_large(config.server.max_body_size));
        }
        () = client_gone(peer) => {
            exchange.cancel(CancelReason::Client);
            // Nobody will read this; it is what the request's log line shows (nginx's 499).
            return Err(GatewayError::new(
                StatusCode::from_u16(UNANSWERED).unwrap_or(StatusCode::BAD_REQUEST),
                "The client closed the connection before the widget answered",
            ));
        }
    };
    let head = match head {
        Err(_) => {
            exchange.cancel(CancelReason::Timeout);
            return Err(GatewayError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "Widget {widget} did not answer {method} {service} within {} (handler_timeout)",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        Ok(Err(gone)) => {
            return Err(GatewayError::new(
                StatusCode::BAD_GATEWAY,
                format!("Widget {widget} failed while handling {method} {service}: {gone}"),
            ))
        }
        Ok(Ok(head)) => head,
    };

    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(phrase) = reason::for_status(head.status, head.reason.as_deref()) {
        response.reason(phrase);
    }
    let mut content_length = None;
    for (name, value) in head.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "content-length" {
            content_length = value.trim().parse::<u64>().ok();
        }
        if HOP_BY_HOP.contains(&lower.as_str()) {
            continue;
        }
        // Bytes as Node writes them: a character each (latin-1), unless the head went out
        // with a string body, which Node writes as UTF-8.
        let bytes: Option<Vec<u8>> = if head.utf8 {
            Some(value.into_bytes())
        } else {
            value.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
        };
        let value = bytes.ok_or(()).and_then(|b| HeaderValue::from_bytes(&b).map_err(|_| ()));
        match (HeaderName::from_bytes(lower.as_bytes()), value) {
            (Ok(name), Ok(value)) => {
                response.append_header((name, value));
            }
            _ => warn!(state.log, "dropped an invalid response header"; "widget" => widget, "header" => lower),
        }
    }
    if head.end {
        let body = head.body;
        // The shim gives a Content-Length wherever Node would; a body without one went out
        // in Node after its head (writeHead, write), so chunked, as it is here.
        let bodyless = matches!(head.status, 100..=199 | 204 | 304);
        return Ok(if content_length.is_some() || bodyless {
            response.body(body)
        } else {
            response.body(BodyStream::new(futures_util::stream::once(async { Ok::<_, std::convert::Infallible>(body) })))
        });
    }
    // A stream that stalls writes nothing, so actix would never see its client leave and
    // the request would hold the widget's slot until the worker ends: end it then.
    let body = exchange.into_body().take_until(client_gone(peer));
    // `body`, not `streaming`: the latter adds a Content-Type the widget did not set.
    Ok(match content_length {
        Some(length) => response.body(SizedStream::new(length, body)),
        None => response.body(BodyStream::new(body)),
    })
}

/// Resolves once the client has closed its connection; never, where that cannot be known.
async fn client_gone(peer: Option<PeerSocket>) {
    match peer {
        Some(peer) => peer.closed().await,
        None => std::future::pending().await,
    }
}

fn too_large(limit: u64) -> GatewayError {
    GatewayError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body is larger than the limit of {} (server.max_body_size)", bytesize::ByteSize(limit).display().si()),
    )
}

fn route_error(error: RouteError, widget: &str, service: &str, method: &str) -> GatewayError {
    match error {
        RouteError::NoWidget => GatewayError::not_found(format!("Widget {widget} not found")),
        RouteError::NoBackend => GatewayError::not_found(format!("Widget {widget} has no backend")),
        RouteError::NoEndpoint { available } => GatewayError::not_found(format!(
            "There is no service {} for method {method} for widget {widget} registered (it has: {})",
            service.to_uppercase(),
            if available.is_empty() { "no endpoints".to_owned() } else { describe(&available) }
        )),
        RouteError::LoadFailed(load_error) => {
            GatewayError::unavailable(format!("Widget {widget} backend failed to load: {load_error}"), None)
        }
        RouteError::Unavailable { reason, retry_after } => {
            GatewayError::unavailable(format!("Widget {widget} cannot serve now: it {reason}"), Some(retry_after))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_param, WidgetPath};

    #[test]
    fn decodes_params_like_decode_uri_component() {
        assert_eq!(decode_param("st%61tus").as_deref(), Some("status"));
        assert_eq!(decode_param("%C5%BC%2F").as_deref(), Some("ż/"));
        assert_eq!(decode_param("plain").as_deref(), Some("plain"));
        for refused in ["in%ZZfo", "end%", "end%4", "%FF", "%C5"] {
            assert_eq!(decode_param(refused), None, "{refused}");
        }
    }

    /// (service, req.url before the query, req.baseUrl), or None where the stage's router
    /// does not match (each checked against Express 4.21).
    fn split(context_path: &str, path: &str) -> Option<(String, String, String)> {
        let parsed = WidgetPath::parse(context_path, path)?;
        Some((parsed.service.to_owned(), parsed.rest.to_owned(), parsed.base_url()))
    }

    fn parts(service: &str, rest: &str, base_url: &str) -> Option<(String, String, String)> {
        Some((service.to_owned(), rest.to_owned(), base_url.to_owned()))
    }

    #[test]
    fn splits_like_router_use_service() {
        assert_eq!(split("/console", "/console/wb/status"), parts("status", "", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb/status/a/b"), parts("status", "/a/b", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb/status/"), parts("status", "", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb/"), None);
        assert_eq!(split("/console", "/console/wb"), None);
        assert_eq!(split("/console", "/console/wbx/status"), None);
        assert_eq!(split("/console", "/other/wb/status"), None);
        assert_eq!(split("", "/wb/x"), parts("x", "", "/wb/x"));
        assert_eq!(split("/console", "/Console/WB/st%61tus"), parts("st%61tus", "", "/Console/WB/st%61tus"));
        assert_eq!(split("/console", "/consolé/wb/status"), None);
        assert_eq!(split("/console", "/cons"), None);
    }

    #[test]
    fn a_doubled_slash_after_a_matched_part_belongs_to_it_as_in_express() {
        assert_eq!(split("/console", "/console/wb//status"), parts("status", "", "/console/wb/status"));
        assert_eq!(split("/console", "/Console/WB//status/a"), parts("status", "/a", "/Console/WB/status"));
        assert_eq!(split("/console", "/console/wb/status//x"), parts("status", "/x", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb/status//"), parts("status", "/", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb/status///x"), parts("status", "//x", "/console/wb/status"));
        assert_eq!(split("/console", "/console/wb///status"), None);
    }
}
