//! The frames exchanged with a widget's Node child, and their line codec.
//!
//! This is the only place on the Rust side that knows the wire format; `docs/PROTOCOL.md`
//! describes it for both sides. Frames are JSON objects, one per line, tagged by `t`.
//! Decoding is strict — an unknown frame type or a malformed line is an error the worker
//! treats as a fault — because a child that speaks garbage is either broken or hostile,
//! and in both cases the safe answer is to restart it.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::codec::Decoder;

/// Version of the protocol this gateway speaks; sent in `hello`, checked on the reply.
pub const PROTOCOL_VERSION: u32 = 4;

/// Longest line accepted from a child; it bounds what a misbehaving child can make the
/// gateway buffer. The shim never needs more: it cuts long log messages, and it rejects a
/// helper call whose arguments would not fit with an error to the widget.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// Largest payload (raw body bytes after a frame's line) accepted from a child: a whole
/// response in a `head`. Streamed chunks are smaller still (64 KiB).
pub const MAX_PAYLOAD: usize = 512 * 1024;

/// Largest body chunk sent in one frame.
pub const MAX_CHUNK: usize = 64 * 1024;

/// What the gateway tells the shim about one request (the `req` frame).
#[derive(Debug, Clone, Serialize)]
pub struct RequestHead {
    pub id: u64,
    pub method: String,
    pub url: String,
    #[serde(rename = "originalUrl")]
    pub original_url: String,
    #[serde(rename = "baseUrl")]
    pub base_url: String,
    pub service: String,
    pub headers: Vec<(String, String)>,
    pub ip: String,
    pub protocol: &'static str,
    pub user: Option<Value>,
    pub window: usize,
    /// The request has no body: no `body` or `end` frame follows.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
}

/// Why the gateway gave up on a request.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CancelReason {
    Timeout,
    Client,
}

/// The outcome of a helper call, as sent back in a `ret` frame.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CallResult {
    Value { ok: bool, value: Value },
    /// Bytes (`parseResponse: false`): `len` announces them, raw after the frame's line.
    Buffer {
        ok: bool,
        len: usize,
        #[serde(skip)]
        bytes: Bytes,
    },
    Error { ok: bool, error: CallError },
}

impl CallResult {
    pub fn value(value: Value) -> Self {
        CallResult::Value { ok: true, value }
    }
    pub fn buffer(bytes: Bytes) -> Self {
        CallResult::Buffer { ok: true, len: bytes.len(), bytes }
    }
    pub fn error(error: CallError) -> Self {
        CallResult::Error { ok: false, error }
    }
}

/// A failed helper call. `Manager` carries the manager's own error body, which the shim
/// rejects with unchanged (as the stage backend does); the others become an `Error`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CallError {
    Manager { body: Value },
    Status { message: String },
    Transport { message: String },
    Refused { message: String },
}

/// A widget's own source files (absolute path → text) as one load of it read them: what
/// the gateway keeps of a version that loaded, to start that version again after a crash
/// even when the folder has since changed into one that does not load.
pub type Sources = BTreeMap<String, String>;

/// Gateway → shim.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum ToShim {
    Hello {
        v: u32,
        widget: String,
        backend: String,
        modules_dir: String,
        allowed_modules: Vec<String>,
        allowed_builtins: Vec<String>,
        /// Lanes the child finds open at file descriptors 3, 4, ...
        lanes: usize,
        /// Load these texts instead of the files on disk (files not named here come from disk).
        #[serde(skip_serializing_if = "Option::is_none")]
        sources: Option<Sources>,
    },
    Req(RequestHead),
    /// One chunk of the request body: its `len` bytes follow the line (see [`ToShim::encode_with_payload`]).
    Body {
        id: u64,
        len: usize,
    },
    End {
        id: u64,
    },
    Cancel {
        id: u64,
        reason: CancelReason,
    },
    Ack {
        id: u64,
        bytes: usize,
    },
    Ret {
        cid: u64,
        #[serde(flatten)]
        result: CallResult,
    },
    Ping {
        seq: u64,
    },
}

impl ToShim {
    /// The frame as one protocol line, newline included.
    pub fn encode(&self) -> Bytes {
        match self {
            // A binary helper result travels raw after its line, as a body chunk does.
            ToShim::Ret { result: CallResult::Buffer { bytes, .. }, .. } => self.encode_with_payload(bytes),
            _ => self.encode_with_payload(&[]),
        }
    }

