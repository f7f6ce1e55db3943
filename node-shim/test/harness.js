'use strict';
// Test harness: spawns the real shim.js as the gateway would, with one lane at fd 3, and
// speaks the protocol to it, so the tests exercise exactly what the Rust side will see on
// the wire. Every frame is checked to travel on its channel (docs/PROTOCOL.md).

const { spawn } = require('child_process');
const path = require('path');
const { MAX_FRAME_BODY } = require('../lib/protocol');

const SHIM = path.join(__dirname, '..', 'shim.js');
const MODULES_DIR = path.join(__dirname, '..', 'node_modules');
const FIXTURES = path.join(__dirname, 'fixtures');
const CONTEXT = '/console';

const fixture = (...parts) => path.join(FIXTURES, ...parts);

// Frames that travel on stdin/stdout; all others belong to a request and use its lane.
const CONTROL_FRAMES = new Set(['hello', 'ping', 'pong', 'log', 'call', 'ret']);

// Calls onFrame(frame) for each frame of a readable stream, as the gateway reads them: a
// JSON line, followed by `len` raw payload bytes when the frame has a `len` (they become
// `frame.payload`).
function readFrames(stream, onFrame) {
  let pending = Buffer.alloc(0);
  stream.on('data', (data) => {
    pending = Buffer.concat([pending, data]);
    for (;;) {
      const nl = pending.indexOf(10);
      if (nl === -1) return;
      // A line that is not JSON is a protocol bug: let JSON.parse throw in the test.
      const frame = JSON.parse(pending.subarray(0, nl).toString('utf8'));
      const len = frame.len === undefined ? 0 : frame.len;
      if (pending.length < nl + 1 + len) return;
      if (frame.len !== undefined) frame.payload = pending.subarray(nl + 1, nl + 1 + len);
      pending = pending.subarray(nl + 1 + len);
      onFrame(frame);
    }
  });
}

// What the gateway derives from a full URL under <context>/wb/<service>, i.e. what
// Express computes inside router.use('/:service', ...).
function routeOf(originalUrl) {
  const q = originalUrl.indexOf('?');
  const pathname = q === -1 ? originalUrl : originalUrl.slice(0, q);
  const search = q === -1 ? '' : originalUrl.slice(q);
  const prefix = `${CONTEXT}/wb/`;
  if (!pathname.startsWith(prefix)) throw new Error(`not a widget backend URL: ${originalUrl}`);
  const rest = pathname.slice(prefix.length);
  const slash = rest.indexOf('/');
  const segment = slash === -1 ? rest : rest.slice(0, slash);
  const tail = slash === -1 ? '' : rest.slice(slash);
  return {
    service: decodeURIComponent(segment),
    baseUrl: prefix + segment,
    url: (tail || '/') + search,
    originalUrl,
  };
}

class Shim {
  constructor(child) {
    this.child = child;
    this.frames = [];
    this.logs = [];
    this.stderr = '';
    this.waiters = [];
    this.nextId = 1;
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    this.lane = child.stdio[3];
    readFrames(child.stdout, (frame) => this._onFrame(frame, 'control'));
    readFrames(this.lane, (frame) => this._onFrame(frame, 'lane'));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      this.stderr += d;
    });
  }

  // Starts a shim for `backend` and completes the handshake; returns [shim, helloReply].
  static async start(backend, options = {}) {
    const child = spawn(process.execPath, [SHIM], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const shim = new Shim(child);
    shim.send({
      t: 'hello',
      v: options.version || 4,
      widget: options.widget || path.basename(path.dirname(backend)),
      backend,
      modules_dir: MODULES_DIR,
      allowed_modules: options.allowedModules || ['lodash', 'body', 'elkjs'],
      allowed_builtins: options.allowedBuiltins || [],
      lanes: 1,
      ...(options.sources ? { sources: options.sources } : {}),
    });
    const hello = await shim.waitFor((f) => f.t === 'hello');
    return [shim, hello];
  }

  _onFrame(frame, channel) {
    const expected = CONTROL_FRAMES.has(frame.t) ? 'control' : 'lane';
    if (channel !== expected) throw new Error(`${frame.t} frame arrived on the ${channel} channel, not the ${expected}`);
    this.frames.push(frame);
    if (frame.t === 'log') this.logs.push(frame);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(frame)) return true;
      clearTimeout(w.timer);
      w.resolve(frame);
      return false;
    });
  }

  // Writes `frame`, followed by `payload` (a Buffer or string) with its `len`, if given.
  send(frame, payload) {
    const channel = CONTROL_FRAMES.has(frame.t) ? this.child.stdin : this.lane;
    if (payload === undefined) {
      channel.write(`${JSON.stringify(frame)}\n`);
      return;
    }
    const bytes = Buffer.from(payload);
    channel.write(Buffer.concat([Buffer.from(`${JSON.stringify({ ...frame, len: bytes.length })}\n`), bytes]));
  }

  // Resolves with the first frame (already received or future) that matches.
  waitFor(match, timeoutMs = 5000, from = 0) {
    const seen = this.frames.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for a frame; got ${JSON.stringify(this.frames.slice(-5))}; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  // Sends a request (and its body) and collects the response; acks every body frame
  // unless `ack: false`, so flow control never stalls a plain test.
  async request({ method = 'GET', url, headers = [], body, window = 262144, ack = true, ip = '127.0.0.1', user = null }) {
    const id = this.nextId++;
    const from = this.frames.length;
    // As the gateway does, a request without a body is complete in its `req` frame.
    const end = body === undefined;
    this.send({ t: 'req', id, method, ...routeOf(url), headers, ip, protocol: 'http', user, window, end });
    if (!end) {
      // In frames of at most 64 KiB, as the gateway sends a body.
      const bytes = Buffer.from(body);
      for (let at = 0; at < bytes.length; at += MAX_FRAME_BODY) {
        this.send({ t: 'body', id }, bytes.subarray(at, at + MAX_FRAME_BODY));
      }
      this.send({ t: 'end', id });
    }
    return this.collect(id, from, ack);
  }

  async collect(id, from, ack = true) {
    const parts = [];
    let head = null;
    let index = from;
    for (;;) {
      const frame = await this.waitFor((f) => f.id === id && ['head', 'chunk', 'end'].includes(f.t), 5000, index);
      index = this.frames.indexOf(frame) + 1;
      if (frame.t === 'head') head = frame;
      const data = frame.payload;
      if (data) {
        parts.push(data);
        if (ack && data.length > 0) this.send({ t: 'ack', id, bytes: data.length });
      }
      if (frame.t === 'end' || frame.end) break;
    }
    return { id, status: head.status, headers: head.headers, body: Buffer.concat(parts), head };
  }

  async stop() {
    this.child.stdin.end();
    return this.exited;
  }
}

// A head frame's header list -> {name: value | [values]} as Node's client reads them:
// each byte a character, from the bytes the gateway writes (UTF-8 when the frame says so).
function headerObject({ headers, utf8 }) {
  const out = {};
  for (const [name, text] of headers) {
    const value = utf8 ? Buffer.from(text, 'utf8').toString('latin1') : text;
    if (name === 'set-cookie') (out[name] = out[name] || []).push(value);
    else out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

module.exports = { Shim, fixture, routeOf, headerObject };
