//! Everything about how a widget's Node child is started: its command line, environment
//! and the process settings applied between fork and exec.
//!
//! The child must need nothing from the gateway but the protocol on its stdio: it gets an
//! environment built from nothing (no variable of the gateway's — tokens, proxies, cloud
//! credentials — reaches widget code), a V8 heap limit, no core dumps, and it is killed
//! when the gateway dies so that no widget outlives the server that supervises it.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::config::Config;

/// The command that starts one widget worker running `shim`, with its working directory
/// in the widget's own folder.
pub fn worker_command(config: &Config, widget_dir: &Path) -> Command {
    let heap_mb = (config.workers.memory_limit / 1_000_000).max(16);
    let mut cmd = Command::new(&config.workers.node);
    cmd.arg(format!("--max-old-space-size={heap_mb}"))
        .arg("--no-warnings")
        .arg(config.shim_path())
        .current_dir(widget_dir)
        .env_clear()
        .env("NODE_ENV", "production")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, setrlimit); it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::resource::{setrlimit, Resource};
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            Ok(())
        });
    }
    cmd
}