    /// The frame's line followed by `payload`, the raw bytes its `len` announces.
    pub fn encode_with_payload(&self, payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::with_capacity(128 + payload.len()).writer();
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_writer(&mut buf, self).expect("frames always serialise");
        let mut buf = buf.into_inner();
        buf.put_u8(b'\n');
        buf.put_slice(payload);
        buf.freeze()
    }
}

/// An endpoint a backend registered, as reported in the shim's `hello`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
}

/// Why a backend could not be loaded, with the place in its source when the shim knows it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LoadError {
    pub message: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default, skip_serializing)]
    pub stack: Option<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// Shim → gateway.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum FromShim {
    Hello {
        v: u32,
        #[serde(default)]
        endpoints: Option<Vec<Endpoint>>,
        #[serde(default)]
        error: Option<LoadError>,
        /// After a successful load: the files it read, unless they were too large to carry.
        #[serde(default)]
        sources: Option<Sources>,
    },
    /// `len`, when present, announces a body payload (possibly empty) after the line.
    Head {
        id: u64,
        status: u16,
        /// The status line's phrase, present only when it is not Node's standard one.
        #[serde(default)]
        reason: Option<String>,
        headers: Vec<(String, String)>,
        /// Header values go out as UTF-8, not latin-1 (Node wrote the head with a string body).
        #[serde(default)]
        utf8: bool,
        #[serde(default)]
        len: Option<usize>,
        #[serde(default)]
        end: bool,
    },
    /// Always carries a payload of `len` bytes.
    Chunk {
        id: u64,
        len: usize,
    },
    End {
        id: u64,
        /// The handler destroyed the response (`res.destroy()`): abort, do not complete.
        #[serde(default)]
        abort: bool,
    },
    Ack {
        id: u64,
        bytes: usize,
    },
    Call {
        cid: u64,
        id: u64,
        helper: String,
        #[serde(rename = "fn")]
        function: String,
        args: Value,
    },
    Log {
        level: String,
        #[serde(default)]
        category: Option<String>,
        msg: String,
    },
    Pong {
        seq: u64,
        #[serde(default)]
        rss: u64,
        #[serde(default)]
        heap: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromShim {
    pub fn decode(line: &[u8]) -> Result<FromShim, ProtocolError> {
        serde_json::from_slice(line).map_err(|e| {
            let shown: String = String::from_utf8_lossy(line).chars().take(120).collect();
            ProtocolError(format!("malformed frame ({e}): {shown}"))
        })
    }

    /// How many payload bytes follow this frame's line.
    fn payload_len(&self) -> Option<usize> {
        match self {
            FromShim::Head { len, .. } => *len,
            FromShim::Chunk { len, .. } => Some(*len),
            _ => None,
        }
    }

    /// The frame's `t`, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            FromShim::Hello { .. } => "hello",
            FromShim::Head { .. } => "head",
            FromShim::Chunk { .. } => "chunk",
            FromShim::End { .. } => "end",
            FromShim::Ack { .. } => "ack",
            FromShim::Call { .. } => "call",
            FromShim::Log { .. } => "log",
            FromShim::Pong { .. } => "pong",
        }
    }
}

/// Splits what a child writes into frames, each with the payload its line announces
/// (empty when it announces none). A line longer than [`MAX_LINE`], a payload longer than
/// [`MAX_PAYLOAD`] or a line that is not a frame is an error: the stream cannot be
/// trusted past it.
#[derive(Default)]
pub struct FrameDecoder {
    /// A decoded frame still waiting for this many payload bytes.
    awaiting: Option<(FromShim, usize)>,
    /// How far the buffer is known to hold no newline, so a long line is scanned once.
    scanned: usize,
}

