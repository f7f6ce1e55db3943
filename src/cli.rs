//! The command line: `wbe serve`, `wbe check`, `wbe call`.
//!
//! Each command turns its flags into a [`Config`] the same way (file, then flags, then
//! validation), starts the same supervisor, and differs only in what it does with it:
//! serve it, report on it, or push one request through it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use slog::{error, info, warn, Logger};

use crate::config::{AuthMode, Config, ConfigError, LogFormat, LogLevel};
use crate::gateway::{self, AppState};
use crate::helpers::Helpers;
use crate::sandbox::Sandbox;
use crate::supervisor::{self, describe, Supervisor, WidgetState};
use crate::{logging, watcher};

#[derive(Parser)]
#[command(name = "wbe", version, about = "Widget-backend engine for Cloudify Console", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve widget backends over HTTP (with no flags: the bundled examples on 127.0.0.1:8089).
    Serve(ServeArgs),
    /// Load every backend and print its endpoints and load errors; exit 1 if any fails.
    Check(CommonArgs),
    /// Run one request through the gateway and print the response.
    Call(CallArgs),
}

#[derive(Args)]
struct CommonArgs {
    /// Configuration file (default: built-in defaults, as documented in config.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Widgets folder; repeat for several. Replaces `widgets.dirs` of the config.
    #[arg(long = "widgets", value_name = "DIR")]
    widgets: Vec<PathBuf>,
    #[arg(long, value_name = "json|term")]
    log_format: Option<LogFormat>,
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on, e.g. 127.0.0.1:8089 (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// The Cloudify manager's URL.
    #[arg(long, value_name = "URL")]
    manager_url: Option<String>,
    /// Authenticate callers against the manager, or not at all.
    #[arg(long)]
    auth: Option<AuthMode>,
}

#[derive(Args)]
struct CallArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The calling widget (the `widget-id` header).
    #[arg(long)]
    widget: String,
    /// HTTP method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// Endpoint name.
    name: String,
    /// Query parameter `k=v`; repeat for several.
    #[arg(long = "query", value_name = "K=V")]
    query: Vec<String>,
    /// Request header `'Name: value'`; repeat for several.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    header: Vec<String>,
    /// Request body.
    #[arg(long, short = 'd')]
    data: Option<String>,
    /// The manager's URL, for widgets that call helper.Manager.
    #[arg(long, value_name = "URL")]
    manager_url: Option<String>,
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check(args) => check(args),
        Command::Call(args) => call(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("wbe: {message}");
            ExitCode::from(2)
        }
    }
}

fn flag_error(flag: &str, what: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("flag `--{flag}`: {what}"))
}

/// Config file (or defaults), then the flags, then validation.
fn load_config(common: &CommonArgs, adjust: impl FnOnce(&mut Config) -> Result<(), ConfigError>) -> Result<Config, ConfigError> {
    let mut config = match &common.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if !common.widgets.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_default();
        config.widgets.dirs = common.widgets.iter().map(|d| cwd.join(d)).collect();
    }
    if let Some(format) = common.log_format {
        config.log.format = format;
    }
    if let Some(level) = common.log_level {
        config.log.level = level;
    }
    adjust(&mut config)?;
    config.finish()
}

fn set_manager_url(config: &mut Config, url: &Option<String>) -> Result<(), ConfigError> {
    if let Some(url) = url {
        config.manager.url = url::Url::parse(url).map_err(|e| flag_error("manager-url", format!("`{url}`: {e}")))?;
    }
    Ok(())
}

