'use strict';
// Owns the wire format of docs/PROTOCOL.md: one JSON object per '\n'-terminated line in
// both directions, a frame that carries body bytes followed by them raw (its `len` says
// how many). Nothing here knows what a frame means; shim.js dispatches them.

const PROTOCOL_VERSION = 4;
// The gateway passes the lanes (one socket per HTTP thread) at fd 3, 4, ...
const FIRST_LANE_FD = 3;
// The gateway's limit on one line (src/protocol.rs MAX_LINE): a longer one is a fault.
const MAX_LINE = 4 * 1024 * 1024;
// Largest body slice carried by one streamed frame (`chunk` out, `body` in).
const MAX_FRAME_BODY = 64 * 1024;
// A response complete at its first frame (res.send and friends) travels whole in the
// `head` frame, outside the window, up to this size: the gateway's payload limit
// (src/protocol.rs MAX_PAYLOAD).
const MAX_WHOLE_BODY = 512 * 1024;
// The largest `sources` a hello reply carries (as JSON), well inside MAX_LINE.
const MAX_SOURCES = 1024 * 1024;
// The frames that carry raw bytes after their line, and the most each may carry: a
// request body's chunk, and a helper's binary result (the gateway's MAX_RESPONSE).
const PAYLOAD_LIMITS = { body: MAX_FRAME_BODY, ret: 64 * 1024 * 1024 };

// Frames produced in one turn of the event loop go out in a single write: a write to
// stdout's pipe is a synchronous syscall on Linux and one to a lane a libuv write
// request, so batching is what keeps many small frames cheap.
// send() serialises immediately so that an unserialisable frame throws at the caller.
function createFrameWriter(write) {
  let queue = [];
  let queuedPayloads = false;
  let scheduled = false;

  function flush() {
    scheduled = false;
    if (queue.length === 0) return;
    const parts = queue;
    queue = [];
    if (!queuedPayloads) {
      write(parts.join(''));
      return;
    }
    queuedPayloads = false;
    let size = 0;
    for (const part of parts) size += typeof part === 'string' ? Buffer.byteLength(part) : part.length;
    const out = Buffer.allocUnsafe(size);
    let offset = 0;
    for (const part of parts) offset += typeof part === 'string' ? out.write(part, offset) : part.copy(out, offset);
    write(out);
  }

  // Queues `frame`, followed by the raw bytes of `payload` (a Buffer) if given: its
  // `len` announces them. Throws, sending nothing, for a line the gateway would refuse
  // as too long (a UTF-8 character is at most 3 bytes per UTF-16 unit, so most lines
  // need no byte count).
  function send(frame, payload) {
    if (payload !== undefined) frame.len = payload.length;
    const line = JSON.stringify(frame) + '\n';
    if (line.length * 3 > MAX_LINE && Buffer.byteLength(line) > MAX_LINE) {
      throw new RangeError(`a "${frame.t}" frame of ${Buffer.byteLength(line)} bytes exceeds the protocol's limit of ${MAX_LINE} bytes`);
    }
    queue.push(line);
    if (payload !== undefined && payload.length > 0) {
      queue.push(payload);
      queuedPayloads = true;
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }

  return { send, flush };
}

// Splits the incoming byte stream into frames and hands each to onFrame(frame, payload):
// the `len` raw bytes that follow a `body` frame's line (or a `ret` frame's that has a
// `len`) arrive as `payload` (a Buffer); other frames get an empty one. A line that is
// not a JSON object, or a payload the gateway never sends, goes to onFault: the peer is
// broken, not the widget.
function createFrameReader(onFrame, onFault) {
  const NO_PAYLOAD = Buffer.alloc(0);
  let pending = []; // pieces of an unfinished line, or of the awaited payload
  let pendingBytes = 0;
  let awaiting = null; // a frame whose payload is still arriving
  let need = 0;

  function parse(line) {
    let frame;
    try {
      frame = JSON.parse(line.toString('utf8'));
    } catch (err) {
      onFault(`frame is not JSON: ${err.message}`);
      return null;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.t !== 'string') {
      onFault('frame is not an object with a string "t"');
      return null;
    }
    return frame;
  }

  function takePending(size) {
    const joined = pending.length === 1 ? pending[0] : Buffer.concat(pending, size);
    pending = [];
    pendingBytes = 0;
    return joined;
  }

  return function feed(chunk) {
    let start = 0;
    while (start < chunk.length) {
      if (awaiting) {
        const piece = chunk.subarray(start, start + need - pendingBytes);
        pending.push(piece);
        pendingBytes += piece.length;
        start += piece.length;
        if (pendingBytes < need) return;
        const frame = awaiting;
        awaiting = null;
        onFrame(frame, takePending(need));
        continue;
      }
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        return;
      }
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      let line = piece;
      if (pending.length > 0) {
        pending.push(piece);
        line = takePending(pendingBytes + piece.length);
      }
      if (line.length === 0) continue;
      const frame = parse(line);
      if (frame === null) return;
      if (frame.len === undefined && frame.t !== 'body') {
        onFrame(frame, NO_PAYLOAD);
      } else if (!Number.isInteger(frame.len) || frame.len < 0 || !(frame.len <= PAYLOAD_LIMITS[frame.t])) {
        onFault(`${frame.t} frame with an invalid len ${JSON.stringify(frame.len)}`);
        return;
      } else if (frame.len === 0) {
        onFrame(frame, NO_PAYLOAD);
      } else {
        awaiting = frame;
        need = frame.len;
      }
    }
  };
}

module.exports = {
  PROTOCOL_VERSION,
  FIRST_LANE_FD,
  MAX_FRAME_BODY,
  MAX_SOURCES,
  MAX_WHOLE_BODY,
  createFrameWriter,
  createFrameReader,
};
