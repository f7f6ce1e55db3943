//! Per-widget workers: starting them, keeping them alive, and deciding whether a widget
//! can take a request right now.
//!
//! Each widget with a backend gets one supervising task (on the gateway's main thread)
//! that starts its Node child, publishes what the backend registered, and restarts the
//! child with exponential backoff when it dies. A backend that fails to load is not
//! restarted: it stays failed, with its load error, until its files change. Whatever
//! happens to one widget's child touches only that widget's requests.

mod exchange;
mod worker;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use slog::{error, info, o, warn, Logger};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

pub use exchange::{BodyTooLarge, Exchange};
pub use worker::{WorkerConn, WorkerGone};

use crate::config::Config;
use crate::helpers::Helpers;
use crate::protocol::{Endpoint, LoadError};
use crate::registry::{self, WidgetSource};

/// What a widget can do right now.
#[derive(Clone)]
pub enum WidgetState {
    /// The widget folder has no backend file.
    NoBackend,
    Starting,
    Ready { conn: Arc<WorkerConn>, endpoints: Vec<Endpoint> },
    /// The backend does not load; it stays so until its files change.
    LoadFailed(LoadError),
    /// The worker died and is waiting out its backoff before the next start.
    Restarting { until: Instant, reason: String },
}

/// One widget and its worker's history.
pub struct Widget {
    pub source: WidgetSource,
    state: RwLock<WidgetState>,
    pub restarts: AtomicU64,
    admission: Admission,
}

impl Widget {
    pub fn state(&self) -> WidgetState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_state(&self, state: WidgetState) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

/// Bounds the work one widget can queue in the gateway: `max_inflight` requests run at
/// once, up to `queue_limit` more wait, and beyond that requests are refused at once.
struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_limit: usize,
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

pub struct Supervisor {
    config: Arc<Config>,
    widgets: RwLock<BTreeMap<String, Arc<Widget>>>,
    settled: Notify,
    /// Flips to `true` once, when the gateway shuts down.
    stopping: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    log: Logger,
}

impl Supervisor {
    /// Scans the widget folders and starts a worker for every backend. Returns once every
    /// widget has either registered its endpoints or reported why it cannot.
    pub async fn start(config: Arc<Config>, helpers: Rc<Helpers>, log: Logger) -> Arc<Supervisor> {
        let scan = registry::scan(&config.widgets);
        for warning in &scan.warnings {
            warn!(log, "{}", warning);
        }
        let supervisor = Arc::new(Supervisor {
            config: config.clone(),
            widgets: RwLock::new(BTreeMap::new()),
            settled: Notify::new(),
            stopping: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
            log: log.clone(),
        });
        for (id, source) in scan.widgets {
            let state = if source.backend.is_some() { WidgetState::Starting } else { WidgetState::NoBackend };
            let widget = Arc::new(Widget {
                source,
                state: RwLock::new(state),
                restarts: AtomicU64::new(0),
                admission: Admission {
                    slots: Arc::new(Semaphore::new(config.workers.max_inflight)),
                    waiting: AtomicUsize::new(0),
                    queue_limit: config.workers.queue_limit,
                },
            });
            supervisor.write_widgets().insert(id, widget.clone());
            if widget.source.backend.is_some() {
                let task = actix_web::rt::spawn(supervisor.clone().keep_alive(widget, helpers.clone()));
                supervisor.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
            }
        }
        supervisor.wait_settled().await;
        supervisor
    }

