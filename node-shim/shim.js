'use strict';
// Entry point of one widget worker (docs/PROTOCOL.md). Owns the process: fd 1 is the
// control stream, so it is taken over before anything else can print; then it reads
// control frames from stdin, does the handshake (loading the backend), opens the lanes
// (fd 3 onwards, one per gateway HTTP thread) and routes each request frame arriving on
// a lane to the request it belongs to, answering on the same lane. A widget bug ends
// that request, never this process, except an exception thrown outside any handler (a
// timer, an event), which is the widget's crash: it is reported and the worker exits for
// the gateway to restart it.

const net = require('net');
const { createFrameWriter, createFrameReader, PROTOCOL_VERSION, FIRST_LANE_FD, MAX_SOURCES } = require('./lib/protocol');

// Bound before captureConsole() replaces process.stdout.write; stdout on a pipe is a
// synchronous write on Linux, so frames are out once this returns.
const protocolOut = process.stdout;
const writer = createFrameWriter(protocolOut.write.bind(protocolOut));
const laneWriters = [];
// The gateway closed our stdout: nobody is listening any more.
protocolOut.on('error', () => process.exit(0));

const { createLogging } = require('./lib/logger');

const logging = createLogging(writer.send);
logging.captureConsole(process.stdout, process.stderr);

const util = require('util');
const { loadBackend } = require('./lib/backend');
const { WidgetRequest } = require('./lib/request');
const { WidgetResponse } = require('./lib/response');
const { createErrorHandler } = require('./lib/error-handler');
const { createHelperCalls } = require('./lib/helpers');

// Used when a `req` frame carries no window (the gateway always should).
const DEFAULT_WINDOW = 256 * 1024;

const logShim = (level, msg) => logging.log(level, logging.shimCategory, msg);
const describe = (err) => (err instanceof Error ? err.stack || String(err) : util.inspect(err));

function exit(code) {
  writer.flush();
  for (const laneWriter of laneWriters) laneWriter.flush();
  process.exit(code);
}

process.on('uncaughtException', (err) => {
  logShim('error', `Uncaught exception in the widget backend, restarting the worker: ${describe(err)}`);
  exit(1);
});
process.on('unhandledRejection', (reason) => {
  logShim('error', `Unhandled promise rejection in the widget backend: ${describe(reason)}`);
});

const errors = createErrorHandler(logShim);
const helperCalls = createHelperCalls(writer.send);
const requests = new Map(); // request id -> {req, res, cancelled}
let registry = null; // set once the backend loaded
let widgetId = '';

function protocolFault(message) {
  logShim('error', `Protocol fault from the gateway: ${message}`);
  exit(1);
}

function hello(frame) {
  if (frame.v !== PROTOCOL_VERSION) {
    writer.send({ t: 'hello', v: PROTOCOL_VERSION,
      error: { message: `protocol version ${frame.v} not supported (shim speaks ${PROTOCOL_VERSION})` } });
    exit(1);
    return;
  }
  widgetId = String(frame.widget || '');
  const loaded = loadBackend({
    backend: frame.backend,
    modulesDir: frame.modules_dir,
    allowedModules: frame.allowed_modules || [],
    allowedBuiltins: frame.allowed_builtins || [],
    pinnedSources: new Map(Object.entries(frame.sources || {})),
  });
  if (loaded.error) {
    writer.send({ t: 'hello', v: PROTOCOL_VERSION, error: loaded.error });
    exit(1);
    return;
  }
  registry = loaded.registry;
  const lanes = Number.isInteger(frame.lanes) ? frame.lanes : 0;
  for (let index = 0; index < lanes; index++) openLane(FIRST_LANE_FD + index);
  const reply = { t: 'hello', v: PROTOCOL_VERSION, endpoints: registry.list() };
  // The gateway keeps these to restart this version after a crash; a widget whose files
  // are too large to carry is restarted from its folder instead.
  const sources = Object.fromEntries(loaded.sources);
  if (Buffer.byteLength(JSON.stringify(sources)) <= MAX_SOURCES) reply.sources = sources;
  writer.send(reply);
}

