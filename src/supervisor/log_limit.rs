//! How much a widget may log. Its lines go to the gateway's own log, which every widget
//! and the gateway itself share, and which waits when its output (a terminal, journald)
//! is slow: a widget logging in a loop would stall everyone. So each worker may log so
//! many lines and bytes a second; what is over that is dropped and counted, and the count
//! is reported with the next line that gets through.

use std::time::{Duration, Instant};

use slog::{warn, Logger};

/// Lines a worker may log per second.
const LINES_PER_SECOND: u32 = 1000;
/// Bytes of messages a worker may log per second.
const BYTES_PER_SECOND: usize = 1024 * 1024;

pub struct LogLimit {
    window_start: Instant,
    lines: u32,
    bytes: usize,
    dropped: u64,
}

/// Whether a line may be logged, and how many were dropped before it.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Log { dropped_before: u64 },
    Drop,
}

impl LogLimit {
    pub fn new() -> LogLimit {
        LogLimit { window_start: Instant::now(), lines: 0, bytes: 0, dropped: 0 }
    }

    /// Counts a line of `len` bytes logged at `now` against this second's allowance.
    fn admit(&mut self, now: Instant, len: usize) -> Admit {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.lines = 0;
            self.bytes = 0;
        }
        if self.lines >= LINES_PER_SECOND || self.bytes + len > BYTES_PER_SECOND {
            self.dropped += 1;
            return Admit::Drop;
        }
        self.lines += 1;
        self.bytes += len;
        Admit::Log { dropped_before: std::mem::take(&mut self.dropped) }
    }

    /// Whether a line of `len` bytes may be logged now. The first line allowed after some
    /// were dropped reports on `log` how many, as what `source` did ("widget logged").
    pub fn allow(&mut self, len: usize, log: &Logger, source: &str) -> bool {
        match self.admit(Instant::now(), len) {
            Admit::Drop => false,
            Admit::Log { dropped_before: 0 } => true,
            Admit::Log { dropped_before } => {
                warn!(log, "{} more than {} lines or {} KiB a second: {} lines dropped",
                    source, LINES_PER_SECOND, BYTES_PER_SECOND >> 10, dropped_before);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_is_over_a_second_and_reports_it_with_the_next_line() {
        let start = Instant::now();
        let mut limit = LogLimit { window_start: start, ..LogLimit::new() };
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(limit.admit(start, 10), Admit::Log { dropped_before: 0 });
        }
        assert_eq!(limit.admit(start, 10), Admit::Drop);
        assert_eq!(limit.admit(start + Duration::from_millis(999), 10), Admit::Drop);
        let next_second = start + Duration::from_secs(1);
        assert_eq!(limit.admit(next_second, 10), Admit::Log { dropped_before: 2 });
        assert_eq!(limit.admit(next_second, 10), Admit::Log { dropped_before: 0 });
    }

    #[test]
    fn counts_bytes_too() {
        let start = Instant::now();
        let mut limit = LogLimit { window_start: start, ..LogLimit::new() };
        assert_eq!(limit.admit(start, BYTES_PER_SECOND - 1), Admit::Log { dropped_before: 0 });
        assert_eq!(limit.admit(start, 2), Admit::Drop);
        assert_eq!(limit.admit(start, 1), Admit::Log { dropped_before: 1 });
    }
}