    /// Stops every worker and waits until each child process has exited. Requests still
    /// in flight fail; call this after the HTTP server has drained.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
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
            if self.widgets().iter().all(|w| !matches!(w.state(), WidgetState::Starting)) {
                return;
            }
            notified.await;
        }
    }

    /// The supervising loop of one widget: start, serve until the worker dies, back off,
    /// start again. Ends only when the backend fails to load.
    async fn keep_alive(self: Arc<Self>, widget: Arc<Widget>, helpers: Rc<Helpers>) {
        let config = &self.config;
        let Some(backend) = widget.source.backend.clone() else { return };
        let log = self.log.new(o!("widget" => widget.source.id.clone()));
        let mut backoff = config.workers.restart_backoff_min;
        let mut stopping = self.stopping.subscribe();
        loop {
            let started = Instant::now();
            let reason = match worker::start(config, &widget.source, &backend, helpers.clone(), &log).await {
                Ok(running) => {
                    info!(log, "worker ready"; "pid" => running.pid(), "endpoints" => describe(&running.endpoints));
                    let conn = running.conn.clone();
                    widget.set_state(WidgetState::Ready { conn, endpoints: running.endpoints.clone() });
                    self.settled.notify_waiters();
                    running.supervise(config.workers.heartbeat, &mut stopping).await
                }
                Err(worker::StartError::Load(load_error)) => {
                    error!(log, "backend failed to load: {}", load_error; "file" => load_error.file.clone(), "line" => load_error.line);
                    widget.set_state(WidgetState::LoadFailed(load_error));
                    self.settled.notify_waiters();
                    return;
                }
                Err(worker::StartError::Spawn(reason)) => WorkerGone(reason),
            };
            if *stopping.borrow() {
                info!(log, "worker stopped");
                return;
            }
            // A worker that ran for a while earned a fresh start; one that keeps dying
            // right away waits longer each time.
            if started.elapsed() > config.workers.restart_backoff_max {
                backoff = config.workers.restart_backoff_min;
            }
            widget.restarts.fetch_add(1, Ordering::Relaxed);
            error!(log, "worker crashed: {}", reason; "restart_in" => humantime::format_duration(backoff).to_string());
            widget.set_state(WidgetState::Restarting { until: Instant::now() + backoff, reason: reason.0 });
            self.settled.notify_waiters();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(config.workers.restart_backoff_max);
        }
    }

    /// Finds the worker that serves `service`/`method` of widget `id` and takes one of
    /// the widget's admission slots (waiting in its queue if need be).
    pub async fn route(
        &self,
        id: &str,
        service: &str,
        method: &str,
    ) -> Result<(Arc<WorkerConn>, OwnedSemaphorePermit), RouteError> {
        let widget = self.widget(id).ok_or(RouteError::NoWidget)?;
        let conn = match widget.state() {
            WidgetState::NoBackend => return Err(RouteError::NoBackend),
            WidgetState::LoadFailed(e) => return Err(RouteError::LoadFailed(e)),
            WidgetState::Starting => {
                return Err(RouteError::Unavailable { reason: "is starting".into(), retry_after: Duration::from_secs(1) })
            }
            WidgetState::Restarting { until, reason } => {
                return Err(RouteError::Unavailable {
                    reason: format!("is restarting after a crash ({reason})"),
                    retry_after: until.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)),
                })
            }
            WidgetState::Ready { conn, endpoints } => {
                // The stage matches upper-cased names, so must we (`ß` is `SS`, not `ß`).
                let service = service.to_uppercase();
                if !endpoints.iter().any(|e| e.name == service && e.method == method) {
                    return Err(RouteError::NoEndpoint { available: endpoints });
                }
                conn
            }
        };
        let admission = &widget.admission;
        let slot = match admission.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if admission.waiting.fetch_add(1, Ordering::AcqRel) >= admission.queue_limit {
                    admission.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(RouteError::Unavailable {
                        reason: "is busy: its request queue is full".into(),
                        retry_after: Duration::from_secs(1),
                    });
                }
                let slot = admission.slots.clone().acquire_owned().await;
                admission.waiting.fetch_sub(1, Ordering::AcqRel);
                slot.map_err(|_| RouteError::Unavailable { reason: "is stopping".into(), retry_after: Duration::from_secs(1) })?
            }
        };
        Ok((conn, slot))
    }
}

/// `GET status, POST data` — endpoints as a person reads them.
pub fn describe(endpoints: &[Endpoint]) -> String {
    endpoints.iter().map(|e| format!("{} {}", e.method, e.name.to_lowercase())).collect::<Vec<_>>().join(", ")
}
