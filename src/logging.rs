//! Structured logging (slog): JSON lines for machines, readable lines for a terminal,
//! both on stderr so that `wbe call` can keep stdout for the response it prints.
//!
//! Messages carry text from widgets (their log lines, their stderr, their load errors).
//! JSON escapes it; on a terminal, [`EscapeControls`] writes its control characters
//! escaped, so a widget can neither recolour the operator's screen nor print what looks
//! like a line of the gateway's own.

use std::fmt::Write as _;

use slog::{o, Drain, Logger, OwnedKVList, Record, RecordStatic};

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
            Box::new(EscapeControls(slog_term::FullFormat::new(decorator).build()).fuse())
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

/// A drain that hands on each record with the control characters of its message escaped
/// (`\n` → `\\n`, ESC → `\\u{1b}`); records without any pass through untouched.
struct EscapeControls<D>(D);

impl<D: Drain> Drain for EscapeControls<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        let msg = record.msg().to_string();
        if !msg.chars().any(char::is_control) {
            return self.0.log(record, values);
        }
        let escaped = escape_controls(&msg);
        let args = format_args!("{escaped}");
        let statics = RecordStatic { location: record.location(), tag: record.tag(), level: record.level() };
        self.0.log(&Record::new(&statics, &args, record.kv()), values)
    }
}

fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain żółć \\ \"q\""), "plain żółć \\ \"q\"");
        assert_eq!(escape_controls("a\nINFO forged\u{1b}[31mred\t\r"), "a\\nINFO forged\\u{1b}[31mred\\t\\r");
    }
}
