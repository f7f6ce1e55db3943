//! Everything about how a widget's Node child is started: its command line, environment,
//! and the walls set up between fork and exec.
//!
//! The JavaScript `require` allow-list in the shim is only the first wall, and JS-level
//! sandboxes have a long history of escapes, so each worker also gets, where the host
//! allows it:
//! - an environment built from nothing (no variable of the gateway's reaches it);
//! - its own network namespace, with no interface up (helpers run in the gateway);
//! - its own unprivileged uid/gid (one per widget, so widgets cannot signal or read each
//!   other) when the gateway runs as root, and `no_new_privs`;
//! - resource limits: data size (backing the V8 heap limit), open files, processes, file
//!   size 0, no core dumps;
//! - Node's permission model: reads only of the shim, the widget folder and the allowed
//!   modules; no writes, child processes, worker threads or native addons;
//! - a Landlock ruleset granting the same read-only paths plus what the Node runtime
//!   itself needs, enforced by the kernel even if Node's checks are bypassed.
//!
//! Each layer is probed once at start-up by starting Node behind it, so the
//! log and `/_wbe/status` say exactly which walls stand; with `sandbox.required` a
//! missing one stops the gateway instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use landlock::{
    path_beneath_rules, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, ABI,
};
use nix::unistd::{Gid, Uid};
use serde::Serialize;
use tokio::process::Command;

use crate::config::{Config, SandboxConfig};

/// One wall and whether it stands.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub name: &'static str,
    pub active: bool,
    /// Why it is off, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Layer {
    fn on(name: &'static str) -> Layer {
        Layer { name, active: true, reason: None }
    }

    fn off(name: &'static str, reason: impl Into<String>) -> Layer {
        Layer { name, active: false, reason: Some(reason.into()) }
    }
}

/// Who a worker runs as.
#[derive(Debug, Clone, Copy)]
enum Identity {
    /// Keep the gateway's own uid (not root, or switching turned off).
    Inherit,
    /// One named user for every worker.
    Fixed(Uid, Gid),
    /// A uid/gid of its own per widget, counted up from a base.
    PerWidget { base: u32 },
}

/// What a worker is handed, every symlink resolved. Node's permission model checks the
/// paths a worker opens, and following a symlink means reading the link, which a worker
/// may only do inside its grants; so a worker only ever sees real paths, and a deploy
/// that reaches the widgets or wbe itself through a symlink (`current -> release-N`)
/// works.
#[derive(Debug, Clone)]
pub struct WorkerPaths {
    pub shim: PathBuf,
    pub widget_dir: PathBuf,
    pub backend: PathBuf,
    pub modules_dir: PathBuf,
}

impl WorkerPaths {
    /// A path that does not resolve (yet) is kept as it is; starting the worker says why.
    pub fn resolve(config: &Config, widget_dir: &Path, backend: &Path) -> WorkerPaths {
        let real = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        WorkerPaths {
            shim: real(&config.shim_path()),
            widget_dir: real(widget_dir),
            backend: real(backend),
            modules_dir: real(config.modules_dir()),
        }
    }
}

pub struct Sandbox {
    layers: Vec<Layer>,
    network: bool,
    identity: Identity,
    no_new_privs: bool,
    limits: bool,
    permission_flag: Option<&'static str>,
    landlock: bool,
    next_id_offset: AtomicU32,
    settings: SandboxConfig,
}

/// How long a probe may take; a layer that makes Node hang counts as unavailable.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Files and folders the Node runtime itself reads (shared libraries, loader cache, TLS
/// and time-zone data); granted read-only by Landlock in addition to the widget's own.
const RUNTIME_PATHS: &[&str] = &[
    "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/share/zoneinfo", "/etc/ld.so.cache", "/etc/ssl",
    "/etc/localtime", "/dev/null", "/dev/urandom", "/sys/fs/cgroup",
    // Node reads its own memory use from /proc/self; "self" cannot be named here (it would
    // resolve to the gateway), and other processes' entries are closed by the uid switch.
    "/proc",
];

