//! Configuration: `config.toml` plus command-line flags become one validated [`Config`].
//!
//! Every key has a default — the values written in the repository's `config.toml` — so an
//! empty file (or no file at all, the embedded default) is a valid configuration. Parsing
//! goes through `serde_path_to_error` so that a wrong key or value is reported as a single
//! line naming its dotted path (`server.lisen: unknown field ...`): that line is what an
//! operator needs to fix the file, so nothing else is printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A configuration problem, already phrased as the one line the user sees.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(key: &str, what: impl fmt::Display) -> ConfigError {
    ConfigError(format!("config error: `{key}`: {what}"))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub manager: ManagerConfig,
    pub widgets: WidgetsConfig,
    pub workers: WorkersConfig,
    pub sandbox: SandboxConfig,
    pub request: RequestConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub context_path: String,
    #[serde(deserialize_with = "size")]
    pub max_body_size: u64,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// HTTP threads; 0 means one per CPU. `finish()` resolves 0.
    pub threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
            context_path: "/console".into(),
            max_body_size: 128_000_000,
            shutdown_grace: Duration::from_secs(30),
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Manager,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    #[serde(deserialize_with = "duration")]
    pub cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { mode: AuthMode::None, cache_ttl: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerConfig {
    pub url: url::Url,
    pub api_version: String,
    #[serde(deserialize_with = "optional_path")]
    pub ca_cert: Option<PathBuf>,
    pub timeouts: ManagerTimeouts,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            url: url::Url::parse("http://127.0.0.1:80").expect("a valid literal URL"),
            api_version: "v3.1".into(),
            ca_cert: None,
            timeouts: ManagerTimeouts::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerTimeouts {
    #[serde(deserialize_with = "duration")]
    pub get: Duration,
    #[serde(deserialize_with = "duration")]
    pub post: Duration,
    #[serde(deserialize_with = "duration")]
    pub put: Duration,
    #[serde(deserialize_with = "duration")]
    pub delete: Duration,
    #[serde(deserialize_with = "duration")]
    pub patch: Duration,
}

impl Default for ManagerTimeouts {
    fn default() -> Self {
        Self {
            get: Duration::from_secs(10),
            post: Duration::from_secs(30),
            put: Duration::from_secs(30),
            delete: Duration::from_secs(10),
            patch: Duration::from_secs(30),
        }
    }
}

impl ManagerTimeouts {
    /// The default timeout for a manager call with this (upper-case) HTTP method.
    pub fn for_method(&self, method: &str) -> Duration {
        match method {
            "POST" => self.post,
            "PUT" => self.put,
            "DELETE" => self.delete,
            "PATCH" => self.patch,
            _ => self.get,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetsConfig {
    pub dirs: Vec<PathBuf>,
    pub backend_filename: String,
    pub backend_extensions: Vec<String>,
    pub ignore_folders: Vec<String>,
    pub allowed_modules: Vec<String>,
    pub allowed_builtins: Vec<String>,
    #[serde(deserialize_with = "optional_path")]
    pub modules_dir: Option<PathBuf>,
    pub watch: bool,
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
}

impl Default for WidgetsConfig {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            backend_filename: "backend".into(),
            backend_extensions: vec!["ts".into(), "js".into()],
            ignore_folders: vec!["common".into()],
            allowed_modules: vec!["lodash".into(), "body".into(), "elkjs".into()],
            allowed_builtins: Vec::new(),
            modules_dir: None,
            watch: true,
            poll_interval: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    pub node: PathBuf,
    #[serde(deserialize_with = "duration")]
    pub handler_timeout: Duration,
    pub per_widget: usize,
    pub max_inflight: usize,
    pub queue_limit: usize,
    #[serde(deserialize_with = "size")]
    pub memory_limit: u64,
    #[serde(deserialize_with = "duration")]
    pub heartbeat: Duration,
    #[serde(deserialize_with = "duration")]
    pub startup_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub restart_backoff_min: Duration,
    #[serde(deserialize_with = "duration")]
    pub restart_backoff_max: Duration,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            node: PathBuf::from("node"),
            handler_timeout: Duration::from_secs(30),
            per_widget: 1,
            max_inflight: 256,
            queue_limit: 1024,
            memory_limit: 512_000_000,
            heartbeat: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(10),
            restart_backoff_min: Duration::from_millis(100),
            restart_backoff_max: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    pub required: bool,
    pub network: bool,
    pub switch_user: bool,
    pub user: String,
    pub uid_base: u32,
    pub no_new_privs: bool,
    pub limits: bool,
    pub max_open_files: u64,
    pub max_processes: u64,
    pub node_permissions: bool,
    pub landlock: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            required: false,
            network: true,
            switch_user: true,
            user: String::new(),
            uid_base: 200_000,
            no_new_privs: true,
            limits: true,
            max_open_files: 256,
            max_processes: 1024,
            node_permissions: true,
            landlock: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestConfig {
    pub allowed_hosts: Vec<String>,
    pub denied_hosts: Vec<String>,
}

impl Default for RequestConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["*".into()],
            denied_hosts: vec![
                "169.254.0.0/16".into(),
                "fe80::/10".into(),
                "metadata.google.internal".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Term,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Term, level: LogLevel::Info }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Critical,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn to_slog(self) -> slog::Level {
        match self {
            LogLevel::Critical => slog::Level::Critical,
            LogLevel::Error => slog::Level::Error,
            LogLevel::Warning => slog::Level::Warning,
            LogLevel::Info => slog::Level::Info,
            LogLevel::Debug => slog::Level::Debug,
            LogLevel::Trace => slog::Level::Trace,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration ({e}); write e.g. \"500ms\", \"30s\", \"2m\""))
    })
}

/// An empty string means "not set", so `config.toml` can show every key.
fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(d)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<bytesize::ByteSize>().map(|s| s.as_u64()).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a size ({e}); write e.g. \"512KB\", \"100MB\", \"2GB\""))
    })
}

