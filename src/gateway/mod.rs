//! The HTTP side: actix-web routes for widget requests (`<context>/wb/<service>`) and the
//! `/_wbe/` operations endpoints.
//!
//! The gateway decides everything that can be decided without running widget code —
//! which widget is calling, whether the caller is logged in, whether the endpoint exists,
//! whether the body is too large — so that a bad request never costs a worker anything.

mod auth;
mod error;
mod ops;
mod reason;
mod widget_route;

use std::cell::OnceCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use slog::Logger;

use crate::config::Config;
use crate::helpers::tls;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;

/// What every HTTP worker thread shares.
pub struct AppState {
    pub config: Arc<Config>,
    pub supervisor: Arc<Supervisor>,
    pub log: Logger,
    pub metrics: Metrics,
    tokens: auth::TokenCache,
    manager_tls: Arc<rustls::ClientConfig>,
    request_prefix: String,
    request_counter: AtomicU64,
}

thread_local! {
    /// awc clients are per thread; each HTTP worker thread makes its own on first use.
    static AUTH_CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

impl AppState {
    pub fn new(config: Arc<Config>, supervisor: Arc<Supervisor>, log: Logger) -> Result<AppState, tls::TlsError> {
        let manager_tls = tls::manager_client_config(&config)?;
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(AppState {
            config,
            supervisor,
            log,
            metrics: Metrics::default(),
            tokens: auth::TokenCache::default(),
            manager_tls,
            request_prefix: format!("{:x}{:x}", std::process::id(), started.as_millis() & 0xffff_ffff),
            request_counter: AtomicU64::new(0),
        })
    }

    /// A request id unique across restarts and instances behind one load balancer.
    fn next_request_id(&self) -> String {
        format!("{}-{}", self.request_prefix, self.request_counter.fetch_add(1, Ordering::Relaxed))
    }

    fn auth_client(&self) -> awc::Client {
        AUTH_CLIENT.with(|client| client.get_or_init(|| tls::http_client(self.manager_tls.clone(), actix_tls::connect::Resolver::default(), tls::Redirects::Follow)).clone())
    }
}

/// The client connection's socket, so a handler can notice that the client went away
/// while it waits for a widget: actix-web does not cancel handlers on disconnect.
#[derive(Clone, Copy)]
pub struct PeerSocket(std::os::fd::RawFd);

impl PeerSocket {
    /// Resolves once the peer has closed the connection. Peeks without consuming, so a
    /// pipelined request or unread body counts as "still there".
    pub async fn closed(self) {
        use nix::sys::socket::{recv, MsgFlags};
        let mut probe = [0u8; 1];
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            // The socket outlives this handler: actix drops the handler before the connection.
            match recv(self.0, &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return,
                Err(nix::errno::Errno::EAGAIN) | Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// Binds the listening socket and builds the server (not yet running).
pub fn bind(state: AppState, listen: SocketAddr) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let grace = state.config.server.shutdown_grace;
    let threads = state.config.server.threads;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/_wbe/", web::get().to(ops::page))
            .route("/_wbe/health", web::get().to(ops::health))
            .route("/_wbe/ready", web::get().to(ops::ready))
            .route("/_wbe/status", web::get().to(ops::status))
            .route("/_wbe/metrics", web::get().to(ops::metrics))
            .route("/_wbe/reload", web::post().to(ops::reload))
            .default_service(web::to(widget_route::handle))
    })
    .on_connect(|conn, extensions| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            extensions.insert(PeerSocket(std::os::fd::AsRawFd::as_raw_fd(tcp)));
        }
    })
    .workers(threads)
    .shutdown_timeout(grace.as_secs().max(1))
    .bind(listen)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}
