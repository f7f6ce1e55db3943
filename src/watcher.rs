//! Noticing that widget folders changed, and asking the supervisor to rescan.
//!
//! Three triggers, all ending in the same `Supervisor::reload`: file-system notification
//! (notify; events are debounced so that an editor's save or a `cp -r` costs one rescan),
//! a polling interval for network file systems that never deliver notifications, and
//! SIGHUP for operators and deploy scripts. A rescan is cheap when nothing changed: it
//! compares fingerprints of the widget folders and touches no worker.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use slog::{info, warn, Logger};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::supervisor::Supervisor;

/// Quiet time after the last file event before rescanning.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Longest a rescan waits for events to quiet down.
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// Starts every configured trigger. Keep the returned watcher alive for as long as
/// changes should be noticed.
pub fn start(supervisor: Arc<Supervisor>, config: &Config, log: Logger) -> Option<notify::RecommendedWatcher> {
    let (events_tx, events_rx) = mpsc::unbounded_channel::<()>();
    let watcher = if config.widgets.watch { watch_folders(config, events_tx.clone(), &log) } else { None };

    if !config.widgets.poll_interval.is_zero() {
        let tick = events_tx.clone();
        let every = config.widgets.poll_interval;
        actix_web::rt::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                interval.tick().await;
                if tick.send(()).is_err() {
                    return;
                }
            }
        });
    }

    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            let tick = events_tx;
            let log = log.clone();
            actix_web::rt::spawn(async move {
                while hangups.recv().await.is_some() {
                    info!(log, "SIGHUP: rescanning widget folders");
                    if tick.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => warn!(log, "cannot listen for SIGHUP: {}", e),
    }

    actix_web::rt::spawn(rescan_on_events(supervisor, events_rx));
    watcher
}

fn watch_folders(config: &Config, events: mpsc::UnboundedSender<()>, log: &Logger) -> Option<notify::RecommendedWatcher> {
    let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = events.send(());
        }
    }) {
        Ok(watcher) => watcher,
        Err(e) => {
            warn!(log, "file change notification unavailable ({}); use SIGHUP, POST /_wbe/reload or widgets.poll_interval", e);
            return None;
        }
    };
    for dir in &config.widgets.dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            warn!(log, "cannot watch {} ({}); changes there need SIGHUP, POST /_wbe/reload or widgets.poll_interval", dir.display(), e);
        }
    }
    Some(watcher)
}

async fn rescan_on_events(supervisor: Arc<Supervisor>, mut events: mpsc::UnboundedReceiver<()>) {
    while events.recv().await.is_some() {
        // Let a burst of events settle (but not forever: a file rewritten continuously, or
        // a poll interval shorter than the debounce, must not postpone the rescan for
        // good), then drop what queued up meanwhile.
        let deadline = tokio::time::Instant::now() + MAX_DEBOUNCE;
        loop {
            tokio::time::sleep(DEBOUNCE).await;
            let mut more = false;
            while events.try_recv().is_ok() {
                more = true;
            }
            if !more || tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        supervisor.reload().await;
    }
}
