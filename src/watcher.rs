//! Noticing that widget folders changed, and asking the supervisor to rescan.
//!
//! Three triggers, all ending in the same `Supervisor::reload`: file-system notification
//! (notify; events are debounced so that an editor's save or a `cp -r` costs one rescan),
//! a polling interval for network file systems that never deliver notifications, and
//! SIGHUP for operators and deploy scripts. A rescan is cheap when nothing changed: it
//! compares fingerprints of the widget folders and touches no worker.
//!
//! A watch follows a folder, not its path: a deploy that renames a new widgets folder
//! into place, or switches a symlink on the way to it, leaves the watch on the old folder
//! and no event says so. So the configured folders' identities (device and inode, after
//! symlinks) are checked every [`IDENTITY_CHECK`]; a folder that changed is watched anew
//! and rescanned.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
/// How often the watched folders are checked for having been replaced as a whole.
const IDENTITY_CHECK: Duration = Duration::from_secs(2);

/// Starts every configured trigger; they run for as long as the server does.
pub fn start(supervisor: Arc<Supervisor>, config: &Config, log: Logger) {
    let (events_tx, events_rx) = mpsc::unbounded_channel::<()>();
    if config.widgets.watch {
        if let Some(watch) = FolderWatch::start(config, events_tx.clone(), &log) {
            actix_web::rt::spawn(watch.follow_replacements(events_tx.clone(), log.clone()));
        }
    }

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
}

/// The file watch on the widget folders, and which folder each configured path named
/// when it was set up.
struct FolderWatch {
    watcher: notify::RecommendedWatcher,
    folders: Vec<(PathBuf, Option<FolderIdentity>)>,
}

/// Device and inode of the folder a path leads to (through any symlinks).
type FolderIdentity = (u64, u64);

fn identity(path: &Path) -> Option<FolderIdentity> {
    std::fs::metadata(path).ok().map(|meta| (meta.dev(), meta.ino()))
}

impl FolderWatch {
    fn start(config: &Config, events: mpsc::UnboundedSender<()>, log: &Logger) -> Option<FolderWatch> {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = events.send(());
            }
        });
        let mut watch = match watcher {
            Ok(watcher) => FolderWatch { watcher, folders: Vec::new() },
            Err(e) => {
                warn!(log, "file change notification unavailable ({}); use SIGHUP, POST /_wbe/reload or widgets.poll_interval", e);
                return None;
            }
        };
        for dir in &config.widgets.dirs {
            watch.watch(dir.clone(), identity(dir), log);
        }
        Some(watch)
    }

    /// Watches `dir` if it leads to a folder (`id`, its identity), and remembers which.
    fn watch(&mut self, dir: PathBuf, id: Option<FolderIdentity>, log: &Logger) {
        if id.is_some() {
            if let Err(e) = self.watcher.watch(&dir, RecursiveMode::Recursive) {
                warn!(log, "cannot watch {} ({}); changes there need SIGHUP, POST /_wbe/reload or widgets.poll_interval", dir.display(), e);
            }
        } else {
            warn!(log, "widget folder {} does not exist; it is watched once it does", dir.display());
        }
        self.folders.push((dir, id));
    }

    /// Every [`IDENTITY_CHECK`], watches anew each configured path that now leads to
    /// another folder (or to one at all), and asks for a rescan. The checks run off the
    /// main thread: a stat on a hung network mount must not stall the supervisors.
    async fn follow_replacements(mut self, rescan: mpsc::UnboundedSender<()>, log: Logger) {
        let mut interval = tokio::time::interval(IDENTITY_CHECK);
        loop {
            interval.tick().await;
            let folders = self.folders.clone();
            let Ok(replaced) = tokio::task::spawn_blocking(move || {
                folders
                    .into_iter()
                    .filter_map(|(dir, id)| Some(identity(&dir)).filter(|now| *now != id).map(|now| (dir, now)))
                    .collect::<Vec<_>>()
            })
            .await
            else {
                continue;
            };
            if replaced.is_empty() {
                continue;
            }
            for (dir, id) in replaced {
                info!(log, "widget folder created or replaced, watching it anew"; "dir" => dir.display().to_string());
                // The old folder may be gone already; its watch goes either way.
                let _ = self.watcher.unwatch(&dir);
                self.folders.retain(|(watched, _)| *watched != dir);
                self.watch(dir, id, &log);
            }
            if rescan.send(()).is_err() {
                return;
            }
        }
    }
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
