//! The reason phrase of a widget response's status line, as Node would write it.
//!
//! A widget can set its own (`res.statusMessage = 'Fine'`, `res.writeHead(200, 'Fine')`)
//! and Node writes it; for the standard codes Node's phrases are actix's but for three
//! spellings. actix-web only takes a `&'static str` for a reason, so custom phrases are
//! interned: each distinct phrase is allocated once and kept for the life of the process.
//! That is bounded ([`MAX_INTERNED`] phrases of at most [`MAX_LEN`] bytes, well under a
//! megabyte); a phrase past the bound, or one that is not printable ASCII (Node would
//! write it as latin-1 bytes, which a `&str` cannot hold), goes out as the standard one.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// Distinct custom phrases kept; a widget that builds phrases from data would otherwise
/// grow the set without end.
pub const MAX_INTERNED: usize = 512;
/// Longest custom phrase kept, in bytes.
pub const MAX_LEN: usize = 256;

/// Node's phrase for the standard codes where it differs from actix's (`http` crate's).
fn node_phrase(status: u16) -> Option<&'static str> {
    match status {
        203 => Some("Non-Authoritative Information"),
        418 => Some("I'm a Teapot"),
        509 => Some("Bandwidth Limit Exceeded"),
        _ => None,
    }
}

/// The phrase to put on the status line for `status`; `custom` is the widget's (the shim
/// sends one only when it is not Node's standard phrase for the code). `None`: actix's own.
pub fn for_status(status: u16, custom: Option<&str>) -> Option<&'static str> {
    static INTERNED: LazyLock<Interned> = LazyLock::new(|| Interned::new(MAX_INTERNED));
    custom.and_then(|phrase| INTERNED.get(phrase)).or_else(|| node_phrase(status))
}

/// The custom phrases seen so far, at most `capacity` of them.
struct Interned {
    phrases: Mutex<HashSet<&'static str>>,
    capacity: usize,
}

impl Interned {
    fn new(capacity: usize) -> Self {
        Self { phrases: Mutex::default(), capacity }
    }

    /// `phrase` as a `&'static str`, or `None` where it cannot or may not be kept.
    fn get(&self, phrase: &str) -> Option<&'static str> {
        // Status-line reason: HTAB, SP and visible ASCII (RFC 9112 §4, less obs-text).
        let printable = phrase.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if phrase.len() > MAX_LEN || !printable {
            return None;
        }
        let mut phrases = self.phrases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&kept) = phrases.get(phrase) {
            return Some(kept);
        }
        if phrases.len() >= self.capacity {
            return None;
        }
        let kept: &'static str = Box::leak(phrase.to_owned().into_boxed_str());
        phrases.insert(kept);
        Some(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_phrases_are_kept_once_and_standard_ones_follow_node() {
        let first = for_status(200, Some("Fine By Me")).unwrap();
        let again = for_status(200, Some("Fine By Me")).unwrap();
        assert_eq!(first, "Fine By Me");
        assert!(std::ptr::eq(first, again), "a phrase seen before is not allocated again");
        assert_eq!(for_status(418, None), Some("I'm a Teapot"));
        assert_eq!(for_status(200, None), None);
        assert_eq!(for_status(299, Some("unknown")), Some("unknown"));
    }

    #[test]
    fn phrases_a_status_line_cannot_carry_fall_back_to_the_standard_one() {
        assert_eq!(for_status(200, Some("caf\u{e9}")), None);
        assert_eq!(for_status(418, Some("bad\r\nX-Injected: 1")), Some("I'm a Teapot"));
        assert_eq!(for_status(200, Some(&"x".repeat(MAX_LEN + 1))), None);
    }

    #[test]
    fn the_set_of_custom_phrases_is_bounded() {
        let interned = Interned::new(3);
        for n in 0..3 {
            assert!(interned.get(&format!("phrase {n}")).is_some());
        }
        assert_eq!(interned.get("one more after the bound"), None);
        assert_eq!(interned.get("phrase 1"), Some("phrase 1"), "phrases already kept still are");
    }
}
