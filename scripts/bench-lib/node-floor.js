'use strict';
// node-floor: the fastest a single Node process can serve the bench's widget code. One
// plain node:http server `require`s the same backend.js files and calls the registered
// handlers directly: no framework, no sandbox, no process boundary. req gets `query`
// (parsed by qs, as Express does), `params.service` and `get()`; res gets a minimal
// `status`/`set`/`send`/`json` over Node's own write/end.
// Usage: node node-floor.js --widgets DIR --port N --manager-url URL

const http = require('http');
const qs = require('qs');
const { loadWidgets, endpointKey, parseArgs } = require('./widgets');
const { createHelper } = require('./helpers');

const args = parseArgs(process.argv.slice(2));
const endpoints = loadWidgets(args.widgets);
const helper = createHelper(args['manager-url']);
const PREFIX = '/console/wb/';

class FloorRequest extends http.IncomingMessage {
  get(name) {
    return this.headers[name.toLowerCase()];
  }

  header(name) {
    return this.get(name);
  }
}

class FloorResponse extends http.ServerResponse {
  status(code) {
    this.statusCode = code;
    return this;
  }

  set(name, value) {
    this.setHeader(name, value);
    return this;
  }

  send(body) {
    let data = body;
    if (typeof data === 'string') {
      if (!this.hasHeader('content-type')) this.setHeader('content-type', 'text/html; charset=utf-8');
    } else if (Buffer.isBuffer(data)) {
      if (!this.hasHeader('content-type')) this.setHeader('content-type', 'application/octet-stream');
    } else {
      return this.json(data);
    }
    this.setHeader('content-length', Buffer.byteLength(data));
    this.end(data);
    return this;
  }

  json(value) {
    if (!this.hasHeader('content-type')) this.setHeader('content-type', 'application/json; charset=utf-8');
    return this.send(JSON.stringify(value));
  }
}

function fail(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = (err && err.status) || 404;
  res.status(status).json({ message: status === 500 ? 'The server is temporarily unavailable' : (err && err.message) || String(err) });
}

const server = http.createServer({ IncomingMessage: FloorRequest, ServerResponse: FloorResponse }, (req, res) => {
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  const service = path.startsWith(PREFIX) ? decodeURIComponent(path.slice(PREFIX.length).split('/')[0]) : '';
  const handler = endpoints.get(endpointKey(req.headers['widget-id'], service, req.method));
  if (!handler) {
    fail(res, `No service ${service} for ${req.method} of widget ${req.headers['widget-id']}`);
    return;
  }
  req.query = q === -1 ? {} : qs.parse(req.url.slice(q + 1), { allowPrototypes: true });
  req.params = { service };
  const next = (err) => fail(res, err);
  try {
    const result = handler(req, res, next, helper);
    if (result && typeof result.then === 'function') result.then(undefined, next);
  } catch (err) {
    next(err);
  }
});
server.keepAliveTimeout = 120 * 1000;
server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: server.address().port })}\n`);
});