/// Runs `body` on an actix system with the supervisor started: workers and helpers live
/// on this thread for the whole command.
fn with_supervisor<T>(
    config: Config,
    body: impl AsyncFnOnce(Arc<Config>, Arc<Supervisor>, Logger) -> Result<T, String>,
) -> Result<T, String> {
    supervisor::check_shim_installed(&config.shim_path())?;
    let (log, _guard) = logging::init(&config.log);
    let config = Arc::new(config);
    actix_web::rt::System::new().block_on(async move {
        let helpers = Rc::new(Helpers::new(config.clone()).map_err(|e| e.to_string())?);
        let sandbox = Arc::new(Sandbox::prepare(&config).await?);
        for layer in sandbox.layers() {
            match &layer.reason {
                None => info!(log, "sandbox layer active"; "layer" => layer.name),
                Some(reason) => warn!(log, "sandbox layer NOT active: {}", reason; "layer" => layer.name),
            }
        }
        let supervisor = Supervisor::start(config.clone(), sandbox, helpers, log.clone()).await;
        body(config, supervisor, log).await
    })
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let config = load_config(&args.common, |config| {
        if let Some(listen) = &args.listen {
            config.server.listen = listen.parse().map_err(|e| flag_error("listen", format!("`{listen}`: {e}")))?;
        }
        if let Some(auth) = args.auth {
            config.auth.mode = auth;
        }
        set_manager_url(config, &args.manager_url)
    })
    .map_err(|e| e.to_string())?;
    with_supervisor(config, async |config, supervisor, log| {
        let state = AppState::new(config.clone(), supervisor.clone(), log.clone()).map_err(|e| e.to_string())?;
        let (server, addrs) = gateway::bind(state, config.server.listen).map_err(|e| {
            format!("cannot listen on {}: {e} (is another server using it? choose another with --listen)", config.server.listen)
        })?;
        watcher::start(supervisor.clone(), &config, log.clone());
        for addr in &addrs {
            info!(log, "listening"; "addr" => addr.to_string(), "context_path" => config.server.context_path.clone(), "auth" => format!("{:?}", config.auth.mode).to_lowercase());
        }
        // On SIGTERM/SIGINT actix stops accepting and lets requests in flight finish
        // (up to server.shutdown_grace) before this returns.
        server.await.map_err(|e| format!("server failed: {e}"))?;
        supervisor.shutdown().await;
        info!(log, "stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn check(args: CommonArgs) -> Result<ExitCode, String> {
    let config = load_config(&args, |_| Ok(())).map_err(|e| e.to_string())?;
    with_supervisor(config, async |_config, supervisor, _log| {
        let mut failed = false;
        for widget in supervisor.widgets() {
            let id = &widget.source.id;
            match widget.state() {
                WidgetState::Ready { endpoints, .. } => println!("{id}: ok: {}", describe(&endpoints)),
                WidgetState::NoBackend => println!("{id}: no backend"),
                WidgetState::LoadFailed(error) => {
                    failed = true;
                    println!("{id}: FAILED: {error}");
                }
                WidgetState::Restarting { reason, .. } => {
                    failed = true;
                    println!("{id}: FAILED: worker could not start: {reason}");
                }
                WidgetState::Starting => unreachable!("start() returns once no widget is starting"),
            }
        }
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}

fn call(args: CallArgs) -> Result<ExitCode, String> {
    let config = load_config(&args.common, |config| {
        // A local call stands in for a logged-in console user.
        config.auth.mode = AuthMode::None;
        config.server.listen = "127.0.0.1:0".parse().map_err(|e| flag_error("listen", e))?;
        set_manager_url(config, &args.manager_url)
    })
    .map_err(|e| e.to_string())?;
    with_supervisor(config, async |config, supervisor, log| {
        let state = AppState::new(config.clone(), supervisor, log.clone()).map_err(|e| e.to_string())?;
        let (server, addrs) = gateway::bind(state, config.server.listen).map_err(|e| format!("cannot listen: {e}"))?;
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let addr = addrs.first().ok_or("the server has no address")?;
        let result = send_call(&args, &config, *addr).await;
        handle.stop(false).await;
        if let Err(e) = &result {
            error!(log, "call failed: {}", e);
        }
        result
    })
}

async fn send_call(args: &CallArgs, config: &Config, addr: std::net::SocketAddr) -> Result<ExitCode, String> {
    let mut url = url::Url::parse(&format!("http://{addr}{}/wb/", config.server.context_path)).map_err(|e| e.to_string())?;
    url.path_segments_mut().map_err(|_| "bad url")?.pop_if_empty().push(&args.name);
    for pair in &args.query {
        let (k, v) = pair.split_once('=').ok_or_else(|| flag_error("query", format!("`{pair}` is not k=v")).to_string())?;
        url.query_pairs_mut().append_pair(k, v);
    }
    let method = awc::http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| flag_error("request", format!("`{}` is not an HTTP method", args.method)).to_string())?;
    let client = awc::Client::builder().disable_timeout().finish();
    let mut request = client.request(method, url.as_str()).insert_header(("widget-id", args.widget.as_str()));
    for header in &args.header {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| flag_error("header", format!("`{header}` is not 'Name: value'")).to_string())?;
        request = request.append_header((name.trim(), value.trim()));
    }
    let sent = match &args.data {
        Some(data) => request.send_body(data.clone()).await,
        None => request.send().await,
    };
    let mut response = sent.map_err(|e| format!("request failed: {e}"))?;
    let body = response.body().limit(usize::MAX).await.map_err(|e| format!("response unreadable: {e}"))?;
    let status = response.status();
    println!("HTTP/1.1 {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in response.headers() {
        println!("{}: {}", name, String::from_utf8_lossy(value.as_bytes()));
    }
    println!();
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(&body);
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}
