'use strict';
// Owns Node's ServerResponse as a widget sees it (headers, writeHead, write/end, events,
// setTimeout), written as `head`/`chunk`/`end` frames under the per-request flow-control
// window, with Node's own rules for status codes, header validation and how the head's
// bytes go out. response.js puts Express 4's methods on top, as Express puts them on
// http.ServerResponse.
//
// It extends the legacy Stream (an EventEmitter with pipe()), as ServerResponse does, so
// `someReadable.pipe(res)` works: write() returns false when the window is used up and
// 'drain' follows once the gateway's acks make room again.

const http = require('http');
const Stream = require('stream');
const { inspect } = require('util');
const { MAX_FRAME_BODY, MAX_WHOLE_BODY } = require('./protocol');

// What Node refuses in a header value or status message (its checkInvalidHeaderChar).
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

// Node's own check of a header name argument (validateString), with its exact error: a
// real OutgoingMessage method run on a spare one, which has no headers to read.
const spareOutgoing = new http.OutgoingMessage();
function validateNameArgument(name) {
  if (typeof name !== 'string') http.OutgoingMessage.prototype.getHeader.call(spareOutgoing, name);
}

function nodeError(Ctor, code, message) {
  const err = new Ctor(message);
  err.code = code;
  return err;
}

function toBuffer(chunk, encoding) {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding || 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE',
    'The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
}

class OutgoingResponse extends Stream {
  // io: {send(frame), onDone(), reportMisuse(message)} supplied by the dispatcher.
  constructor(req, id, window, io) {
    super();
    this.req = req;
    this.statusCode = 200;
    this.statusMessage = undefined;
    // Node's flag for its Date header; the gateway always sends one.
    this.sendDate = true;
    this._id = id;
    this._io = io;
    this._credit = window;
    this._headers = new Map(); // lower-case name -> [name as set, value]
    this._headerList = null; // frozen [name, value] pairs once the head is committed
    this._reason = undefined; // the committed statusMessage, unless it is the standard one
    // How Node would write the head (see _firstWriteIsUtf8): header values as UTF-8
    // rather than latin-1; and whether end(data) gave the head its Content-Length.
    this._headUtf8 = false;
    this._lengthFromEnd = false;
    this._headFrameSent = false;
    this._queue = [];
    this._queuedBytes = 0;
    this._needDrain = false;
    this._ending = false;
    this._finished = false;
    this._destroyed = false;
    this._idleMs = 0; // setTimeout()'s idle time; 0: none
    this._idleTimer = undefined;
    this._corked = 0;
    this._closed = false;
    // removeHeader('Content-Length') was called: Node then sends end(data) chunked.
    this._removedContentLength = false;
  }

  // -- Node ServerResponse surface ------------------------------------------------

  get headersSent() {
    return this._headerList !== null;
  }

  get writable() {
    return !this._ending && !this._destroyed;
  }

  get writableEnded() {
    return this._ending;
  }

  get finished() {
    return this._ending;
  }

  get writableFinished() {
    return this._finished;
  }

  get destroyed() {
    return this._destroyed;
  }

  // Whether 'close' was emitted.
  get closed() {
    return this._closed;
  }

  get errored() {
    return null;
  }

  // The writable-stream counters Node reports for a response: bytes waiting for the
  // window, Node's default high-water mark, and cork() calls not yet undone.
  get writableLength() {
    return this._queuedBytes;
  }

  get writableHighWaterMark() {
    return 16384;
  }

  get writableNeedDrain() {
    return !this._destroyed && !this._finished && this._needDrain;
  }

  get writableObjectMode() {
    return false;
  }

  get writableCorked() {
    return this._corked;
  }

  // Frames are batched per event-loop turn already; cork() and uncork() only count.
  cork() {
    this._corked += 1;
  }

  uncork() {
    if (this._corked > 0) this._corked -= 1;
  }

  setHeader(name, value) {
    if (this.headersSent) {
      throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot set headers after they are sent to the client');
    }
    http.validateHeaderName(name);
    http.validateHeaderValue(name, value);
    this._headers.set(name.toLowerCase(), [name, value]);
    return this;
  }

  getHeader(name) {
    validateNameArgument(name);
    const entry = this._headers.get(name.toLowerCase());
    return entry && entry[1];
  }

  getHeaders() {
    const out = Object.create(null);
    for (const [key, [, value]] of this._headers) out[key] = value;
    return out;
  }

  getHeaderNames() {
    return [...this._headers.keys()];
  }

  getRawHeaderNames() {
    return [...this._headers.values()].map(([name]) => name);
  }

