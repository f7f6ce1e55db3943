'use strict';
// Owns the wire format of docs/PROTOCOL.md: one JSON object per '\n'-terminated line in
// both directions, and the text/b64 encoding of body bytes. Nothing here knows what a
// frame means; shim.js dispatches them.

const { isUtf8 } = require('buffer');

const PROTOCOL_VERSION = 2;
// The gateway passes the lanes (one socket per HTTP thread) at fd 3, 4, ...
const FIRST_LANE_FD = 3;
// The gateway's limit on one line (src/protocol.rs MAX_LINE): a longer one is a fault.
const MAX_LINE = 4 * 1024 * 1024;
// Largest body slice carried by one frame (decoded bytes); keeps every line far below
// the line limit even when base64- or JSON-escaping inflates it.
const MAX_FRAME_BODY = 64 * 1024;
// A response complete at its first frame (res.send and friends) travels whole in the
// `head` frame, outside the window, up to this size: even JSON-escaped at worst (6x) or
// base64'd it stays under the 4 MiB line limit.
const MAX_WHOLE_BODY = 512 * 1024;

// Puts body bytes on `frame`: valid UTF-8 travels as readable (and cheaper) JSON text,
// anything else as base64.
function putBody(frame, buf) {
  if (isUtf8(buf)) frame.text = buf.toString('utf8');
  else frame.b64 = buf.toString('base64');
}

function decodeBody(frame) {
  if (typeof frame.text === 'string') return Buffer.from(frame.text, 'utf8');
  if (typeof frame.b64 === 'string') return Buffer.from(frame.b64, 'base64');
  return null;
}

// Frames produced in one turn of the event loop go out in a single write: a write to
// stdout's pipe is a synchronous syscall on Linux and one to a lane a libuv write
// request, so batching is what keeps many small frames cheap.
// send() serialises immediately so that an unserialisable frame throws at the caller.
function createFrameWriter(write) {
  let queue = [];
  let scheduled = false;

  function flush() {
    scheduled = false;
    if (queue.length === 0) return;
    const data = queue.join('');
    queue = [];
    write(data);
  }

  // Throws, sending nothing, for a frame the gateway would refuse as too long (a UTF-8
  // character is at most 3 bytes per UTF-16 unit, so most lines need no byte count).
  function send(frame) {
    const line = JSON.stringify(frame) + '\n';
    if (line.length * 3 > MAX_LINE && Buffer.byteLength(line) > MAX_LINE) {
      throw new RangeError(`a "${frame.t}" frame of ${Buffer.byteLength(line)} bytes exceeds the protocol's limit of ${MAX_LINE} bytes`);
    }
    queue.push(line);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }

  return { send, flush };
}

// Splits the incoming byte stream into lines and hands each parsed frame to onFrame.
// A line that is not a JSON object goes to onFault: the peer is broken, not the widget.
function createFrameReader(onFrame, onFault) {
  let pending = [];

  function handleLine(line) {
    if (line.length === 0) return;
    let frame;
    try {
      frame = JSON.parse(line.toString('utf8'));
    } catch (err) {
      onFault(`frame is not JSON: ${err.message}`);
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.t !== 'string') {
      onFault('frame is not an object with a string "t"');
      return;
    }
    onFrame(frame);
  }

  return function feed(chunk) {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      const piece = chunk.subarray(start, nl);
      if (pending.length > 0) {
        pending.push(piece);
        handleLine(Buffer.concat(pending));
        pending = [];
      } else {
        handleLine(piece);
      }
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  };
}

module.exports = {
  PROTOCOL_VERSION,
  FIRST_LANE_FD,
  MAX_FRAME_BODY,
  MAX_WHOLE_BODY,
  putBody,
  decodeBody,
  createFrameWriter,
  createFrameReader,
};