// A lane is a socket the gateway passed at `fd`; requests arrive on it and are answered
// on it. An error on it, like one on stdout, means the gateway is gone.
function openLane(fd) {
  let socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: true });
  } catch (err) {
    protocolFault(`lane at fd ${fd} cannot be opened: ${err.message}`);
    return;
  }
  const laneWriter = createFrameWriter(socket.write.bind(socket));
  laneWriters.push(laneWriter);
  socket.on('data', createFrameReader((frame, payload) => onLaneFrame(frame, payload, laneWriter), protocolFault));
  socket.on('error', () => process.exit(0));
}

function startRequest(frame, laneWriter) {
  const { id } = frame;
  if (requests.has(id)) {
    protocolFault(`request id ${id} is already in flight`);
    return;
  }
  const ctx = { cancelled: false, done: false };
  const req = new WidgetRequest(frame, (bytes) => {
    if (!ctx.done) laneWriter.send({ t: 'ack', id, bytes });
  });
  const res = new WidgetResponse(req, id, frame.window > 0 ? frame.window : DEFAULT_WINDOW, {
    send: laneWriter.send,
    onDone() {
      ctx.done = true;
      requests.delete(id);
      // Like Node after a response: a body nobody will read is discarded.
      if (!req.complete && !req.destroyed) req.destroy();
    },
    reportMisuse(message) {
      logShim('error', `${message} (${req.method} ${req.originalUrl})\n${new Error(message).stack}`);
    },
  });
  ctx.req = req;
  ctx.res = res;
  requests.set(id, ctx);
  if (frame.end === true) req._endBody();

  // Express's `next`: an error goes to the stage's error handler, nothing (or the
  // router escapes 'route'/'router') falls through to the 404.
  function next(err) {
    if (ctx.cancelled) return;
    try {
      if (err && err !== 'route' && err !== 'router') errors.handleError(err, req, res);
      else errors.notFound(req, res);
    } catch (failure) {
      logShim('error', `Could not end ${req.method} ${req.originalUrl}: ${describe(failure)}`);
    }
  }
  req.next = next;

  const endpoint = registry.find(String(frame.service || ''), req.method);
  if (!endpoint) {
    const service = String(frame.service || '').toUpperCase();
    next(`No script for service ${service} for method ${req.method} for widget ${widgetId}`);
    return;
  }
  const helper = helperCalls.helpersFor(id, () => ctx.cancelled, logging.Logger);
  // The stage ran the handler inside a promise chain ending in .catch(next): a throw or
  // a rejection reaches next() the same way.
  try {
    const result = endpoint.handler(req, res, next, helper);
    if (result && typeof result.then === 'function') result.then(undefined, next);
  } catch (err) {
    next(err);
  }
}

function cancelRequest(ctx, id) {
  ctx.cancelled = true;
  ctx.req._abort();
  ctx.res._cancel();
  helperCalls.cancelRequest(id);
}

function onControlFrame(frame, payload) {
  if (frame.t === 'hello') {
    if (registry) protocolFault('second hello');
    else hello(frame);
    return;
  }
  if (!registry) {
    protocolFault(`"${frame.t}" before hello`);
    return;
  }
  switch (frame.t) {
    case 'ret':
      helperCalls.settle(frame, payload);
      break;
    case 'ping': {
      const { rss, heapUsed } = process.memoryUsage();
      writer.send({ t: 'pong', seq: frame.seq, rss, heap: heapUsed });
      break;
    }
    default:
      protocolFault(`unknown control frame type "${frame.t}"`);
  }
}

function onLaneFrame(frame, payload, laneWriter) {
  // Frames for a request that already finished (or was cancelled) are expected
  // stragglers, e.g. body chunks in flight when the response ended.
  const ctx = requests.get(frame.id);
  switch (frame.t) {
    case 'req':
      startRequest(frame, laneWriter);
      break;
    case 'body':
      if (ctx && payload.length > 0) ctx.req._pushBody(payload);
      break;
    case 'end':
      if (ctx) ctx.req._endBody();
      break;
    case 'ack':
      if (ctx) ctx.res._ack(frame.bytes);
      break;
    case 'cancel':
      if (ctx) cancelRequest(ctx, frame.id);
      break;
    default:
      protocolFault(`unknown lane frame type "${frame.t}"`);
  }
}

process.stdin.on('data', createFrameReader(onControlFrame, protocolFault));
// The gateway closed our stdin: it is gone or wants us gone.
process.stdin.on('end', () => exit(0));