  // Node's setHeaders(Headers | Map): each header through setHeader(), the Set-Cookie
  // lines gathered into one list (a Headers object gives them one by one).
  setHeaders(headers) {
    if (this.headersSent) {
      throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot set headers after they are sent to the client');
    }
    if (!headers || Array.isArray(headers) || typeof headers.keys !== 'function' || typeof headers.get !== 'function') {
      http.OutgoingMessage.prototype.setHeaders.call(spareOutgoing, headers); // throws Node's own error
    }
    const cookies = [];
    for (const [name, value] of headers) {
      if (name === 'set-cookie') cookies.push(...[].concat(value));
      else this.setHeader(name, value);
    }
    if (cookies.length > 0) this.setHeader('set-cookie', cookies);
    return this;
  }

  // Checked as Node checks them, then dropped: the gateway sends no trailers.
  addTrailers(headers) {
    http.OutgoingMessage.prototype.addTrailers.call(spareOutgoing, headers);
  }

  // Interim responses (100 Continue, 102, 103) are the gateway's business, not the
  // widget's: only the callbacks run.
  writeContinue(callback) {
    if (typeof callback === 'function') process.nextTick(callback);
  }

  writeEarlyHints(hints, callback) {
    this.writeContinue(callback);
  }

  hasHeader(name) {
    validateNameArgument(name);
    return this._headers.has(name.toLowerCase());
  }

  removeHeader(name) {
    validateNameArgument(name);
    if (this.headersSent) {
      throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot remove headers after they are sent to the client');
    }
    const key = name.toLowerCase();
    if (key === 'content-length') this._removedContentLength = true;
    this._headers.delete(key);
  }

  // Node's appendHeader: adds values to a header instead of replacing it.
  appendHeader(name, value) {
    if (this.headersSent) {
      throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot append headers after they are sent to the client');
    }
    http.validateHeaderName(name);
    http.validateHeaderValue(name, value);
    const key = name.toLowerCase();
    const entry = this._headers.get(key);
    if (entry) entry[1] = [].concat(entry[1], value);
    else this._headers.set(key, [name, value]);
    return this;
  }

