//! Structured logging (slog): JSON lines for machines, readable lines for a terminal,
//! both on stderr so that `wbe call` can keep stdout for the response it prints.

use slog::{o, Drain, Logger};

use crate::config::{LogConfig, LogFormat};

/// The root logger. Keep the returned guard alive: dropping it flushes pending lines.
pub fn init(config: &LogConfig) -> (Logger, slog_async::AsyncGuard) {
    let level = config.level.to_slog();
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match config.format {
        LogFormat::Json => Box::new(
            slog_json::Json::new(std::io::stderr())
                .add_default_keys()
                .set_newlines(true)
                .build()
                .fuse(),
        ),
        LogFormat::Term => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
    };
    let (drain, guard) = slog_async::Async::new(drain)
        .chan_size(4096)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .build_with_guard();
    // Filtered before the channel: a record below the level costs a comparison, not the
    // copy of its values that crossing to the logging thread takes.
    (Logger::root(drain.filter_level(level).fuse(), o!()), guard)
}
