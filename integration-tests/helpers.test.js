'use strict';
// helper.Manager and helper.Request (CONTRACT.md §1), run by the gateway against the fake
// manager: URLs, query strings, the cookie → Authentication-Token rule, paging, manager
// errors, transport errors, timeouts, TLS with manager.ca_cert and a per-call certificate.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startWbe, fixtureWidgets, httpRequest, closedPort } = require('./lib/wbe');
const { startFakeManager } = require('./lib/fake-manager');

/** Calls a manager-calls endpoint through wbe; resolves the widget's JSON answer. */
async function callWidget(wbe, pathAndQuery, { method = 'GET', headers = {}, body } = {}) {
  const response = await httpRequest(`${wbe.base}/console/wb/${pathAndQuery}`, {
    method,
    headers: { 'widget-id': 'manager-calls', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = response.body.toString('utf8');
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

describe('helper.Manager and helper.Request', () => {
  let manager;
  let tlsManager;
  let selfSigned;
  let expired;
  let wbe;
  before(async () => {
    manager = await startFakeManager({ blueprints: 2500 });
    tlsManager = await startFakeManager({ tls: true, blueprints: 10 });
    selfSigned = await startFakeManager({ tls: 'self-signed', blueprints: 10 });
    expired = await startFakeManager({ tls: 'expired-self-signed', blueprints: 10 });
    wbe = await startWbe({ widgets: fixtureWidgets(['manager-calls']), args: ['--manager-url', manager.url, '--auth', 'none'] });
  });
  after(async () => {
    await wbe.stop();
    await manager.stop();
    await tlsManager.stop();
    await selfSigned.stop();
    await expired.stop();
  });

  it('doGet reaches <manager>/api/v3.1<url> with params as a query string (arrays as repeated keys)', async () => {
    const result = await callWidget(wbe, 'blueprints');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.value.items.map((i) => i.id), ['bp-5', 'bp-6', 'bp-7']);
    assert.deepEqual(result.value.metadata.pagination, { total: 2500, size: 3, offset: 5 });
    const seen = manager.requestsTo('/blueprints').at(-1);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.query.get('_size'), '3');
    assert.equal(seen.query.get('_offset'), '5');
    assert.deepEqual(seen.query.getAll('id'), ['bp-1', 'bp-2']);
  });

  it('turns the XSRF-TOKEN cookie into Authentication-Token and drops the caller’s host', async () => {
    await callWidget(wbe, 'blueprints', { headers: { cookie: 'theme=dark; XSRF-TOKEN=good-token', host: 'console.example.com' } });
    const seen = manager.requestsTo('/blueprints').at(-1);
    assert.equal(seen.headers['authentication-token'], 'good-token');
    assert.equal(seen.headers.host, `127.0.0.1:${manager.port}`);
  });

  it('doPost sends a JSON body and resolves the parsed JSON answer, keys in their order', async () => {
    const payload = { unicode: 'żółć', deployment_id: 'dep-1', inputs: { size: 3, tags: ['a', 'b'], count: 1 } };
    const result = await callWidget(wbe, 'echo', { method: 'POST', body: payload, headers: { cookie: 'XSRF-TOKEN=good-token' } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.value.method, 'POST');
    // Both ways through the gateway, object keys keep their order, as JSON.parse keeps it
    // in the stage (a widget listing a blueprint's inputs shows them as declared).
    assert.equal(JSON.stringify(result.value.body), JSON.stringify(payload));
    assert.deepEqual(result.value.query, { tag: ['x', 'y'] });
    const seen = manager.requestsTo('/echo').at(-1);
    assert.match(seen.headers['content-type'], /^application\/json/);
    assert.equal(seen.headers['authentication-token'], 'good-token');
  });

  for (const method of ['PUT', 'PATCH', 'DELETE', 'GET']) {
    it(`call('${method}', url, {params, body}) uses that method`, async () => {
      const body = method === 'GET' || method === 'DELETE' ? undefined : { change: method };
      const result = await callWidget(wbe, 'call', { method: 'POST', body: { method, url: '/echo', options: { params: { m: method }, body } } });
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.value.method, method);
      assert.deepEqual(result.value.query, { m: method });
      if (body) assert.deepEqual(result.value.body, body);
      // Without a body, no Content-Length on a GET or DELETE, as Node's client sends them.
      const length = manager.requestsTo('/echo').at(-1).headers['content-length'];
      assert.equal(length, body ? String(JSON.stringify(body).length) : undefined);
    });
  }

  it('a POST without a body announces an empty one (Content-Length: 0), as Node’s client does', async () => {
    const result = await callWidget(wbe, 'call', { method: 'POST', body: { method: 'POST', url: '/echo' } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(manager.requestsTo('/echo').at(-1).headers['content-length'], '0');
  });

  it('doGetFull pages with _size=1000 and _offset until the total is collected', async () => {
    const before = manager.requestsTo('/blueprints').length;
    const result = await callWidget(wbe, 'full', { headers: { cookie: 'XSRF-TOKEN=good-token' } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.value.keys, ['items']);
    assert.equal(result.value.count, 2500);
    assert.equal(result.value.unique, 2500);
    assert.equal(result.value.first.id, 'bp-0');
    assert.equal(result.value.last.id, 'bp-2499');
    const pages = manager.requestsTo('/blueprints').slice(before);
    assert.equal(pages.length, 3);
    assert.deepEqual(pages.map((p) => p.query.get('_size')), ['1000', '1000', '1000']);
    assert.deepEqual(pages.map((p) => Number(p.query.get('_offset') || 0)), [0, 1000, 2000]);
    for (const page of pages) assert.equal(page.headers['authentication-token'], 'good-token');
  });

  it('a manager error rejects with the manager’s body (error_code visible)', async () => {
    const result = await callWidget(wbe, 'missing?id=nope');
    assert.equal(result.ok, false);
    assert.equal(result.error.isError, false, 'the rejection must be the manager body, not an Error');
    assert.deepEqual(result.error.value, {
      message: 'Requested `Deployment` with ID `nope` was not found', error_code: 'not_found_error', server_traceback: null,
    });
  });

  it('an unhandled manager error reaches the stage error handler with the manager’s message', async () => {
    const response = await httpRequest(`${wbe.base}/console/wb/missing-next?id=gone`, { headers: { 'widget-id': 'manager-calls' } });
    assert.equal(response.status, 404);
    assert.deepEqual(JSON.parse(response.body), { message: 'Requested `Deployment` with ID `gone` was not found' });
  });

  it('a per-call timeout rejects with an Error; without it the slow call succeeds', async () => {
    const timedOut = await callWidget(wbe, 'slow?ms=4000&timeout=300');
    assert.equal(timedOut.ok, false, JSON.stringify(timedOut));
    assert.equal(timedOut.error.isError, true);
    assert.ok(timedOut.error.message.length > 0);
    const slow = await callWidget(wbe, 'slow?ms=300');
    assert.deepEqual(slow, { ok: true, value: { slow: true } });
  });

  it('Request.doGet reaches any URL and parses JSON', async () => {
    const url = `${manager.url}/api/v3.1/echo?x=1`;
    const result = await callWidget(wbe, `request-get?url=${encodeURIComponent(url)}&q=hello`);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.value.method, 'GET');
    assert.deepEqual(result.value.query, { x: '1', q: 'hello' });
  });

  it('Request.call with params, body and headers', async () => {
    const result = await callWidget(wbe, 'request', {
      method: 'POST',
      body: { method: 'POST', url: `${manager.url}/api/v3.1/echo`, options: { params: { a: ['1', '2'] }, body: { hello: 'world' }, headers: { 'x-extra': 'yes' } } },
    });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.value.method, 'POST');
    assert.deepEqual(result.value.query, { a: ['1', '2'] });
    assert.deepEqual(result.value.body, { hello: 'world' });
    assert.equal(result.value.headers['x-extra'], 'yes');
  });

  it('Request with parseResponse:false resolves a Buffer of the exact bytes', async () => {
    const result = await callWidget(wbe, 'request', {
      method: 'POST', body: { url: `${manager.url}/api/v3.1/binary`, options: { parseResponse: false } },
    });
    assert.deepEqual(result, { ok: true, value: { buffer: true, length: 5, hex: '000102fffe' } });
  });

  it('Request rejects an error status with an Error holding the status and the body', async () => {
    const result = await callWidget(wbe, 'request', { method: 'POST', body: { url: `${manager.url}/api/v3.1/broken` } });
    assert.equal(result.ok, false);
    assert.equal(result.error.isError, true);
    assert.match(result.error.message, /500/);
    assert.match(result.error.message, /Internal error in the manager/);
  });

  it('Request refuses denied hosts (cloud metadata)', async () => {
    const result = await callWidget(wbe, 'request', { method: 'POST', body: { url: 'http://169.254.169.254/latest/meta-data/' } });
    assert.equal(result.ok, false);
    assert.equal(result.error.isError, true);
  });

  it('Request to a self-signed HTTPS server fails without `certificate` and works with it', async () => {
    const url = `${tlsManager.url}/api/v3.1/echo?tls=1`;
    const without = await callWidget(wbe, 'request', { method: 'POST', body: { url } });
    assert.equal(without.ok, false, JSON.stringify(without));
    assert.equal(without.error.isError, true);
    const withCert = await callWidget(wbe, 'request', { method: 'POST', body: { url, options: { certificate: tlsManager.certPem } } });
    assert.equal(withCert.ok, true, JSON.stringify(withCert));
    assert.deepEqual(withCert.value.query, { tls: '1' });
  });

  it('a browser’s Accept-Encoding passed on is not passed to the server: the helper decodes what it asked for', async () => {
    const browser = { 'accept-encoding': 'gzip, deflate, br, zstd' };
    const before = manager.requestsTo('/compressed').length;
    const viaManager = await callWidget(wbe, 'call', { method: 'POST', body: { method: 'GET', url: '/compressed', options: { headers: browser } } });
    assert.deepEqual(viaManager, { ok: true, value: { compressed: true } });
    const viaRequest = await callWidget(wbe, 'request', { method: 'POST', body: { url: `${manager.url}/api/v3.1/compressed`, options: { headers: browser } } });
    assert.deepEqual(viaRequest, { ok: true, value: { compressed: true } });
    for (const seen of manager.requestsTo('/compressed').slice(before)) {
      assert.doesNotMatch(seen.headers['accept-encoding'] || '', /br|zstd/);
    }
  });

  it('Request takes an empty `certificate` as none, as the stage does', async () => {
    const result = await callWidget(wbe, 'request', { method: 'POST', body: { url: `${manager.url}/api/v3.1/echo?empty=1`, options: { certificate: '' } } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.value.query, { empty: '1' });
  });

  it('Request accepts a plain self-signed certificate (openssl req -x509) given as `certificate`, as Node does', async () => {
    const url = `${selfSigned.url}/api/v3.1/echo?self=1`;
    const without = await callWidget(wbe, 'request', { method: 'POST', body: { url } });
    assert.equal(without.ok, false, JSON.stringify(without));
    const withCert = await callWidget(wbe, 'request', { method: 'POST', body: { url, options: { certificate: selfSigned.certPem } } });
    assert.equal(withCert.ok, true, JSON.stringify(withCert));
    assert.deepEqual(withCert.value.query, { self: '1' });
  });

  it('Request refuses an expired self-signed certificate even when given as `certificate`, as Node does', async () => {
    const url = `${expired.url}/api/v3.1/echo`;
    const result = await callWidget(wbe, 'request', { method: 'POST', body: { url, options: { certificate: expired.certPem } } });
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.error.message, /expired/i);
    assert.equal(expired.requests.length, 0, 'nothing reached the server');
  });
});

describe('helper.Manager with a default per-method timeout and a manager that goes away', () => {
  let manager;
  let wbe;
  before(async () => {
    manager = await startFakeManager();
    wbe = await startWbe({
      widgets: fixtureWidgets(['manager-calls']),
      config: '[manager.timeouts]\nget = "400ms"\n',
      args: ['--manager-url', manager.url],
    });
  });
  after(async () => {
    await wbe.stop();
    await manager.stop();
  });

  it('manager.timeouts.get applies to GETs, and a call’s own timeout wins', async () => {
    const defaulted = await callWidget(wbe, 'slow?ms=3000');
    assert.equal(defaulted.ok, false, JSON.stringify(defaulted));
    assert.equal(defaulted.error.isError, true);
    const own = await callWidget(wbe, 'slow?ms=1000&timeout=10000');
    assert.deepEqual(own, { ok: true, value: { slow: true } });
  });

  it('a transport error (manager down) rejects with an Error', async () => {
    await manager.stop();
    const result = await callWidget(wbe, 'blueprints');
    assert.equal(result.ok, false);
    assert.equal(result.error.isError, true);
    assert.ok(result.error.message.length > 0);
  });
});

describe('helper.Manager when no manager listens at all', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(['manager-calls']), args: ['--manager-url', `http://127.0.0.1:${await closedPort()}`] });
  });
  after(() => wbe.stop());

  it('rejects doGet and doGetFull with an Error, and the widget keeps serving', async () => {
    for (const name of ['blueprints', 'full']) {
      const result = await callWidget(wbe, name);
      assert.equal(result.ok, false, JSON.stringify(result));
      assert.equal(result.error.isError, true);
      assert.match(result.error.message, /\S/);
    }
    const status = await wbe.widgetStatus('manager-calls');
    assert.equal(status.restarts, 0);
  });
});

