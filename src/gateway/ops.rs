//! The `/_wbe/` endpoints operators and load balancers use.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::AppState;
use crate::metrics::WorkerSample;
use crate::supervisor::WidgetState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready once every widget has loaded or reported why it cannot.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let starting: Vec<String> = state
        .supervisor
        .widgets()
        .iter()
        .filter(|w| matches!(w.state(), WidgetState::Starting))
        .map(|w| w.source.id.clone())
        .collect();
    if starting.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "starting", "widgets": starting }))
    }
}

pub async fn status(state: web::Data<AppState>) -> HttpResponse {
    let widgets: Vec<Value> = state
        .supervisor
        .widgets()
        .iter()
        .map(|w| {
            let restarts = w.restarts.load(std::sync::atomic::Ordering::Relaxed);
            let (requests, errors, latency) = state.metrics.widget_summary(&w.source.id);
            let base = json!({
                "id": w.source.id,
                "dir": w.source.dir,
                "backend": w.source.backend,
                "restarts": restarts,
                "requests": requests,
                "errors": errors,
                "latency": latency,
            });
            let detail = match w.state() {
                WidgetState::NoBackend => json!({ "state": "no_backend" }),
                WidgetState::Starting => json!({ "state": "starting" }),
                WidgetState::Ready { workers, endpoints, reload_error } => {
                    let sample = WorkerSample::of(&w.source.id, 0, &workers);
                    json!({
                        "state": "ready",
                        "load_error": reload_error,
                        "pid": workers.first().map(|c| c.pid),
                        "endpoints": endpoints,
                        "inflight": sample.inflight,
                        "memory": { "rss": sample.rss, "heap": sample.heap },
                        "workers": workers.iter().map(|c| json!({
                            "pid": c.pid,
                            "inflight": c.inflight_count(),
                            "rss": c.rss.load(std::sync::atomic::Ordering::Relaxed),
                            "heap": c.heap.load(std::sync::atomic::Ordering::Relaxed),
                        })).collect::<Vec<_>>(),
                    })
                }
                WidgetState::LoadFailed(error) => json!({ "state": "load_failed", "load_error": error }),
                WidgetState::Restarting { reason, .. } => json!({ "state": "restarting", "last_crash": reason }),
            };
            let mut merged = base;
            if let (Some(m), Value::Object(d)) = (merged.as_object_mut(), detail) {
                m.extend(d);
            }
            merged
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "sandbox": state.supervisor.sandbox.layers(),
        "widgets": widgets,
    }))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let samples = state.supervisor.widgets().into_iter().map(|w| {
        let restarts = w.restarts.load(std::sync::atomic::Ordering::Relaxed);
        match w.state() {
            WidgetState::Ready { workers, .. } => WorkerSample::of(&w.source.id, restarts, &workers),
            _ => WorkerSample::of(&w.source.id, restarts, &[]),
        }
    });
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode(samples))
}

/// `POST /_wbe/reload`: rescan the widget folders now.
pub async fn reload(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.supervisor.reload().await)
}

/// `GET /_wbe/`: the status page for people; it renders `/_wbe/status` in the browser.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("status_page.html"))
}
