'use strict';
// The widget route (CONTRACT.md §2): routing by `widget-id`, the url a handler sees, and
// every error status the gateway decides before a widget runs. Errors are JSON
// `{"message": ...}` that tell the caller what is wrong.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startWbe, fixtureWidgets, rawRequest } = require('./lib/wbe');

/** Asserts a gateway error: status, JSON content type, and a message matching `message`. */
async function assertJsonError(response, status, message) {
  const text = await response.text();
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${text}`);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ['message']);
  assert.equal(typeof body.message, 'string');
  if (message) assert.match(body.message, message);
  return body;
}

describe('widget routing', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(['alpha', 'beta', 'no-backend', 'json-body']), config: '[server]\nmax_body_size = "1KB"\n' });
  });
  after(() => wbe.stop());

  it('routes by widget-id to that widget only', async () => {
    const ok = await wbe.call('status', { widget: 'alpha' });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'alpha OK');
    assert.equal(await (await wbe.call('status', { widget: 'beta' })).text(), 'beta OK');
    const foreign = await wbe.call('only-beta', { widget: 'alpha' });
    await assertJsonError(foreign, 404, /no service ONLY-BETA for method GET for widget alpha/);
    assert.equal(await (await wbe.call('only-beta', { widget: 'beta' })).text(), 'beta');
  });

  it('matches names case-insensitively and register(name, fn) as GET', async () => {
    const response = await wbe.call('WhoAmI', { widget: 'alpha' });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).service, 'WhoAmI');
    assert.equal((await wbe.call('STATUS', { widget: 'alpha' })).status, 200);
    // register('data', 'post', ...): the method is upper-cased too.
    assert.equal((await wbe.call('data', { widget: 'alpha', method: 'POST' })).status, 201);
    await assertJsonError(await wbe.call('data', { widget: 'alpha', method: 'GET' }), 404, /no service DATA for method GET/);
  });

  it('gives the handler the url the stage router gives it', async () => {
    const body = await (await wbe.fetch('/console/wb/whoami/extra/path?x=1', { headers: { 'widget-id': 'alpha' } })).json();
    assert.deepEqual(body, {
      widget: 'alpha', method: 'GET', url: '/extra/path?x=1', path: '/extra/path', baseUrl: '/console/wb/whoami',
      originalUrl: '/console/wb/whoami/extra/path?x=1', service: 'whoami',
    });
    const plain = await (await wbe.fetch('/console/wb/whoami', { headers: { 'widget-id': 'alpha' } })).json();
    assert.equal(plain.url, '/');
    assert.equal(plain.path, '/');
  });

  it('routes GET /console/wb/status/extra?x=1 to the service `status`', async () => {
    const response = await wbe.fetch('/console/wb/status/extra?x=1', { headers: { 'widget-id': 'alpha' } });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'alpha OK');
  });

  it('percent-decodes the service name as req.params.service', async () => {
    const body = await (await wbe.fetch('/console/wb/who%61mi', { headers: { 'widget-id': 'alpha' } })).json();
    assert.equal(body.service, 'whoami');
  });

  it('answers 400 for a missing widget-id', async () => {
    await assertJsonError(await wbe.call('status'), 400, /widget-id header is missing/);
  });

  it('answers 400 for an empty widget-id', async () => {
    await assertJsonError(await wbe.call('status', { widget: '' }), 400, /widget-id/);
  });

  for (const bad of ['../alpha', 'a/b', '/alpha', 'a\\b', '..', '.', 'alpha/..', '..\\alpha']) {
    it(`answers 400 for the widget-id ${JSON.stringify(bad)}`, async () => {
      await assertJsonError(await wbe.call('status', { widget: bad }), 400, /not a widget folder name/);
    });
  }

  it('answers 400 for a widget-id holding %00 (an encoded NUL)', async () => {
    await assertJsonError(await wbe.call('status', { widget: 'alpha%00' }), 400, /not a widget folder name/);
  });

  it('answers 400 for a widget-id holding a raw NUL byte, and keeps serving', async () => {
    const reply = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: al\x00pha\r\nConnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('answers 404 for unknown widgets, widgets without backend, unknown endpoints and methods', async () => {
    await assertJsonError(await wbe.call('status', { widget: 'nope' }), 404, /Widget nope not found/);
    await assertJsonError(await wbe.call('status', { widget: 'no-backend' }), 404, /Widget no-backend has no backend/);
    await assertJsonError(await wbe.call('missing', { widget: 'alpha' }), 404,
      /no service MISSING for method GET for widget alpha registered \(it has: POST data, GET status, GET whoami\)/);
    await assertJsonError(await wbe.call('status', { widget: 'alpha', method: 'PUT' }), 404, /no service STATUS for method PUT/);
    await assertJsonError(await wbe.call('status', { widget: 'alpha', method: 'DELETE' }), 404, /no service STATUS for method DELETE/);
    await assertJsonError(await wbe.fetch('/console/wb/', { headers: { 'widget-id': 'alpha' } }), 404, /Cannot GET/);
    await assertJsonError(await wbe.fetch('/console/other', { headers: { 'widget-id': 'alpha' } }), 404, /Cannot GET \/console\/other/);
  });

  it('matches the mount path in any case and decodes the service as Express does', async () => {
    // Express mounts paths case-insensitively and decodes route parameters with
    // decodeURIComponent, answering 400 where it throws.
    const mixedCase = await wbe.fetch('/Console/WB/st%61tus', { headers: { 'widget-id': 'alpha' } });
    assert.equal(mixedCase.status, 200);
    assert.equal(await mixedCase.text(), 'alpha OK');
    // req.baseUrl is the path as the client wrote it, as Express's is.
    const seen = await (await wbe.fetch('/Console/WB/wh%6Fami/x', { headers: { 'widget-id': 'alpha' } })).json();
    assert.deepEqual([seen.baseUrl, seen.url, seen.service], ['/Console/WB/wh%6Fami', '/x', 'whoami']);
    for (const service of ['st%ZZatus', 'status%', '%FF']) {
      const body = await assertJsonError(await wbe.fetch(`/console/wb/${service}`, { headers: { 'widget-id': 'alpha' } }), 400);
      assert.equal(body.message, `Failed to decode param '${service}'`);
    }
  });

  it('reads two widget-id lines joined, as the stage (Node) does, not as the first one', async () => {
    const reply = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: alpha\r\nwidget-id: beta\r\nConnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 404 /, reply);
    assert.match(reply, /Widget alpha, beta not found/);
  });

  it('takes a doubled slash after the mount or the service as Express does', async () => {
    for (const [path, url] of [['/console/wb//whoami', '/'], ['/console/wb/whoami//x?q=1', '/x?q=1'], ['/Console/WB//whoami/', '/']]) {
      const seen = await (await wbe.fetch(path, { headers: { 'widget-id': 'alpha' } })).json();
      assert.deepEqual([seen.service, seen.url], ['whoami', url], path);
      assert.equal(seen.baseUrl, `${path.slice(0, 11)}/whoami`, path);
    }
    assert.equal((await wbe.fetch('/console/wb///whoami', { headers: { 'widget-id': 'alpha' } })).status, 404);
  });

  it('answers 404 JSON for a method no widget can register (PROPFIND), and keeps serving', async () => {
    await assertJsonError(await wbe.call('status', { widget: 'alpha', method: 'PROPFIND' }), 404, /valid methods: GET,POST,PUT,DELETE,PATCH/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('treats request methods case-sensitively, as the stage (Node) does: `get` is not GET', async () => {
    const reply = await rawRequest(wbe.port, 'get /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: alpha\r\nConnection: close\r\n\r\n');
    assert.doesNotMatch(reply, /alpha OK/, `a lower-case method was served as GET:\n${reply}`);
    assert.match(reply, /^HTTP\/1\.1 (400|404|405|501) /);
  });

  it('rejects malformed requests with 400 and keeps serving', async () => {
    const noColon = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id alpha\r\n\r\n');
    assert.match(noColon, /^HTTP\/1\.1 400/);
    const controlChar = await rawRequest(wbe.port, 'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: al\x01pha\r\nConnection: close\r\n\r\n');
    assert.match(controlChar, /^HTTP\/1\.1 400/);
    const garbage = await rawRequest(wbe.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400/);
    const badChunked = await rawRequest(wbe.port, 'POST /console/wb/data HTTP/1.1\r\nHost: x\r\nwidget-id: alpha\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnot a chunk\r\n');
    // The widget may answer (201) before reading the body; if not, actix closes the
    // connection without an answer on a malformed chunk (Node answers 400). Either way the
    // widget and the server are unharmed.
    assert.ok(badChunked === "" || /^HTTP\/1\.1 (400|201) /.test(badChunked), badChunked);
    const ok = await wbe.call('status', { widget: 'alpha' });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'alpha OK');
  });

  it('logs a request whose body breaks off midway, though actix leaves it unanswered', async () => {
    // The only request to json-body in this suite.
    await rawRequest(wbe.port, 'POST /console/wb/echo HTTP/1.1\r\nHost: x\r\nwidget-id: json-body\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"a":\r\nzz\r\nnot a chunk\r\n');
    const line = await wbe.waitForLog((l) => l.msg === 'request' && l.widget === 'json-body');
    assert.deepEqual([line.endpoint, line.method, line.status], ['echo', 'POST', 499]);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('answers 413 JSON for a declared body over max_body_size', async () => {
    const declared = await wbe.call('data', { widget: 'alpha', method: 'POST', body: 'x'.repeat(2000) });
    await assertJsonError(declared, 413, /larger than the limit of 1.0 kB \(server.max_body_size\)/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('serves keep-alive connections across requests of different widgets', async () => {
    const reply = await rawRequest(wbe.port,
      'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: alpha\r\n\r\n' +
      'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: beta\r\n\r\n' +
      'GET /console/wb/status HTTP/1.1\r\nHost: x\r\nwidget-id: nope\r\nConnection: close\r\n\r\n');
    const statuses = [...reply.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 200, 404]);
    assert.match(reply, /alpha OK[\s\S]*beta OK[\s\S]*Widget nope not found/);
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