impl Sandbox {
    /// Probes which layers this host allows. Fails, naming the missing layers, when
    /// `sandbox.required` is set and any configured layer cannot be set up.
    pub async fn prepare(config: &Config) -> Result<Sandbox, String> {
        let settings = config.sandbox.clone();
        let root = Uid::effective().is_root();
        let mut sandbox = Sandbox {
            layers: Vec::new(),
            network: false,
            identity: Identity::Inherit,
            no_new_privs: settings.no_new_privs,
            limits: settings.limits,
            permission_flag: None,
            landlock: false,
            next_id_offset: AtomicU32::new(0),
            settings: settings.clone(),
        };
        sandbox.layers.push(Layer::on("clean_environment"));

        if settings.network {
            let unavailable = "cannot create a network namespace";
            sandbox.probe_kernel_layer(config, "network_namespace", |s| &mut s.network, unavailable).await;
        } else {
            sandbox.layers.push(Layer::off("network_namespace", "turned off (sandbox.network = false)"));
        }

        if !settings.switch_user {
            sandbox.layers.push(Layer::off("user", "turned off (sandbox.switch_user = false)"));
        } else if !root {
            sandbox.layers.push(Layer::off("user", "wbe is not running as root, so workers keep its uid"));
        } else if settings.user.is_empty() {
            sandbox.identity = Identity::PerWidget { base: settings.uid_base };
            sandbox.layers.push(Layer::on("user"));
        } else {
            match nix::unistd::User::from_name(&settings.user) {
                Ok(Some(user)) if !user.uid.is_root() => {
                    sandbox.identity = Identity::Fixed(user.uid, user.gid);
                    sandbox.layers.push(Layer::on("user"));
                }
                Ok(Some(_)) => sandbox.layers.push(Layer::off("user", "sandbox.user is root")),
                _ => sandbox.layers.push(Layer::off("user", format!("no such user `{}`", settings.user))),
            }
        }
        if !matches!(sandbox.identity, Identity::Inherit) {
            if let Err(e) = sandbox.probe(config).await {
                sandbox.identity = Identity::Inherit;
                if let Some(layer) = sandbox.layers.iter_mut().find(|l| l.name == "user") {
                    *layer = Layer::off("user", format!("cannot switch user: {e}"));
                }
            }
        }

        sandbox.layers.push(if settings.no_new_privs { Layer::on("no_new_privs") } else { Layer::off("no_new_privs", "turned off") });
        sandbox.layers.push(if settings.limits { Layer::on("resource_limits") } else { Layer::off("resource_limits", "turned off") });

        if !settings.node_permissions {
            sandbox.layers.push(Layer::off("node_permissions", "turned off (sandbox.node_permissions = false)"));
        } else {
            match permission_flag(config).await {
                Ok(flag) => {
                    sandbox.permission_flag = Some(flag);
                    sandbox.layers.push(Layer::on("node_permissions"));
                }
                Err(e) => sandbox.layers.push(Layer::off("node_permissions", e)),
            }
        }

        if settings.landlock {
            sandbox.probe_kernel_layer(config, "landlock", |s| &mut s.landlock, "not available on this kernel").await;
        } else {
            sandbox.layers.push(Layer::off("landlock", "turned off (sandbox.landlock = false)"));
        }

        if settings.required {
            let missing: Vec<String> = sandbox
                .layers
                .iter()
                .filter(|l| !l.active)
                .map(|l| format!("{} ({})", l.name, l.reason.as_deref().unwrap_or("off")))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "sandbox.required is set but these layers cannot be set up: {}; run wbe as root on a kernel with user namespaces and Landlock, or set sandbox.required = false",
                    missing.join(", ")
                ));
            }
        }
        Ok(sandbox)
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Turns on a layer the kernel must support (`switch` picks its flag) and keeps it
    /// only if Node starts behind it.
    async fn probe_kernel_layer(&mut self, config: &Config, name: &'static str, switch: fn(&mut Sandbox) -> &mut bool, unavailable: &str) {
        *switch(self) = true;
        match self.probe(config).await {
            Ok(()) => self.layers.push(Layer::on(name)),
            Err(e) => {
                *switch(self) = false;
                self.layers.push(Layer::off(name, format!("{unavailable}: {e}")));
            }
        }
    }

    /// Has Node syntax-check the shim behind the layers enabled so far: proof that they
    /// can be set up and that a worker behind them can still read the shim (an install in
    /// a folder only root may enter fails here, not at every worker start).
    async fn probe(&self, config: &Config) -> Result<(), String> {
        let shim = config.shim_path();
        let shim_dir = shim.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut cmd = self.base_command(config, Path::new("/"), &[shim_dir], None)?;
        cmd.arg("--check").arg(&shim).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let output = tokio::time::timeout(PROBE_TIMEOUT, cmd.kill_on_drop(true).output())
            .await
            .map_err(|_| format!("no answer within {}s", PROBE_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let cause = stderr.lines().find(|l| l.contains("Error")).or_else(|| stderr.lines().next()).unwrap_or("");
            Err(format!("{} ({}); is {} readable by every user?", output.status, cause.trim(), shim.display()))
        }
    }

    /// A uid/gid for a new widget: each widget gets its own, stable for its lifetime.
    pub fn identity_for_new_widget(&self) -> Option<(Uid, Gid)> {
        match self.identity {
            Identity::Inherit => None,
            Identity::Fixed(uid, gid) => Some((uid, gid)),
            Identity::PerWidget { base } => {
                let offset = self.next_id_offset.fetch_add(1, Ordering::Relaxed);
                let id = base.saturating_add(offset);
                Some((Uid::from_raw(id), Gid::from_raw(id)))
            }
        }
    }

    /// The command that starts one widget worker, with its working directory in the
    /// widget's own folder and the layers applied.
    pub fn worker_command(&self, config: &Config, paths: &WorkerPaths, identity: Option<(Uid, Gid)>) -> Result<Command, String> {
        let shim_dir = paths.shim.parent().unwrap_or(Path::new("/")).to_path_buf();
        let readable = [shim_dir, paths.widget_dir.clone(), paths.modules_dir.clone()];
        let mut cmd = self.base_command(config, &paths.widget_dir, &readable, identity)?;
        let heap_mb = (config.workers.memory_limit / 1_000_000).max(16);
        cmd.arg(format!("--max-old-space-size={heap_mb}"));
        if let Some(flag) = self.permission_flag {
            cmd.arg(flag);
            for path in &readable {
                cmd.arg(format!("--allow-fs-read={}", path.display()));
            }
        }
        cmd.arg(&paths.shim).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        Ok(cmd)
    }

    fn base_command(
        &self,
        config: &Config,
        dir: &Path,
        readable: &[PathBuf],
        identity: Option<(Uid, Gid)>,
    ) -> Result<Command, String> {
        let mut cmd = Command::new(&config.workers.node);
        cmd.arg("--no-warnings").current_dir(dir).env_clear().env("NODE_ENV", "production");
        let identity = identity.or(match self.identity {
            // The probe runs as the first per-widget uid.
            Identity::PerWidget { base } => Some((Uid::from_raw(base), Gid::from_raw(base))),
            Identity::Fixed(uid, gid) => Some((uid, gid)),
            Identity::Inherit => None,
        });
        let mut ruleset = if self.landlock { Some(landlock_ruleset(&config.workers.node, readable)?) } else { None };
        let network = self.network;
        let no_new_privs = self.no_new_privs;
        // The OS limit backs the V8 heap limit for memory V8 does not count (Buffers,
        // native allocations), with room for the runtime's own needs.
        let data_limit = config.workers.memory_limit.saturating_mul(3) / 2 + 128_000_000;
        let limits = self.limits.then_some((self.settings.max_open_files, self.settings.max_processes, data_limit));
        // SAFETY: the closure runs in the forked child before exec. It makes system calls
        // only (prctl, unshare, setrlimit, setgroups/setgid/setuid, landlock) and does not
        // allocate: the ruleset was built before the fork and is only consumed here.
        unsafe {
            cmd.pre_exec(move || {
                use nix::sys::resource::{setrlimit, Resource};
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                if network {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
                }
                if let Some((files, processes, data)) = limits {
                    setrlimit(Resource::RLIMIT_DATA, data, data)?;
                    setrlimit(Resource::RLIMIT_NOFILE, files, files)?;
                    setrlimit(Resource::RLIMIT_NPROC, processes, processes)?;
                    setrlimit(Resource::RLIMIT_FSIZE, 0, 0)?;
                }
                if let Some((uid, gid)) = identity {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
                if no_new_privs {
                    nix::sys::prctl::set_no_new_privs()?;
                }
                if let Some(ruleset) = ruleset.take() {
                    ruleset.restrict_self().map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                Ok(())
            });
        }
        Ok(cmd)
    }
}

/// A Landlock ruleset allowing only reads (and executing the runtime) beneath
/// `readable` and the runtime's own paths; everything else — writes anywhere, reads of
/// `/etc/passwd`, the config, other widgets — the kernel refuses.
fn landlock_ruleset(node: &Path, readable: &[PathBuf]) -> Result<RulesetCreated, String> {
    let abi = ABI::V1;
    let node_binary = which(node).unwrap_or_else(|| node.to_path_buf());
    let mut paths: Vec<PathBuf> = RUNTIME_PATHS.iter().map(PathBuf::from).filter(|p| p.exists()).collect();
    paths.push(node_binary);
    paths.extend(readable.iter().cloned());
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(&paths, AccessFs::from_read(abi))))
        .map_err(|e| e.to_string())?;
    Ok(ruleset)
}

/// Resolves a bare command name through PATH, the way exec will.
fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.canonicalize().ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).and_then(|p| p.canonicalize().ok())
}

/// The flag that turns Node's permission model on, which depends on Node's version.
async fn permission_flag(config: &Config) -> Result<&'static str, String> {
    let output = Command::new(&config.workers.node)
        .arg("--version")
        .env_clear()
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", config.workers.node.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().trim_start_matches('v').to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match (major, minor) {
        (0..=19, _) => Err(format!("Node {version} has no permission model (Node >= 20 needed)")),
        (20 | 21, _) => Ok("--experimental-permission"),
        (22, 0..=12) => Ok("--experimental-permission"),
        _ => Ok("--permission"),
    }
}
