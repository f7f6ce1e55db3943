'use strict';
// The widget route: routing by `widget-id`, and every error status of CONTRACT.md §2
// that the gateway decides before a widget runs.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startWbe, writeWidgets } = require('./lib/wbe');

const WIDGETS = {
  alpha: {
    'backend.js': `module.exports = (r) => {
      r.register('status', 'GET', (req, res) => res.send('alpha OK'));
      r.register('whoami', (req, res) => res.json({ widget: 'alpha', url: req.url, path: req.path, baseUrl: req.baseUrl, service: req.params.service }));
      r.register('data', 'post', (req, res) => res.status(201).send('created'));
    };`,
  },
  beta: {
    'backend.js': `module.exports = (r) => { r.register('only-beta', 'GET', (req, res) => res.send('beta')); };`,
  },
  'no-backend': { 'widget.js': '// front end only' },
};

/** Raw HTTP/1.1 exchange, for requests fetch() refuses to send. */
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('widget routing', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: writeWidgets(WIDGETS), config: '[server]\nmax_body_size = "1KB"\n' });
  });
  after(() => wbe.stop());

  it('routes by widget-id to that widget only', async () => {
    const ok = await wbe.call('status', { widget: 'alpha' });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'alpha OK');
    const foreign = await wbe.call('only-beta', { widget: 'alpha' });
    assert.equal(foreign.status, 404);
    assert.match((await foreign.json()).message, /no service ONLY-BETA for method GET for widget alpha/);
    assert.equal(await (await wbe.call('only-beta', { widget: 'beta' })).text(), 'beta');
  });

  it('matches names case-insensitively and register(name, fn) as GET', async () => {
    const response = await wbe.call('WhoAmI', { widget: 'alpha' });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).service, 'WhoAmI');
    assert.equal((await wbe.call('data', { widget: 'alpha', method: 'POST' })).status, 201);
    assert.equal((await wbe.call('data', { widget: 'alpha', method: 'GET' })).status, 404);
  });

  it('gives the handler the url the stage router gives it', async () => {
    const body = await (await wbe.fetch('/console/wb/whoami/extra/path?x=1', { headers: { 'widget-id': 'alpha' } })).json();
    assert.deepEqual(body, { widget: 'alpha', url: '/extra/path?x=1', path: '/extra/path', baseUrl: '/console/wb/whoami', service: 'whoami' });
  });

  it('answers 400 for a missing or invalid widget-id', async () => {
    const missing = await wbe.call('status');
    assert.equal(missing.status, 400);
    assert.match((await missing.json()).message, /widget-id header is missing/);
    for (const bad of ['../alpha', 'a/b', 'a\\b', '..', '.']) {
      const response = await wbe.call('status', { widget: bad });
      assert.equal(response.status, 400, bad);
      assert.match((await response.json()).message, /not a widget folder name/, bad);
    }
    const empty = await wbe.call('status', { widget: '' });
    assert.equal(empty.status, 400);
  });

  it('answers 404 for unknown widgets, widgets without backend, unknown endpoints and methods', async () => {
    const cases = [
      [await wbe.call('status', { widget: 'nope' }), /Widget nope not found/],
      [await wbe.call('status', { widget: 'no-backend' }), /Widget no-backend has no backend/],
      [await wbe.call('missing', { widget: 'alpha' }), /no service MISSING for method GET for widget alpha registered \(it has: POST data, GET status, GET whoami\)/],
      [await wbe.call('status', { widget: 'alpha', method: 'PUT' }), /no service STATUS for method PUT/],
      [await wbe.fetch('/console/other', { headers: { 'widget-id': 'alpha' } }), /Cannot GET \/console\/other/],
    ];
    for (const [response, message] of cases) {
      assert.equal(response.status, 404);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.match((await response.json()).message, message);
    }
  });

  it('answers 404 JSON for a method no widget can register, and keeps serving', async () => {
    const response = await wbe.call('status', { widget: 'alpha', method: 'PROPFIND' });
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /valid methods: GET,POST,PUT,DELETE,PATCH/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('rejects malformed requests and keeps serving', async () => {
    const garbage = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id alpha\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400/);
    const badHeader = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: al\x01pha\r\nConnection: close\r\n\r\n');
    assert.match(badHeader, /^HTTP\/1\.1 400/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('answers 413 for a body over max_body_size, declared or streamed', async () => {
    const declared = await wbe.call('data', { widget: 'alpha', method: 'POST', body: 'x'.repeat(2000) });
    assert.equal(declared.status, 413);
    assert.match((await declared.json()).message, /larger than the limit of 1.0 kB \(server.max_body_size\)/);
    const streamed = await rawRequest(wbe.port, 'POST /console/wb/data HTTP/1.1\r\nHost: x\r\nwidget-id: alpha\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' + `800\r\n${'y'.repeat(0x800)}\r\n0\r\n\r\n`);
    assert.match(streamed, /^HTTP\/1\.1 (413|201)/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('sends a request id with every response and logs each request once', async () => {
    const response = await wbe.call('status', { widget: 'alpha' });
    const id = response.headers.get('x-request-id');
    assert.ok(id);
    const line = await wbe.waitForLog((l) => l.msg === 'request' && l.request_id === id);
    assert.equal(line.widget, 'alpha');
    assert.equal(line.endpoint, 'status');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.equal(wbe.logs.filter((l) => l.request_id === id).length, 1);
  });
});
