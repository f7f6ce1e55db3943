'use strict';
// Differential tests: every service of fixtures/differential runs both in a real
// Express 4 app wired like the stage (cookie-parser, router.use('/:service') under
// /console/wb, the stage's error handler) and through the shim, and the responses
// must match: status, headers (all but the ones the HTTP layer adds) and body bytes.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('http');
const express = require('express');
const cookieParser = require('cookie-parser');
const etag = require('etag');
const { Shim, fixture, headerObject } = require('./harness');
const { createRegistry } = require('../lib/register');

const BACKEND = fixture('differential', 'backend.js');
// Added by Node's HTTP server (the gateway adds its own), not by the handler.
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

let shim;
let server;
let port;
let lastRawHeaders;

function stageApp(registry) {
  const app = express();
  app.use((req, res, next) => {
    lastRawHeaders = req.rawHeaders;
    next();
  });
  app.use(cookieParser());
  const router = express.Router();
  router.use('/:service', (req, res, next) =>
    Promise.resolve()
      .then(() => {
        const endpoint = registry.find(req.params.service, req.method);
        if (!endpoint) {
          const [service, method] = [req.params.service.toUpperCase(), req.method];
          return Promise.reject(`No script for service ${service} for method ${method} for widget differential`);
        }
        return endpoint.handler(req, res, next, {});
      })
      .catch(next));
  app.use('/console/wb', router);
  // The stage's error handler (backend/app.ts).
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    let { message } = err;
    if (err.status === 500) message = 'The server is temporarily unavailable';
    res.status(err.status || 404).send({ message: message || err });
  });
  return app;
}

// Flat [name, value, ...] -> Node client headers; repeated names become arrays, which
// the client sends as repeated lines.
function clientHeaders(flat) {
  const out = { Connection: 'close' };
  for (let i = 0; i < flat.length; i += 2) {
    const [name, value] = [flat[i], flat[i + 1]];
    out[name] = name in out ? [].concat(out[name], value) : value;
  }
  return out;
}