  // writeHead(status[, statusMessage][, headers]), in Node's order: the status is checked
  // before any header is applied; headers given here win over setHeader().
  writeHead(statusCode, reason, headers) {
    if (this.headersSent) {
      throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot write headers after they are sent to the client');
    }
    const code = statusCode | 0;
    if (code < 100 || code > 999) {
      throw nodeError(RangeError, 'ERR_HTTP_INVALID_STATUS_CODE', `Invalid status code: ${statusCode}`);
    }
    let fields = headers;
    if (typeof reason === 'string') {
      this.statusMessage = reason;
    } else {
      this.statusMessage ||= http.STATUS_CODES[code] || 'unknown';
      fields ??= reason;
    }
    this.statusCode = code;
    if (Array.isArray(fields)) {
      if (fields.length % 2 !== 0) {
        throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'headers' is invalid. Received ${inspect(fields)}`);
      }
      // As in Node 20 once a header was set (X-Powered-By always is): each pair goes
      // through setHeader(), so the last of a name wins.
      for (let i = 0; i < fields.length; i += 2) if (fields[i]) this.setHeader(fields[i], fields[i + 1]);
    } else if (fields) {
      for (const name of Object.keys(fields)) if (name) this.setHeader(name, fields[name]);
    }
    if (INVALID_HEADER_CHAR.test(this.statusMessage)) {
      throw nodeError(TypeError, 'ERR_INVALID_CHAR', 'Invalid character in statusMessage');
    }
    const list = [];
    for (const [key, [, value]] of this._headers) {
      if (Array.isArray(value)) for (const v of value) list.push([key, String(v)]);
      else list.push([key, String(value)]);
    }
    this._headerList = list;
    if (this.statusMessage !== http.STATUS_CODES[code]) this._reason = String(this.statusMessage);
    return this;
  }

  // Sends the head now, e.g. before a long wait for the first chunk.
  flushHeaders() {
    if (this._destroyed || this._ending) return;
    this._commitHead();
    // Node sends the head with an empty string in the default encoding.
    if (!this._headFrameSent) this._headUtf8 = true;
    this._pump();
  }

  write(chunk, encoding, callback) {
    const cb = typeof encoding === 'function' ? encoding : callback;
    if (this._destroyed) return false; // cancelled: the gateway no longer listens
    if (this._ending) {
      this._writeAfterEnd('write', cb);
      return false;
    }
    const enc = typeof encoding === 'string' ? encoding : undefined;
    const buf = toBuffer(chunk, enc);
    this._touch();
    this._commitHead();
    if (!this._headFrameSent) {
      // Without a Content-Length the body is chunked, and a chunk's size goes out first.
      const chunked = !this._headers.has('content-length') && buf.length > 0;
      this._headUtf8 = this._firstWriteIsUtf8(chunk, enc, chunked);
    }
    this._enqueue(buf);
    this._pump();
    const ok = this._queuedBytes === 0 && this._credit > 0;
    if (!ok) this._needDrain = true;
    if (typeof cb === 'function') {
      if (ok) process.nextTick(cb);
      else this.once('drain', cb);
    }
    return ok;
  }

  end(chunk, encoding, callback) {
    let data = chunk;
    let enc = encoding;
    let cb = callback;
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof enc === 'function') {
      cb = enc;
      enc = undefined;
    }
    if (this._destroyed) return this;
    if (this._ending) {
      if (data) {
        this._writeAfterEnd('end', cb);
      } else if (typeof cb === 'function') {
        // As Node: on 'finish' while the body is still going out, an error once it is out.
        if (!this._finished) this.once('finish', cb);
        else cb(nodeError(Error, 'ERR_STREAM_ALREADY_FINISHED', 'Cannot call end after a stream was finished'));
      }
      return this;
    }
    const buf = data == null ? null : toBuffer(data, enc);
    // Node takes an empty string (or none) as no data: the head then goes out alone.
    const hasData = Boolean(data);
    if (!this._headFrameSent) {
      const chunked = (this.headersSent || this._removedContentLength) && !this._headers.has('content-length');
      this._headUtf8 = hasData && this._firstWriteIsUtf8(data, enc, chunked && buf.length > 0);
    }
    if (!this.headersSent) {
      this._setImplicitLength(buf ? buf.length : 0);
      this._lengthFromEnd = hasData && buf.length > 0;
    }
    this._commitHead();
    if (buf) this._enqueue(buf);
    this._ending = true;
    if (typeof cb === 'function') this.once('finish', cb);
    this._pump();
    return this;
  }

  // A handler that destroys its response means to abort it, not to complete it.
  destroy() {
    if (this._destroyed || this._finished) return this;
    this._commitHead();
    this._ending = true;
    this._queue = [];
    this._queuedBytes = 0;
    this._pump({ abort: true });
    return this;
  }

  // Node's socket timeout, for this request: after `msecs` in which the response wrote
  // nothing and no request body arrived, 'timeout' is emitted on req (while its body is
  // incomplete) and on res; if nothing listens to either, the response is destroyed, as
  // Node destroys the socket. 0 turns it off. The gateway's handler_timeout still
  // bounds the whole request.
  setTimeout(msecs, callback) {
    if (callback) this.on('timeout', callback);
    this._idleMs = msecs;
    this._touch();
    return this;
  }

  // Activity on the request: the idle time starts again.
  _touch() {
    clearTimeout(this._idleTimer);
    if (this._idleMs > 0 && !this._finished && !this._destroyed) {
      this._idleTimer = setTimeout(() => {
        const { req } = this;
        const heardByReq = !req.complete && req.emit('timeout');
        const heardByRes = this.emit('timeout');
        if (!heardByReq && !heardByRes) this.destroy();
      }, this._idleMs);
    }
  }

  // -- driven by the dispatcher ---------------------------------------------------

  _ack(bytes) {
    if (!(bytes > 0)) return;
    this._touch();
    this._credit += bytes;
    this._pump();
  }

  // The gateway cancelled the request: drop everything, emit 'close', send nothing more.
  _cancel() {
    if (this._destroyed || this._finished) return;
    clearTimeout(this._idleTimer);
    this._destroyed = true;
    this._queue = [];
    this._queuedBytes = 0;
    this._io.onDone();
    process.nextTick(() => {
      this._closed = true;
      this.emit('close');
    });
  }

  // -- internals ------------------------------------------------------------------

  // Data after the end: Node hands the error to the callback and to 'error' listeners;
  // with none listening it would take the whole server down. Here it is also reported.
  _writeAfterEnd(method, callback) {
    this._io.reportMisuse(`res.${method}() called after the response ended (write after end)`);
    const err = nodeError(Error, 'ERR_STREAM_WRITE_AFTER_END', 'write after end');
    process.nextTick(() => {
      if (typeof callback === 'function') callback(err);
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  // Node sets Content-Length itself when the whole body is given to end() before any
  // header went out; statuses that carry no body get none.
  _setImplicitLength(length) {
    if (!this._hasBody() || this._removedContentLength) return;
    if (this._headers.has('content-length') || this._headers.has('transfer-encoding')) return;
    this.setHeader('Content-Length', length);
  }

  // Node writes the head in one piece with the first body bytes when they are a string in
  // its default encoding and come first (not after a chunk size): then the head string
  // goes out as UTF-8, so does every header value beyond ASCII. Otherwise as latin-1.
  _firstWriteIsUtf8(chunk, encoding, chunked) {
    return this._hasBody() && !chunked && typeof chunk === 'string' && (encoding === undefined || encoding === 'utf8');
  }

  // Node's _hasBody: these answers carry no body, and what a handler writes is dropped.
  _hasBody() {
    const status = this.statusCode;
    return !(status === 204 || status === 304 || (status >= 100 && status < 200)) && this.req.method !== 'HEAD';
  }

  // Node's _implicitHeader: the first write or end sends the head as it stands.
  _commitHead() {
    if (!this.headersSent) this.writeHead(this.statusCode);
  }

  _enqueue(buf) {
    if (buf.length === 0 || !this._hasBody()) return;
    this._queue.push(buf);
    this._queuedBytes += buf.length;
  }

  // Takes up to the credit (and the per-frame cap) off the front of the queue.
  _takeBody() {
    const size = Math.min(this._credit, MAX_FRAME_BODY, this._queuedBytes);
    if (size <= 0) return null;
    const parts = [];
    let need = size;
    while (need > 0) {
      const head = this._queue[0];
      if (head.length <= need) {
        parts.push(this._queue.shift());
        need -= head.length;
      } else {
        parts.push(head.subarray(0, need));
        this._queue[0] = head.subarray(need);
        need = 0;
      }
    }
    this._credit -= size;
    this._queuedBytes -= size;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
  }

  // Sends whatever the window allows. A response already complete when its head goes out
  // (and small enough) travels whole in the head frame, outside the window.
  _pump(endFields) {
    if (this._destroyed || this._finished || !this.headersSent) return;
    if (!this._headFrameSent && this._ending && !endFields && this._queuedBytes <= MAX_WHOLE_BODY) {
      const frame = this._headFrame();
      const body = this._queue.length === 1 ? this._queue[0] : Buffer.concat(this._queue, this._queuedBytes);
      frame.end = true;
      this._queue = [];
      this._queuedBytes = 0;
      this._headFrameSent = true;
      this._io.send(frame, body);
      this._finish();
      return;
    }
    while (!this._headFrameSent || (this._queuedBytes > 0 && this._credit > 0)) {
      const frame = this._headFrameSent ? { t: 'chunk', id: this._id } : this._headFrame();
      const data = this._takeBody();
      this._headFrameSent = true;
      if (data) this._io.send(frame, data);
      else this._io.send(frame);
    }
    if (this._ending && this._queuedBytes === 0) {
      this._io.send({ t: 'end', id: this._id, ...endFields });
      this._finish();
    } else if (this._needDrain && this._queuedBytes === 0 && this._credit > 0) {
      this._needDrain = false;
      this.emit('drain');
    }
  }

  _headFrame() {
    const frame = { t: 'head', id: this._id, status: this.statusCode, headers: this._headerList };
    if (this._reason !== undefined) frame.reason = this._reason;
    if (this._headUtf8) frame.utf8 = true;
    if (this._lengthFromEnd && this._headers.has('content-disposition')) this._latin1ContentDisposition();
    return frame;
  }

  // Node 20 (nodejs/node#46528) turns a Content-Disposition value into latin-1 bytes when
  // the head has a Content-Length from end(data), then reads them back as UTF-8: each
  // character beyond ASCII becomes U+FFFD, which goes out as UTF-8 or, as latin-1, 0xFD.
  _latin1ContentDisposition() {
    for (const pair of this._headerList) {
      if (pair[0] !== 'content-disposition') continue;
      const decoded = Buffer.from(pair[1], 'latin1').toString('utf8');
      pair[1] = this._headUtf8 ? decoded : Buffer.from(decoded, 'latin1').toString('latin1');
    }
  }

  _finish() {
    clearTimeout(this._idleTimer);
    this._finished = true;
    this._io.onDone();
    process.nextTick(() => {
      this.emit('finish');
      this._closed = true;
      this.emit('close');
    });
  }
}

// Node's old name for writeHead, still there; 102 Processing is as interim as 100.
OutgoingResponse.prototype.writeHeader = OutgoingResponse.prototype.writeHead;
OutgoingResponse.prototype.writeProcessing = OutgoingResponse.prototype.writeContinue;

module.exports = { OutgoingResponse };