impl Decoder for FrameDecoder {
    type Item = (FromShim, Bytes);
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ProtocolError> {
        if self.awaiting.is_none() {
            let newline = src[self.scanned..].iter().position(|&b| b == b'\n').map(|at| self.scanned + at);
            if newline.unwrap_or(src.len()) > MAX_LINE {
                return Err(ProtocolError(format!("line longer than {MAX_LINE} bytes")));
            }
            let Some(newline) = newline else {
                self.scanned = src.len();
                return Ok(None);
            };
            let line = src.split_to(newline + 1);
            self.scanned = 0;
            let frame = FromShim::decode(&line[..line.len() - 1])?;
            match frame.payload_len() {
                None => return Ok(Some((frame, Bytes::new()))),
                Some(len) if len > MAX_PAYLOAD => {
                    return Err(ProtocolError(format!("{} frame announces {len} payload bytes, more than {MAX_PAYLOAD}", frame.kind())));
                }
                Some(len) => self.awaiting = Some((frame, len)),
            }
        }
        let Some((_, len)) = &self.awaiting else { return Ok(None) };
        if src.len() < *len {
            src.reserve(*len - src.len());
            return Ok(None);
        }
        let payload = src.split_to(*len).freeze();
        Ok(self.awaiting.take().map(|(frame, _)| (frame, payload)))
    }
}

impl From<std::io::Error> for ProtocolError {
    fn from(e: std::io::Error) -> Self {
        ProtocolError(format!("unreadable output: {e}"))
    }
}

