//! The frames exchanged with a widget's Node child, and their line codec.
//!
//! This is the only place on the Rust side that knows the wire format; `docs/PROTOCOL.md`
//! describes it for both sides. Frames are JSON objects, one per line, tagged by `t`.
//! Decoding is strict — an unknown frame type or a malformed line is an error the worker
//! treats as a fault — because a child that speaks garbage is either broken or hostile,
//! and in both cases the safe answer is to restart it.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the protocol this gateway speaks; sent in `hello`, checked on the reply.
pub const PROTOCOL_VERSION: u32 = 2;

/// Longest line accepted from a child; it bounds what a misbehaving child can make the
/// gateway buffer. The shim never needs more: a body chunk is at most 64 KiB and a whole
/// response in a `head` at most 512 KiB (well under the limit even base64'd or
/// JSON-escaped), it cuts long log messages, and it rejects a helper call whose
/// arguments would not fit with an error to the widget.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// Largest body chunk sent in one frame, in decoded bytes.
pub const MAX_CHUNK: usize = 64 * 1024;

/// A body chunk as carried on the wire: UTF-8 text travels as a JSON string (cheap to
/// produce and to read on both sides), anything else as base64.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BodyData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64: Option<String>,
}

impl BodyData {
    pub fn encode(bytes: &[u8]) -> BodyData {
        match std::str::from_utf8(bytes) {
            Ok(text) => BodyData { text: Some(text.to_owned()), b64: None },
            Err(_) => BodyData {
                text: None,
                b64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }

    /// The decoded bytes; `None` when the frame carries no body at all.
    pub fn decode(self) -> Result<Option<Bytes>, ProtocolError> {
        match (self.text, self.b64) {
            (Some(text), None) => Ok(Some(Bytes::from(text))),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(|v| Some(Bytes::from(v)))
                .map_err(|e| ProtocolError(format!("invalid base64 body: {e}"))),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(ProtocolError("body has both `text` and `b64`".into())),
        }
    }
}

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
    Buffer { ok: bool, b64: String },
    Error { ok: bool, error: CallError },
}

impl CallResult {
    pub fn value(value: Value) -> Self {
        CallResult::Value { ok: true, value }
    }
    pub fn buffer(bytes: &[u8]) -> Self {
        CallResult::Buffer { ok: true, b64: base64::engine::general_purpose::STANDARD.encode(bytes) }
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
    },
    Req(RequestHead),
    Body {
        id: u64,
        #[serde(flatten)]
        data: BodyData,
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
        let mut buf = BytesMut::with_capacity(128).writer();
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_writer(&mut buf, self).expect("frames always serialise");
        let mut buf = buf.into_inner();
        buf.put_u8(b'\n');
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
    },
    Head {
        id: u64,
        status: u16,
        headers: Vec<(String, String)>,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        b64: Option<String>,
        #[serde(default)]
        end: bool,
    },
    Chunk {
        id: u64,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        b64: Option<String>,
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
    pub fn decode(line: &str) -> Result<FromShim, ProtocolError> {
        serde_json::from_str(line).map_err(|e| {
            let shown: String = line.chars().take(120).collect();
            ProtocolError(format!("malformed frame ({e}): {shown}"))
        })
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
        let f = FromShim::decode(r#"{"t":"head","id":1,"status":200,"headers":[["a","b"]],"text":"OK","end":true}"#).unwrap();
        assert!(matches!(f, FromShim::Head { id: 1, status: 200, end: true, .. }));
        let f = FromShim::decode(r#"{"t":"hello","v":1,"endpoints":[{"name":"STATUS","method":"GET"}]}"#).unwrap();
        assert!(matches!(f, FromShim::Hello { v: 1, endpoints: Some(_), error: None }));
    }

    #[test]
    fn rejects_unknown_types_and_garbage() {
        assert!(FromShim::decode(r#"{"t":"launch","id":1}"#).is_err());
        assert!(FromShim::decode("hello world").is_err());
        assert!(FromShim::decode(r#"{"t":"end"}"#).is_err());
    }

    #[test]
    fn body_data_round_trips_text_and_binary() {
        let text = BodyData::encode(b"hello \xc3\xa9");
        assert!(text.text.is_some());
        assert_eq!(text.decode().unwrap().unwrap(), Bytes::from_static(b"hello \xc3\xa9"));
        let bin = BodyData::encode(&[0xff, 0x00, 0xfe]);
        assert!(bin.b64.is_some());
        assert_eq!(bin.decode().unwrap().unwrap(), Bytes::from_static(&[0xff, 0x00, 0xfe]));
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
        fn decoder_never_panics(line in ".{0,300}") {
            let _ = FromShim::decode(&line);
        }

        #[test]
        fn decoder_never_panics_on_near_frames(id in any::<i64>(), t in "(head|chunk|end|ack|call|log|pong|hello)", junk in "[ -~]{0,40}") {
            let line = format!(r#"{{"t":"{t}","id":{id},"x":"{junk}"}}"#);
            let _ = FromShim::decode(&line);
        }

        #[test]
        fn body_data_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let decoded = BodyData::encode(&bytes).decode().unwrap().unwrap();
            prop_assert_eq!(decoded.as_ref(), &bytes[..]);
        }
    }
}