/// Where the repository's own files live: the bundled example widgets and the shim.
/// Overridable with `WBE_HOME` for installs outside the source tree.
pub fn install_root() -> PathBuf {
    std::env::var_os("WBE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

impl Config {
    /// Reads and validates a config file; relative paths in it are taken relative to the
    /// file's own directory so the server behaves the same from any working directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("config error: cannot read {}: {e}", path.display()))
        })?;
        let mut config =
            Self::parse(&text).map_err(|what| ConfigError(format!("config error: {}: {what}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// The configuration in `text`, or what is wrong with it: the key, or for a syntax
    /// error (which belongs to no key) the line and column.
    fn parse(text: &str) -> Result<Config, String> {
        let deserializer = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().replace('\n', " ");
            let message = message.trim();
            if key != "." && !key.is_empty() {
                return format!("`{key}`: {message}");
            }
            match e.inner().span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
                    format!("line {line}, column {column}: {message}")
                }
                None => message.to_owned(),
            }
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let absolute = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
        self.widgets.dirs = self.widgets.dirs.iter().map(absolute).collect();
        self.widgets.modules_dir = self.widgets.modules_dir.as_ref().map(absolute);
        self.manager.ca_cert = self.manager.ca_cert.as_ref().map(absolute);
        if self.workers.node.components().count() > 1 {
            self.workers.node = absolute(&self.workers.node);
        }
    }

    /// Checks what serde cannot express and fills in the defaults that depend on where
    /// wbe is installed. Called once, after flags have been applied.
    pub fn finish(mut self) -> Result<Config, ConfigError> {
        let ctx = &self.server.context_path;
        if !ctx.is_empty() && (!ctx.starts_with('/') || ctx.ends_with('/')) {
            return Err(invalid(
                "server.context_path",
                format!("`{ctx}` must start with `/` and not end with one (or be empty)"),
            ));
        }
        if !matches!(self.manager.url.scheme(), "http" | "https") {
            return Err(invalid("manager.url", "must be an http:// or https:// URL"));
        }
        if self.manager.api_version.is_empty() || self.manager.api_version.contains('/') {
            return Err(invalid("manager.api_version", "must be a version such as \"v3.1\""));
        }
        if self.widgets.backend_extensions.is_empty() {
            return Err(invalid("widgets.backend_extensions", "must name at least one extension"));
        }
        for ext in &self.widgets.backend_extensions {
            if ext != "js" && ext != "ts" {
                return Err(invalid("widgets.backend_extensions", format!("`{ext}` is not supported (use \"js\" and/or \"ts\")")));
            }
        }
        if self.workers.per_widget == 0 || self.workers.per_widget > 64 {
            return Err(invalid("workers.per_widget", "must be between 1 and 64"));
        }
        if self.workers.max_inflight == 0 {
            return Err(invalid("workers.max_inflight", "must be at least 1"));
        }
        if self.workers.restart_backoff_min > self.workers.restart_backoff_max {
            return Err(invalid("workers.restart_backoff_min", "must not exceed workers.restart_backoff_max"));
        }
        for (i, host) in self.request.denied_hosts.iter().enumerate() {
            if host.contains('/') && host.parse::<ipnet::IpNet>().is_err() {
                return Err(invalid(&format!("request.denied_hosts[{i}]"), format!("`{host}` is not a valid CIDR range")));
            }
        }
        if let Some(ca) = &self.manager.ca_cert {
            if !ca.is_file() {
                return Err(invalid("manager.ca_cert", format!("{} is not a readable file", ca.display())));
            }
        }
        if self.server.threads > 256 {
            return Err(invalid("server.threads", "must be at most 256 (0: one per CPU)"));
        }
        if self.server.threads == 0 {
            self.server.threads = std::thread::available_parallelism().map_or(1, usize::from);
        }
        if self.widgets.dirs.is_empty() {
            self.widgets.dirs.push(install_root().join("examples/widgets"));
        }
        if self.widgets.modules_dir.is_none() {
            self.widgets.modules_dir = Some(install_root().join("node-shim/node_modules"));
        }
        Ok(self)
    }

    /// The shim entry point the workers run.
    pub fn shim_path(&self) -> PathBuf {
        install_root().join("node-shim/shim.js")
    }

    pub fn modules_dir(&self) -> &Path {
        self.widgets.modules_dir.as_deref().unwrap_or(Path::new("node_modules"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8089");
        assert_eq!(c.server.context_path, "/console");
        assert_eq!(c.manager.api_version, "v3.1");
        assert_eq!(c.manager.timeouts.post, Duration::from_secs(30));
        assert_eq!(c.auth.mode, AuthMode::None);
    }

    #[test]
    fn repository_config_toml_matches_the_defaults() {
        let text = std::fs::read_to_string(install_root().join("config.toml")).unwrap();
        let file = Config::parse(&text).unwrap();
        let defaults = Config::default();
        assert_eq!(format!("{file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn unknown_key_is_named_on_one_line() {
        let err = Config::parse("[server]\nlisen = \"x\"\n").unwrap_err();
        assert!(err.contains("server.lisen"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_syntax_error_is_placed_by_line_and_column() {
        let err = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n\n[workers\n").unwrap_err();
        assert!(err.starts_with("line 4, column 9: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn bad_duration_and_size_name_their_key() {
        let err = Config::parse("[workers]\nhandler_timeout = \"abc\"\n").unwrap_err();
        assert!(err.contains("workers.handler_timeout") && err.contains("abc"), "{err}");
        let err = Config::parse("[server]\nmax_body_size = \"lots\"\n").unwrap_err();
        assert!(err.contains("server.max_body_size"), "{err}");
    }

    #[test]
    fn sizes_and_durations_parse() {
        let c = Config::parse("[server]\nmax_body_size = \"512KB\"\n[auth]\ncache_ttl = \"500ms\"\n").unwrap();
        assert_eq!(c.server.max_body_size, 512_000);
        assert_eq!(c.auth.cache_ttl, Duration::from_millis(500));
    }

    #[test]
    fn context_path_is_validated() {
        let mut c = Config::default();
        c.server.context_path = "console/".into();
        let err = c.finish().unwrap_err().to_string();
        assert!(err.contains("server.context_path"), "{err}");
    }

    #[test]
    fn threads_default_to_one_per_cpu_and_are_bounded() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(Config::default().finish().unwrap().server.threads, cpus);
        let mut c = Config::default();
        c.server.threads = 3;
        assert_eq!(c.finish().unwrap().server.threads, 3);
        let mut c = Config::default();
        c.server.threads = 257;
        let err = c.finish().unwrap_err().to_string();
        assert!(err.contains("server.threads"), "{err}");
    }
}
