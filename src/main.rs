//! `wbe`: the widget-backend engine for Cloudify Console.
//!
//! A Rust gateway that authenticates console callers, validates the calling widget and
//! routes each request to that widget's own sandboxed Node.js worker. See README.md for
//! the picture and docs/PROTOCOL.md for the wire format between the two.

mod cli;
mod config;
mod gateway;
mod helpers;
mod logging;
mod metrics;
mod protocol;
mod registry;
mod sandbox;
mod supervisor;
mod watcher;

// Every request allocates a handful of short-lived buffers on one thread and frees some
// on another; mimalloc's per-thread heaps do that with far less contention than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