/// Splits a body into protocol-sized chunks.
pub fn chunks(bytes: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    (0..bytes.len()).step_by(MAX_CHUNK).map(move |start| bytes.slice(start..(start + MAX_CHUNK).min(bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn req_frame_has_the_documented_shape() {
        let frame = ToShim::Req(RequestHead {
            id: 7,
            method: "GET".into(),
            url: "/?a=1".into(),
            original_url: "/console/wb/status?a=1".into(),
            base_url: "/console/wb/status".into(),
            service: "status".into(),
            headers: vec![("host".into(), "x".into())],
            ip: "127.0.0.1".into(),
            protocol: "http",
            user: None,
            window: 1024,
            end: true,
        });
        let line = frame.encode();
        assert!(line.ends_with(b"\n"));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["t"], "req");
        assert_eq!(v["originalUrl"], "/console/wb/status?a=1");
        assert_eq!(v["headers"][0][0], "host");
        assert_eq!(v["end"], true);
    }

    #[test]
    fn binary_results_travel_raw_after_their_line() {
        let wire = ToShim::Ret { cid: 5, result: CallResult::buffer(Bytes::from_static(b"\n\xff\0")) }.encode();
        assert_eq!(&wire[..], b"{\"t\":\"ret\",\"cid\":5,\"ok\":true,\"len\":3}\n\n\xff\0");
    }

    #[test]
    fn ret_frames_flatten_their_result() {
        let ok: Value = serde_json::from_slice(&ToShim::Ret { cid: 3, result: CallResult::value(serde_json::json!({"a": 1})) }.encode()).unwrap();
        assert_eq!(ok, serde_json::json!({"t": "ret", "cid": 3, "ok": true, "value": {"a": 1}}));
        let err: Value = serde_json::from_slice(
            &ToShim::Ret { cid: 4, result: CallResult::error(CallError::Transport { message: "down".into() }) }.encode(),
        )
        .unwrap();
        assert_eq!(err, serde_json::json!({"t": "ret", "cid": 4, "ok": false, "error": {"kind": "transport", "message": "down"}}));
    }

    #[test]
    fn decodes_shim_frames() {
        let f = FromShim::decode(br#"{"t":"head","id":1,"status":200,"headers":[["a","b"]],"len":2,"end":true}"#).unwrap();
        assert!(matches!(f, FromShim::Head { id: 1, status: 200, len: Some(2), end: true, .. }));
        let f = FromShim::decode(br#"{"t":"hello","v":1,"endpoints":[{"name":"STATUS","method":"GET"}]}"#).unwrap();
        assert!(matches!(f, FromShim::Hello { v: 1, endpoints: Some(_), error: None, sources: None }));
        let f = FromShim::decode(br#"{"t":"hello","v":3,"endpoints":[],"sources":{"/w/backend.js":"x"}}"#).unwrap();
        let expected = Sources::from([("/w/backend.js".to_string(), "x".to_string())]);
        assert!(matches!(f, FromShim::Hello { sources: Some(s), .. } if s == expected));
    }

    #[test]
    fn a_hello_names_sources_only_for_a_pinned_start() {
        let hello = |sources| ToShim::Hello {
            v: PROTOCOL_VERSION,
            widget: "w".into(),
            backend: "/w/backend.js".into(),
            modules_dir: "/m".into(),
            allowed_modules: vec![],
            allowed_builtins: vec![],
            lanes: 1,
            sources,
        };
        let plain: Value = serde_json::from_slice(&hello(None).encode()).unwrap();
        assert!(plain.get("sources").is_none());
        let pinned = Sources::from([("/w/backend.js".to_string(), "module.exports = () => {};".to_string())]);
        let pinned: Value = serde_json::from_slice(&hello(Some(pinned)).encode()).unwrap();
        assert_eq!(pinned["sources"], serde_json::json!({"/w/backend.js": "module.exports = () => {};"}));
    }

    #[test]
    fn rejects_unknown_types_and_garbage() {
        assert!(FromShim::decode(br#"{"t":"launch","id":1}"#).is_err());
        assert!(FromShim::decode(b"hello world").is_err());
        assert!(FromShim::decode(br#"{"t":"end"}"#).is_err());
        assert!(FromShim::decode(br#"{"t":"chunk","id":1}"#).is_err(), "a chunk must announce its payload");
    }

    /// Decodes `wire` fed to the decoder in pieces of `step` bytes.
    fn decode_all(wire: &[u8], step: usize) -> Result<Vec<(FromShim, Bytes)>, ProtocolError> {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf)? {
                frames.push(frame);
            }
        }
        if !buf.is_empty() {
            return Err(ProtocolError(format!("{} bytes left over", buf.len())));
        }
        Ok(frames)
    }

    #[test]
    fn payloads_follow_their_line_whatever_bytes_they_hold() {
        let mut wire = br#"{"t":"head","id":1,"status":200,"headers":[],"len":3}"#.to_vec();
        wire.extend_from_slice(b"\n\n\xff\n");
        wire.extend_from_slice(b"{\"t\":\"chunk\",\"id\":1,\"len\":0}\n{\"t\":\"end\",\"id\":1}\n");
        for step in [1, 2, 7, wire.len()] {
            let frames = decode_all(&wire, step).unwrap();
            let kinds: Vec<&str> = frames.iter().map(|(f, _)| f.kind()).collect();
            assert_eq!(kinds, ["head", "chunk", "end"]);
            assert_eq!(frames[0].1, Bytes::from_static(b"\n\xff\n"));
            assert!(frames[1].1.is_empty() && frames[2].1.is_empty());
        }
    }

    #[test]
    fn refuses_oversized_lines_and_payloads() {
        let mut long = vec![b'x'; MAX_LINE + 1];
        assert!(decode_all(&long, 64 * 1024).is_err(), "refused before its end arrives");
        long.push(b'\n');
        assert!(decode_all(&long, long.len()).is_err(), "refused when it arrives whole");
        let announced = format!("{{\"t\":\"chunk\",\"id\":1,\"len\":{}}}\n", MAX_PAYLOAD + 1);
        assert!(decode_all(announced.as_bytes(), 8).is_err());
    }

    #[test]
    fn body_frames_carry_raw_bytes() {
        let wire = ToShim::Body { id: 4, len: 3 }.encode_with_payload(&[0xff, b'\n', 0]);
        assert_eq!(&wire[..], b"{\"t\":\"body\",\"id\":4,\"len\":3}\n\xff\n\0");
    }

    #[test]
    fn chunks_cover_the_body_exactly() {
        let body = Bytes::from(vec![7u8; MAX_CHUNK * 2 + 5]);
        let sizes: Vec<usize> = chunks(&body).map(|c| c.len()).collect();
        assert_eq!(sizes, vec![MAX_CHUNK, MAX_CHUNK, 5]);
    }

    proptest! {
        // The decoder sees whatever a (possibly hostile) child writes: it must return an
        // error, never panic, for any input.
        #[test]
        fn decoder_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_all(&wire, 5);
        }

        #[test]
        fn decoder_never_panics_on_near_frames(id in any::<i64>(), t in "(head|chunk|end|ack|call|log|pong|hello)", junk in "[ -~]{0,40}") {
            let line = format!(r#"{{"t":"{t}","id":{id},"len":{id},"x":"{junk}"}}"#);
            let _ = FromShim::decode(line.as_bytes());
        }

        #[test]
        fn payloads_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..512), step in 1usize..64) {
            let mut wire = format!("{{\"t\":\"chunk\",\"id\":1,\"len\":{}}}\n", bytes.len()).into_bytes();
            wire.extend_from_slice(&bytes);
            let frames = decode_all(&wire, step).unwrap();
            prop_assert_eq!(frames.len(), 1);
            prop_assert_eq!(frames[0].1.as_ref(), &bytes[..]);
        }
    }
}