describe('helper.Request with loopback denied', () => {
  let target;
  let wbe;
  before(async () => {
    target = await startFakeManager({ blueprints: 1 });
    wbe = await startWbe({
      widgets: fixtureWidgets(['manager-calls']),
      config: '[request]\nallowed_hosts = ["*"]\ndenied_hosts = ["127.0.0.0/8", "::1"]\n',
    });
  });
  after(async () => {
    await wbe.stop();
    await target.stop();
  });

  it('refuses a host name that resolves into a denied range (the address connected to is the one checked)', async () => {
    const port = new URL(target.url).port;
    for (const url of [`http://localhost:${port}/api/v3.1/echo`, `http://127.0.0.1:${port}/api/v3.1/echo`]) {
      const result = await callWidget(wbe, 'request', { method: 'POST', body: { url } });
      assert.equal(result.ok, false, `${url}: ${JSON.stringify(result)}`);
      assert.match(result.error.message, /resolves only to addresses the gateway's \[request\] configuration denies|host not allowed/, url);
    }
    assert.equal(target.requests.length, 0, 'nothing reached the loopback server');
  });
});

describe('helper.Manager over HTTPS', () => {
  let manager;
  let trusting;
  let untrusting;
  before(async () => {
    manager = await startFakeManager({ tls: true, blueprints: 1500 });
    [trusting, untrusting] = await Promise.all([
      startWbe({
        widgets: fixtureWidgets(['manager-calls']),
        config: `[manager]\nca_cert = ${JSON.stringify(manager.certFile)}\n`,
        args: ['--manager-url', manager.url],
      }),
      startWbe({ widgets: fixtureWidgets(['manager-calls']), args: ['--manager-url', manager.url] }),
    ]);
  });
  after(async () => {
    await Promise.all([trusting && trusting.stop(), untrusting && untrusting.stop()]);
    await manager.stop();
  });

  it('trusts the manager’s self-signed certificate through manager.ca_cert', async () => {
    const result = await callWidget(trusting, 'blueprints', { headers: { cookie: 'XSRF-TOKEN=good-token' } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.value.metadata.pagination.total, 1500);
    const full = await callWidget(trusting, 'full');
    assert.equal(full.value.count, 1500);
    assert.equal(manager.requestsTo('/blueprints').at(-1).headers['authentication-token'], undefined);
  });

  it('refuses it without manager.ca_cert', async () => {
    const before = manager.requestsTo('/blueprints').length;
    const result = await callWidget(untrusting, 'blueprints');
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.equal(result.error.isError, true);
    assert.equal(manager.requestsTo('/blueprints').length, before);
  });
});

describe('helper.Request follows redirects only where the [request] policy allows', () => {
  let redirector;
  let forbidden;
  let wbe;
  const seenByForbidden = [];
  const seenByRedirector = [];
  /** An HTTP server on `host`; `handle(req, res)` answers, every request is recorded in `seen`. */
  function listen(host, seen, handle) {
    return new Promise((resolve) => {
      const server = http.createServer((req, res) => {
        seen.push({ url: req.url, method: req.method, headers: req.headers });
        handle(req, res);
      });
      server.listen(0, host, () => resolve({ server, url: `http://${host}:${server.address().port}` }));
    });
  }
  before(async () => {
    forbidden = await listen('127.0.0.2', seenByForbidden, (req, res) => res.end('{"secret":true}'));
    redirector = await listen('127.0.0.1', seenByRedirector, (req, res) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
      } else if (url.pathname === '/to') {
        res.writeHead(Number(url.searchParams.get('status') || 302), { location: url.searchParams.get('u') });
        res.end();
      } else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ arrived: url.pathname, method: req.method, cookie: req.headers.cookie || null }));
      }
    });
    wbe = await startWbe({
      widgets: fixtureWidgets(['manager-calls']),
      config: '[request]\nallowed_hosts = ["*"]\ndenied_hosts = ["127.0.0.2/32"]\n',
    });
  });
  after(async () => {
    await wbe.stop();
    redirector.server.close();
    forbidden.server.close();
  });

  const via = (u, status = 302) => `${redirector.url}/to?status=${status}&u=${encodeURIComponent(u)}`;

  it('a redirect into a denied range is refused, and nothing reaches it', async () => {
    for (const target of [`${forbidden.url}/latest/meta-data/`, via(`${forbidden.url}/x`, 307)]) {
      const result = await callWidget(wbe, 'request', { method: 'POST', body: { url: via(target) } });
      assert.equal(result.ok, false, JSON.stringify(result));
      assert.match(result.error.message, /redirected: helper.Request to `127.0.0.2` refused: host not allowed/);
    }
    assert.equal(seenByForbidden.length, 0, 'the denied server got no request');
  });

  it('an allowed redirect is followed: 303 turns a POST into a GET, a relative Location works', async () => {
    const result = await callWidget(wbe, 'request', {
      method: 'POST', body: { method: 'POST', url: via('/landed', 303), options: { body: { a: 1 } } },
    });
    assert.deepEqual(result, { ok: true, value: { arrived: '/landed', method: 'GET', cookie: null } });
  });

  it('the caller’s cookie goes on to the same origin only', async () => {
    const sameOrigin = await callWidget(wbe, 'request', {
      method: 'POST', body: { url: via('/landed'), options: { headers: { cookie: 'session=1' } } },
    });
    assert.equal(sameOrigin.value.cookie, 'session=1');
    const port = new URL(redirector.url).port;
    const otherOrigin = await callWidget(wbe, 'request', {
      method: 'POST', body: { url: via(`http://localhost:${port}/landed`), options: { headers: { cookie: 'session=1' } } },
    });
    assert.equal(otherOrigin.ok, true, JSON.stringify(otherOrigin));
    assert.equal(otherOrigin.value.cookie, null);
  });

  it('a redirect loop ends with an Error after 10 hops', async () => {
    seenByRedirector.length = 0;
    const result = await callWidget(wbe, 'request', { method: 'POST', body: { url: `${redirector.url}/loop` } });
    assert.equal(result.ok, false);
    assert.match(result.error.message, /more than 10 redirects/);
    assert.equal(seenByRedirector.length, 11);
  });
});