function expressRequest({ method = 'GET', url, headers = [], body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers: clientHeaders(headers) }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, reason: res.statusMessage, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function comparable({ status, reason, headers, body }) {
  const kept = {};
  for (const name of Object.keys(headers).sort()) {
    if (!TRANSPORT_HEADERS.has(name)) kept[name] = headers[name];
  }
  return { status, reason, headers: kept, body: body.toString('latin1') };
}

async function compare(spec) {
  const viaExpress = await expressRequest(spec);
  // The gateway forwards the header lines as the client sent them.
  const lines = [];
  for (let i = 0; i < lastRawHeaders.length; i += 2) lines.push([lastRawHeaders[i], lastRawHeaders[i + 1]]);
  const viaShim = await shim.request({ method: spec.method, url: spec.url, headers: lines, body: spec.body });
  assert.deepStrictEqual(
    // The gateway writes Node's standard phrase where the head frame names none.
    comparable({ ...viaShim, reason: viaShim.head.reason ?? http.STATUS_CODES[viaShim.status], headers: headerObject(viaShim.head) }),
    comparable(viaExpress),
    `${spec.method || 'GET'} ${spec.url}`
  );
}

before(async () => {
  const registry = createRegistry();
  require(BACKEND)(registry.registrator);
  server = stageApp(registry).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = server.address().port;
  const [started, hello] = await Shim.start(BACKEND);
  assert.ok(hello.endpoints, JSON.stringify(hello));
  shim = started;
});

after(async () => {
  server.close();
  await shim.stop();
});

const GET_SERVICES = [
  'send-string', 'send-object', 'send-array', 'send-buffer', 'send-bool', 'send-null',
  'send-undefined', 'send-large', 'send-typed', 'json', 'json-null', 'json-string', 'json-status',
  'status-send', 'status-204', 'status-205', 'send-status-404', 'send-status-299', 'set-object',
  'set-array', 'set-ct-json', 'set-ct-image', 'header-alias', 'type-ext', 'type-dot', 'type-xml',
  'type-png', 'type-unknown', 'append', 'location', 'redirect', 'redirect-301', 'cookie', 'vary',
  'links', 'attachment', 'attachment-none', 'stream', 'write-head', 'write-head-msg',
  'headers-api', 'end-empty', 'status-prop', 'status-string', 'status-fraction', 'status-invalid', 'cookie-inherited-options', 'req-cookies', 'type-ico', 'type-wav', 'type-toml',
  'type-backslash', 'attachment-ico', 'write-head-list', 'write-head-undefined-reason', 'write-head-bad-status',
  'write-head-odd-list', 'status-message-set', 'status-message-number', 'status-message-late', 'status-teapot', 'status-message-empty', 'append-header', 'fresh', 'etag-custom', 'err-next',
  'err-next-string', 'err-next-500', 'err-next-empty-error', 'err-throw', 'err-reject',
  'err-preset-type', 'next-empty', 'next-route', 'no-such-service', 'send-number',
  'send-status-first', 'send-status-last', 'json-status-first', 'json-status-last',
  'redirect-url-status', 'redirect-back', 'json-circular', 'json-bigint', 'set-ct-array',
  'vary-empty', 'append-set-cookie', 'cookie-options', 'write-head-obj-array',
  'write-invalid', 'node-flags', 'req-node-fields', 'header-name-arguments', 'node-writable-api', 'removed-content-length',
  'send-file', 'send-file-root', 'send-file-missing', 'send-file-directory', 'send-file-relative',
  'send-file-dotfile', 'send-file-callback', 'download', 'download-named',
  'edge-clear-maxage', 'edge-cookie-maxage-str', 'edge-cookie-maxage-num', 'edge-cookie-domain',
  'edge-cookie-bad', 'edge-cookie-bad-value', 'edge-location-no-referer', 'edge-vary-array',
  'edge-links-multi', 'edge-type-charset-preserve', 'edge-set-ct-charset-json',
  'edge-send-empty-object', 'edge-json-date', 'edge-json-tojson', 'edge-sendstatus-418',
  'edge-redirect-encoded', 'edge-redirect-empty', 'edge-format-no-match-default',
  'edge-format-uses-type', 'edge-append-empty', 'edge-get-ct', 'edge-set-lower-ct',
  'edge-status-chain-json', 'edge-writehead-then-set', 'edge-headers-sent-after-end',
];

for (const service of GET_SERVICES) {
  test(`GET ${service} matches Express`, () => compare({ url: `/console/wb/${service}` }));
}

test('req.headersDistinct keeps every line of a repeated header', () =>
  compare({ url: '/console/wb/req-node-fields', headers: ['X-Dup', 'a', 'X-Dup', 'b', 'Cookie', 'c=1', 'Cookie', 'd=2'] }));

test('writes and ends after the end reach callbacks and error listeners as in Node', async () => {
  await compare({ url: '/console/wb/after-end' });
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Express and the shim each keep their own copy of the list (separate processes).
  await compare({ url: '/console/wb/after-end-seen' });
});

test('service names are case-insensitive', () => compare({ url: '/console/wb/Send-String' }));

test('jsonp with and without callback', async () => {
  await compare({ url: '/console/wb/jsonp?callback=my.cb' });
  await compare({ url: '/console/wb/jsonp' });
  await compare({ url: '/console/wb/jsonp?callback=a&callback=b' });
});

test("req.query parses as Express 4's extended parser", async () => {
  const queries = [
    'a[]=1&a[]=2', 'a[0]=x&a[2]=y', 'a[b][c][d][e][f][g]=1', '__proto__[x]=1&constructor=2',
    'a=1&a[b]=2', 'a.b=1', 'a[]=1&a=2', 'a[x]=1&a[]=2', 'x=%E0%A4%A', 'a=1;b=2', '&&a&=b',
    'a[=1', 'a]=1', 'arr[100]=1', 'arr[20]=a', 'arr[21]=a', 'plus=a+b&pct=%2B',
  ];
  for (const query of queries) await compare({ url: `/console/wb/query?${query}` });
});

test('redirect body follows Accept', async () => {
  for (const accept of ['text/html', 'text/plain', 'application/json', 'text/html;q=0.1, text/plain']) {
    await compare({ url: '/console/wb/redirect-301', headers: ['Accept', accept] });
  }
});

test('location "back" uses the Referer', () =>
  compare({ url: '/console/wb/location-back', headers: ['Referer', 'http://x/y?z'] }));

test('format negotiates and answers 406 through the error handler', async () => {
  await compare({ url: '/console/wb/format', headers: ['Accept', 'application/json'] });
  await compare({ url: '/console/wb/format', headers: ['Accept', 'text/*'] });
  await compare({ url: '/console/wb/format-406', headers: ['Accept', 'text/html'] });
});

test('conditional GET gives 304 with a matching ETag', async () => {
  const tag = etag(Buffer.from('cache me'), { weak: true });
  await compare({ url: '/console/wb/fresh', headers: ['If-None-Match', tag] });
  await compare({ url: '/console/wb/fresh', headers: ['If-None-Match', 'W/"other"'] });
  await compare({ url: '/console/wb/etag-custom', headers: ['If-None-Match', '"v1"'] });
});

test('request fields match Express', async () => {
  await compare({
    url: '/console/wb/req-fields/extra/p%20q?a[b]=1&a[c]=2&arr=1&arr=2&q=%20s&e=&flag',
    headers: [
      'Host', 'Example.com:8080',
      'Referer', 'http://ref/x',
      'X-Requested-With', 'XMLHttpRequest',
      'Cookie', 'a=1; j=j%3A%7B%22k%22%3A1%7D',
      'Cookie', 'b=2',
      'X-Dup', 'one',
      'X-Dup', 'two',
      'Content-Type', 'application/json',
      'Content-Type', 'text/plain',
      'Accept', 'application/json',
      'Set-Cookie', 's=1',
      'Set-Cookie', 's=2',
    ],
  });
  await compare({ url: '/console/wb/req-fields', headers: ['Host', '[::1]:3000'] });
  await compare({ url: '/console/wb/req-fields?', headers: [] });
  await compare({
    url: '/console/wb/req-fields?arr=q',
    headers: [
      'Host', 'a.b.console.example.com',
      'Accept-Encoding', 'br;q=0.5, gzip',
      'Accept-Charset', 'utf-8, iso-8859-1;q=0.2',
      'Accept-Language', 'en-GB, fr;q=0.8',
      'Range', 'bytes=0-99,200-',
    ],
  });
  await compare({ url: '/console/wb/req-fields', headers: ['Host', '10.0.0.1', 'Range', 'bytes=5000-'] });
});

test('POST body through body/json and PUT body through for-await', async () => {
  await compare({ method: 'POST', url: '/console/wb/echo-json', headers: ['Content-Type', 'application/json'], body: '{"x":[1,"ü"]}' });
  await compare({ method: 'POST', url: '/console/wb/echo-json', headers: ['Content-Type', 'application/json'], body: '{bad json' });
  await compare({ method: 'PUT', url: '/console/wb/echo-stream', body: 'raw bytes ü' });
});

test('request bodies through the body package and the stream API', async () => {
  const json = ['Content-Type', 'application/json'];
  const form = ['Content-Type', 'application/x-www-form-urlencoded'];
  const cases = [
    ['body-text', [], 'hello \u00fc'], ['body-text-limit', [], 'longer than five bytes'],
    ['body-text', ['Content-Type', 'text/plain; charset=latin1'], Buffer.from([0x68, 0xe9])],
    ['body-form', form, 'a=1&b[c]=2&a=3'], ['body-form', [], 'x=y'],
    ['body-any', json, '{"z":true}'], ['body-any', form, 'q=1'], ['body-any', ['Content-Type', 'text/plain'], 'plain'],
    ['body-set-encoding', [], 'abc'], ['body-read', [], 'x'.repeat(150000)], ['body-pipe', [], 'echo me'],
  ];
  for (const [service, headers, body] of cases) await compare({ method: 'POST', url: `/console/wb/${service}`, headers, body });
});

test('req.cookies as cookie-parser gives them, whatever the Cookie header holds', async () => {
  for (const header of ['hasOwnProperty=1; b=2', 'a=j:false; b=j:0; c=j:null; d=j:""; e=j:{"x":1}; f=j:[1', '__proto__=x; constructor=y']) {
    await compare({ url: '/console/wb/req-cookies', headers: ['Cookie', header] });
  }
});

test('format resolves keys as Express does (mime@1 names, a full type as written)', async () => {
  for (const accept of ['image/x-icon', 'image/*', 'text/plain']) {
    await compare({ url: '/console/wb/format-ico', headers: ['Accept', accept] });
    await compare({ url: '/console/wb/format-spaced', headers: ['Accept', accept] });
  }
});

test('req.is with a type, a list, several and none', async () => {
  for (const [type, body] of [['application/json; charset=utf-8', '{}'], ['text/html', 'x'], ['text/plain', '']]) {
    await compare({ method: 'POST', url: '/console/wb/is', headers: ['Content-Type', type], body });
  }
  await compare({ method: 'POST', url: '/console/wb/is' });
});

test('header values beyond ASCII go out in the bytes Node writes', async () => {
  const names = [];
  require(BACKEND)({ register: (name) => names.push(name) });
  const services = names.filter((name) => name.startsWith('head-bytes-'));
  assert.ok(services.length > 10);
  for (const service of services) await compare({ url: `/console/wb/${service}` });
});

test('sendFile answers conditional and range requests as Express does', async () => {
  await compare({ url: '/console/wb/send-file', headers: ['Range', 'bytes=5-12'] });
  await compare({ url: '/console/wb/send-file', headers: ['Range', 'bytes=500-'] });
  const { headers } = await expressRequest({ url: '/console/wb/send-file' });
  await compare({ url: '/console/wb/send-file', headers: ['If-None-Match', headers.etag] });
  await compare({ url: '/console/wb/send-file-root', headers: ['If-Modified-Since', headers['last-modified']] });
});

test('next() on POST falls through to the 404 page', () =>
  compare({ method: 'POST', url: '/console/wb/next-empty-post' }));

test('unregistered method for a known service', () => compare({ method: 'DELETE', url: '/console/wb/json' }));
