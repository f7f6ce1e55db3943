'use strict';
// The widget author's API through the gateway (CONTRACT.md §1): Express-4-like `req` and
// `res`, the stage's error handler, body parsing with body/json, the require guard,
// console output, and TypeScript backends. Where practical the same widget file also
// runs in a real Express 4 app (lib/stage.js) and the two answers are compared.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startWbe, fixtureWidgets, httpRequest, rawRequest, WIDGETS } = require('./lib/wbe');
const etag = require('etag');
const { startStage } = require('./lib/stage');

const FIXTURES = ['req-info', 'responses', 'errors', 'json-body', 'sandbox-require', 'console-log', 'ts-widget'];
const HOST = 'console.example.com:8443';

describe('req and res through the gateway', () => {
  let wbe;
  /** GET (or other) a widget endpoint with node:http: {status, headers, rawHeaders, body, text, json()}. */
  async function get(widget, pathAndQuery, { method = 'GET', headers = {}, body } = {}) {
    const response = await httpRequest(`${wbe.base}/console/wb/${pathAndQuery}`, {
      method, body, headers: { host: HOST, 'widget-id': widget, ...headers },
    });
    response.text = response.body.toString('utf8');
    response.json = () => JSON.parse(response.text);
    return response;
  }

  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(FIXTURES) });
  });
  after(() => wbe.stop());

  // Each endpoint's whole answer, as Express 4 and the stage's error handler give it. The
  // differential suite below compares wbe with a real Express on these endpoints; this
  // table pins what the answer is, so that both sides being wrong the same way fails too.
  const HTML = 'text/html; charset=utf-8';
  const JSON_UTF8 = 'application/json; charset=utf-8';
  const UNAVAILABLE = { message: 'The server is temporarily unavailable' };
  const ANSWERS = [
    ['responses', 'send-string', 200, HTML, '<p>hello</p>'],
    ['responses', 'send-object', 200, JSON_UTF8, { a: 1, list: [1, 2, 3] }],
    ['responses', 'send-array', 200, JSON_UTF8, [1, 'two']],
    ['responses', 'send-number-status', 201, HTML, 'made'],
    ['responses', 'json', 200, JSON_UTF8, { nested: { ok: true }, n: null }],
    ['responses', 'json-status', 422, JSON_UTF8, { invalid: 'field' }],
    ['responses', 'send-status', 403, 'text/plain; charset=utf-8', 'Forbidden'],
    ['responses', 'set-object', 200, 'text/plain; charset=utf-8', 'plain'],
    ['responses', 'type', 200, JSON_UTF8, { typed: true }],
    ['responses', 'type-ext', 200, 'text/plain; charset=utf-8', 'text by extension'],
    ['responses', 'status-chain', 418, JSON_UTF8, { teapot: true }],
    ['responses', 'utf8', 200, HTML, 'żółć 😀'],
    ['errors', 'next-error', 404, JSON_UTF8, { message: 'next was called with an error' }],
    ['errors', 'next-status', 403, JSON_UTF8, { message: 'You shall not pass' }],
    ['errors', 'next-string', 404, JSON_UTF8, { message: 'a plain string error' }],
    ['errors', 'next-500', 500, JSON_UTF8, UNAVAILABLE],
    ['errors', 'throw', 404, JSON_UTF8, { message: 'thrown synchronously' }],
    ['errors', 'throw-status', 409, JSON_UTF8, { message: 'conflict while thrown' }],
    ['errors', 'reject', 404, JSON_UTF8, { message: 'rejected asynchronously' }],
    ['errors', 'reject-500', 500, JSON_UTF8, UNAVAILABLE],
  ];
  describe('whole answers, headers and body', () => {
    for (const [widget, name, status, type, expected] of ANSWERS) {
      const body = typeof expected === 'string' ? expected : JSON.stringify(expected);
      it(`${widget}/${name}: ${status} ${type} ${body}`, async () => {
        const response = await get(widget, name);
        assert.equal(response.status, status, response.text);
        assert.equal(response.headers['content-type'], type);
        assert.equal(response.text, body);
        assert.equal(Number(response.headers['content-length']), Buffer.byteLength(body));
        assert.match(response.headers.etag, /^W\/"[0-9a-f]+-/);
      });
    }
  });

  describe('req', () => {
    it('has the Express 4 fields', async () => {
      const response = await get('req-info', 'info/sub/path?a[b]=1&c=1&c=2&e=x%20y', {
        headers: {
          'X-Custom-Header': 'custom',
          Cookie: 'plain=1; obj=j:{"x":1}; XSRF-TOKEN=abc',
          Referer: 'http://referrer.example/',
        },
      });
      assert.equal(response.status, 200, response.text);
      const seen = response.json();
      assert.equal(seen.method, 'GET');
      assert.equal(seen.url, '/sub/path?a[b]=1&c=1&c=2&e=x%20y');
      assert.equal(seen.originalUrl, '/console/wb/info/sub/path?a[b]=1&c=1&c=2&e=x%20y');
      assert.equal(seen.baseUrl, '/console/wb/info');
      assert.equal(seen.path, '/sub/path');
      assert.deepEqual(seen.query, { a: { b: '1' }, c: ['1', '2'], e: 'x y' });
      assert.equal(seen.headers['x-custom-header'], 'custom');
      assert.equal(seen.headers.host, HOST);
      assert.equal(seen.headers['widget-id'], 'req-info');
      for (const name of Object.keys(seen.headers)) assert.equal(name, name.toLowerCase());
      // actix-web loses the client's header order; the gateway sorts the lines by name so
      // that the same request always shows the same req.headers.
      const names = Object.keys(seen.headers);
      assert.deepEqual(names, [...names].sort());
      assert.equal(seen.getCustom, 'custom');
      assert.equal(seen.headerCustom, 'custom');
      assert.equal(seen.getReferrer, 'http://referrer.example/');
      assert.deepEqual(seen.params, { service: 'info' });
      assert.deepEqual(seen.cookies, { plain: '1', obj: { x: 1 }, 'XSRF-TOKEN': 'abc' });
      assert.equal(seen.ip, '127.0.0.1');
      assert.equal(seen.protocol, 'http');
      assert.equal(seen.secure, false);
      assert.equal(seen.hostname, 'console.example.com');
      assert.equal(seen.user, null);
      assert.equal(seen.hasBody, false, 'req.body must not exist unless the widget parses the stream');
      assert.equal(seen.readable, true);
    });

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      it(`carries the method ${method}`, async () => {
        const response = await get('req-info', 'info', { method, body: method === 'DELETE' ? undefined : '{}', headers: { 'content-type': 'application/json' } });
        assert.equal(response.status, 200, response.text);
        assert.equal(response.json().method, method);
      });
    }

    it('parses queries like Express 4 extended (nesting, arrays, brackets)', async () => {
      const response = await get('req-info', 'info?x[y][z]=deep&list[]=1&list[]=2&n=1&n=2&n=3&empty=&flag');
      assert.deepEqual(response.json().query, { x: { y: { z: 'deep' } }, list: ['1', '2'], n: ['1', '2', '3'], empty: '', flag: '' });
    });
  });

  describe('res', () => {
    it('send(Buffer) is application/octet-stream with the exact bytes', async () => {
      const response = await get('responses', 'send-buffer');
      assert.equal(response.headers['content-type'], 'application/octet-stream');
      assert.deepEqual([...response.body], [0, 1, 2, 3, 250]);
    });

    it('send(Buffer) arrives byte for byte on both sides of the whole-response limit (512 KiB)', async () => {
      for (const n of [0, 1, 512 * 1024 - 1, 512 * 1024, 512 * 1024 + 1, 1024 * 1024]) {
        const response = await get('responses', `send-size?n=${n}`);
        assert.equal(response.status, 200, `n=${n}`);
        assert.equal(Number(response.headers['content-length']), n, `n=${n}`);
        const expected = Buffer.alloc(n);
        for (let i = 0; i < n; i += 1) expected[i] = (i * 31) & 0xff;
        assert.ok(response.body.equals(expected), `n=${n}: body differs`);
      }
    });

    it('sendStatus(204) has no body and no content type', async () => {
      const response = await get('responses', 'send-status-204');
      assert.equal(response.status, 204);
      assert.equal(response.body.length, 0);
      assert.equal(response.headers['content-type'], undefined);
    });

    it('set(object) sets every header; get/getHeader read them back', async () => {
      const set = await get('responses', 'set-object');
      assert.equal(set.headers['x-one'], '1');
      assert.equal(set.headers['x-two'], 'two');
      const readBack = await get('responses', 'set-get');
      assert.deepEqual(readBack.json(), { got: 'echo-value', getHeader: 'alias' });
      assert.equal(readBack.headers['x-echo'], 'echo-value');
      assert.equal(readBack.headers['x-header-alias'], 'alias');
    });

    it('append adds header lines', async () => {
      const response = await get('responses', 'append');
      const lines = [];
      for (let i = 0; i < response.rawHeaders.length; i += 2) {
        if (response.rawHeaders[i].toLowerCase() === 'x-multi') lines.push(response.rawHeaders[i + 1]);
      }
      assert.deepEqual(lines.join(', ').split(/,\s*/), ['a', 'b', 'c']);
    });

    it('location sets Location', async () => {
      const response = await get('responses', 'location');
      assert.equal(response.status, 201);
      assert.equal(response.headers.location, '/somewhere?x=1');
    });

    it('redirect(url) is a 302 with Express’s body for the Accept header', async () => {
      const plain = await get('responses', 'redirect', { headers: { accept: '*/*' } });
      assert.equal(plain.status, 302);
      assert.equal(plain.headers.location, '/elsewhere');
      assert.equal(plain.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(plain.text, 'Found. Redirecting to /elsewhere');
      const html = await get('responses', 'redirect', { headers: { accept: 'text/html' } });
      assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(html.text, '<p>Found. Redirecting to /elsewhere</p>');
    });

    it('redirect(status, url) uses the status', async () => {
      const response = await get('responses', 'redirect-status');
      assert.equal(response.status, 301);
      assert.equal(response.headers.location, 'https://example.com/moved');
    });

    it('cookie/clearCookie give one Set-Cookie header each', async () => {
      const response = await get('responses', 'cookies');
      assert.deepEqual(response.headers['set-cookie'], [
        'plain=v1; Path=/',
        'opts=v2; Path=/console; HttpOnly; SameSite=Strict',
        'obj=j%3A%7B%22x%22%3A1%7D; Path=/',
        'gone=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
      ]);
    });

    it('write + end streams a body without Content-Length', async () => {
      const response = await get('responses', 'stream');
      assert.equal(response.status, 200);
      assert.equal(response.text, 'first,second,last');
      assert.equal(response.headers['content-length'], undefined);
      assert.equal(response.headers['transfer-encoding'], 'chunked');
    });

    it('writeHead sets status and headers', async () => {
      const response = await get('responses', 'write-head');
      assert.equal(response.status, 202);
      assert.equal(response.headers['x-written'], 'yes');
      assert.equal(response.headers['content-type'], 'text/plain');
      assert.equal(response.text, 'accepted');
    });

    it('setHeader and statusCode work as on Node’s response', async () => {
      const response = await get('responses', 'set-header');
      assert.equal(response.status, 203);
      assert.equal(response.headers['x-set'], 'set');
      assert.equal(response.text, 'set-header');
    });

    it('removeHeader removes a header set earlier', async () => {
      const response = await get('responses', 'remove-header');
      assert.equal(response.headers['x-remove-me'], undefined);
      assert.equal(response.headers['x-keep-me'], 'k');
    });

    it('headersSent turns true once the body started', async () => {
      assert.equal((await get('responses', 'headers-sent')).text, 'x{"before":false,"after":true}');
    });

    it('answers 304 to If-None-Match with the ETag it sent', async () => {
      const first = await get('responses', 'etag-large');
      assert.equal(first.status, 200);
      assert.equal(first.body.length, 5000);
      const second = await get('responses', 'etag-large', { headers: { 'if-none-match': first.headers.etag } });
      assert.equal(second.status, 304);
      assert.equal(second.body.length, 0);
    });

    it('PUT, PATCH and DELETE endpoints answer their methods', async () => {
      assert.equal((await get('responses', 'put-method', { method: 'PUT', body: '' })).text, '{"put":true}');
      assert.equal((await get('responses', 'patch-method', { method: 'PATCH', body: '' })).text, '{"patched":true}');
      assert.equal((await get('responses', 'delete-method', { method: 'DELETE' })).text, 'deleted');
    });

    it('statusMessage is the status line’s phrase; one a status line cannot carry as ASCII is the standard one', async () => {
      const custom = await get('responses', 'write-head-message');
      assert.deepEqual([custom.status, custom.statusMessage], [200, 'Fine, Thanks']);
      // Node would write "Café" as latin-1 bytes; the gateway writes only ASCII phrases.
      const latin1 = await get('responses', 'status-non-ascii-message');
      assert.deepEqual([latin1.status, latin1.statusMessage, latin1.text], [200, 'OK', 'latin-1 phrase']);
    });

    it('sendFile and download serve a file of the widget’s folder, and none outside it', async () => {
      const file = await get('responses', 'send-file');
      assert.deepEqual([file.status, file.text, file.headers['content-type']], [200, 'a file in the widget folder\n', 'text/plain; charset=UTF-8']);
      assert.match(file.headers.etag, /^W\/"1c-/);
      const partial = await get('responses', 'send-file', { headers: { range: 'bytes=2-5' } });
      assert.deepEqual([partial.status, partial.text, partial.headers['content-range']], [206, 'file', 'bytes 2-5/28']);
      const download = await get('responses', 'download');
      assert.deepEqual([download.status, download.headers['content-disposition']], [200, 'attachment; filename="copy.txt"']);
      const outside = await get('responses', 'send-file-outside');
      assert.deepEqual([outside.status, outside.text], [403, 'ERR_ACCESS_DENIED']);
    });

    it('sending twice is logged as an error, not a crash', async () => {
      const pid = (await wbe.widgetStatus('responses')).pid;
      const response = await get('responses', 'send-twice');
      assert.equal(response.status, 200);
      assert.equal(response.text, 'first answer');
      await wbe.waitForLog((l) => l.widget === 'responses' && /send-twice/.test(l.msg) && /ERR/i.test(l.level));
      assert.equal((await get('responses', 'send-string')).status, 200);
      const status = await wbe.widgetStatus('responses');
      assert.equal(status.pid, pid);
      assert.equal(status.restarts, 0);
    });
  });

  describe('errors end through the stage error handler', () => {
    it('logs the handler error with its stack and the widget id', async () => {
      await get('errors', 'next-500');
      const entry = await wbe.waitForLog((l) => l.widget === 'errors' && /database exploded with secrets/.test(l.msg));
      assert.match(entry.msg, /errors\/backend\.js:\d+/);
    });

    it('next() without an error falls through to Express’s 404 page', async () => {
      const response = await get('errors', 'next-nothing');
      assert.equal(response.status, 404);
      assert.match(response.headers['content-type'], /^text\/html/);
      assert.match(response.text, /Cannot GET \/console\/wb\/next-nothing/);
    });

    it('none of them ended the worker', async () => {
      const before = await wbe.widgetStatus('errors');
      assert.equal((await get('errors', 'after-error')).text, 'still alive');
      const after = await wbe.widgetStatus('errors');
      assert.equal(after.pid, before.pid);
      assert.equal(after.restarts, 0);
    });
  });

  describe('request bodies', () => {
    it("require('body/json') reads a JSON body", async () => {
      const payload = { name: 'dep-1', inputs: { a: [1, 2, 3] }, unicode: 'żółć' };
      const response = await get('json-body', 'echo', { method: 'POST', body: JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(response.json(), { received: payload, contentType: 'application/json' });
    });

    it('invalid JSON reaches next(err) and the error handler', async () => {
      const response = await get('json-body', 'echo', { method: 'POST', body: '{"broken": ', headers: { 'content-type': 'application/json' } });
      assert.equal(response.status, 404);
      assert.match(response.json().message, /JSON|Unexpected/);
    });

    it('data/end events and for-await see the whole body', async () => {
      const raw = await get('json-body', 'raw', { method: 'PUT', body: 'hello wbe' });
      assert.deepEqual(raw.json(), { length: 9, text: 'hello wbe' });
      const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'z');
      const counted = await get('json-body', 'for-await', { method: 'POST', body: big });
      assert.deepEqual(counted.json(), { bytes: big.length });
    });
  });

  describe('require in a backend', () => {
    for (const name of ['fs', 'child_process', 'node:fs', 'net', 'express', 'vm']) {
      it(`refuses ${name} with a message naming it and the allowed list`, async () => {
        const result = (await get('sandbox-require', `require?name=${encodeURIComponent(name)}`)).json();
        assert.equal(result.ok, false, `require('${name}') was allowed`);
        assert.ok(result.message.includes(`'${name}'`), result.message);
        for (const allowed of ['lodash', 'body', 'elkjs']) assert.ok(result.message.includes(allowed), result.message);
      });
    }

    for (const name of ['lodash', 'lodash/fp', 'body/json', 'elkjs']) {
      it(`allows ${name}`, async () => {
        const result = (await get('sandbox-require', `require?name=${encodeURIComponent(name)}`)).json();
        assert.equal(result.ok, true, result.message);
      });
    }

    it('a module-level require of lodash works', async () => {
      assert.deepEqual((await get('sandbox-require', 'lodash')).json(), { chunked: [[1, 2], [3, 4], [5]] });
    });

    it('offers Buffer, URL, URLSearchParams, timers and Promise as globals', async () => {
      assert.deepEqual((await get('sandbox-require', 'globals')).json(), {
        buffer: 'aGk=', url: '1', params: ['1', '2'], timers: true, promise: true,
      });
    });
  });

  describe('console output', () => {
    it('console.log and process.stdout.write reach wbe’s log with the widget id, not the protocol', async () => {
      const pid = (await wbe.widgetStatus('console-log')).pid;
      const response = await get('console-log', 'print');
      assert.equal(response.status, 200);
      assert.equal(response.text, 'printed');
      const fromWidget = (re) => wbe.waitForLog((l) => l.widget === 'console-log' && re.test(l.msg));
      assert.match((await fromWidget(/console\.log from widget 42/)).msg, /k: 'v'/);
      await fromWidget(/console\.error from widget/);
      await fromWidget(/process\.stdout\.write from widget/);
      // A line that looks like a protocol frame is only a log line.
      await fromWidget(/\{"t":"end","id":1\}/);
      const logger = await fromWidget(/helper logger info line/);
      assert.equal(logger.category, 'WidgetBackend-Printer');
      await fromWidget(/helper logger warn line 7/);
      // The worker is the same one and still answers.
      assert.equal((await get('console-log', 'print')).text, 'printed');
      const status = await wbe.widgetStatus('console-log');
      assert.equal(status.pid, pid);
      assert.equal(status.restarts, 0);
    });
  });

  describe('TypeScript backend', () => {
    it('runs with import type, interfaces and lodash', async () => {
      const response = await get('ts-widget', 'sorted');
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(response.json(), { ids: ['a', 'b', 'c'], total: 6 });
    });

    it('a throw in backend.ts is logged with the .ts file and line', async () => {
      const source = fs.readFileSync(path.join(WIDGETS, 'ts-widget', 'backend.ts'), 'utf8').split('\n');
      const line = source.findIndex((l) => l.includes('THROW-LINE')) + 1;
      const response = await get('ts-widget', 'fail');
      assert.equal(response.status, 404);
      assert.deepEqual(response.json(), { message: 'TypeScript handler failed' });
      const entry = await wbe.waitForLog((l) => l.widget === 'ts-widget' && /TypeScript handler failed/.test(l.msg));
      assert.match(entry.msg, new RegExp(`ts-widget/backend\\.ts:${line}:\\d+`));
    });
  });
});

describe('differential: the same backend in wbe and in Express 4', () => {
  let wbe;
  let stage;
  const DIFF = ['responses', 'errors', 'req-info', 'json-body'];
  // Headers that depend on the server, not on the widget.
  const IGNORED = new Set(['date', 'connection', 'keep-alive', 'x-request-id', 'transfer-encoding']);

  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(DIFF) });
    stage = await startStage(Object.fromEntries(DIFF.map((id) => [id, path.join(WIDGETS, id, 'backend.js')])));
  });
  after(async () => {
    await wbe.stop();
    await stage.stop();
  });

  function normalise(response) {
    const headers = {};
    for (let i = 0; i < response.rawHeaders.length; i += 2) {
      const name = response.rawHeaders[i].toLowerCase();
      if (IGNORED.has(name)) continue;
      (headers[name] ||= []).push(response.rawHeaders[i + 1]);
    }
    for (const name of Object.keys(headers)) headers[name] = headers[name].join(', ');
    return { status: response.status, reason: response.statusMessage, headers, body: response.body.toString('latin1') };
  }

  async function both(widget, pathAndQuery, { method = 'GET', headers = {}, body } = {}) {
    const init = { method, body, headers: { host: HOST, 'widget-id': widget, accept: '*/*', ...headers } };
    const [ours, theirs] = await Promise.all([
      httpRequest(`${wbe.base}/console/wb/${pathAndQuery}`, init),
      httpRequest(`${stage.base}/console/wb/${pathAndQuery}`, init),
    ]);
    return { ours: normalise(ours), theirs: normalise(theirs) };
  }

  const requests = [
    ...['send-string', 'send-object', 'send-array', 'send-buffer', 'send-number-status', 'json', 'json-status', 'send-status',
      'send-status-204', 'set-object', 'set-get', 'type', 'type-ext', 'append', 'location', 'redirect', 'redirect-status',
      'cookies', 'stream', 'write-head', 'set-header', 'remove-header', 'headers-sent', 'send-twice', 'status-chain',
      'etag-large', 'utf8', 'status-message', 'write-head-message', 'status-unknown', 'latin1-end-string', 'latin1-end-buffer',
      'latin1-attachment'].map((name) => ['responses', name]),
    ['responses', 'send-size?n=524289'],
    ['responses', 'redirect', { headers: { accept: 'text/html' } }],
    ['responses', 'redirect', { headers: { accept: 'application/json' } }],
    ['responses', 'put-method', { method: 'PUT', body: '' }],
    ['responses', 'patch-method', { method: 'PATCH', body: '' }],
    ['responses', 'delete-method', { method: 'DELETE' }],
    ...['next-error', 'next-status', 'next-string', 'next-500', 'throw', 'throw-status', 'reject', 'reject-500', 'next-nothing']
      .map((name) => ['errors', name]),
    ['json-body', 'echo', { method: 'POST', body: '{"a":[1,{"b":null}]}', headers: { 'content-type': 'application/json' } }],
    ['json-body', 'echo', { method: 'POST', body: '{"a": nope', headers: { 'content-type': 'application/json' } }],
    ['json-body', 'raw', { method: 'PUT', body: 'x'.repeat(100000) }],
  ];
  for (const [widget, name, init = {}] of requests) {
    it(`${init.method || 'GET'} ${widget}/${name}${init.headers ? ` ${JSON.stringify(init.headers)}` : ''}`, async () => {
      const { ours, theirs } = await both(widget, name, init);
      assert.deepEqual(ours, theirs);
    });
  }

  it('an unknown endpoint or method is a 404 {"message"} in both (wbe’s message says more)', async () => {
    for (const [name, method] of [['no-such-endpoint', 'GET'], ['send-string', 'POST'], ['send-string', 'HEAD']]) {
      const { ours, theirs } = await both('responses', name, { method, body: method === 'POST' ? '' : undefined });
      assert.equal(ours.status, theirs.status);
      assert.equal(ours.status, 404);
      // Written like Express's res.send(object): same content type, a weak ETag of the body.
      assert.equal(ours.headers['content-type'], theirs.headers['content-type']);
      assert.equal(ours.headers['x-powered-by'], theirs.headers['x-powered-by']);
      if (method === 'HEAD') {
        assert.equal(ours.body, '');
        assert.equal(theirs.body, '');
        continue;
      }
      assert.equal(ours.headers.etag, etag(Buffer.from(ours.body, 'latin1'), { weak: true }));
      assert.equal(theirs.headers.etag, etag(Buffer.from(theirs.body, 'latin1'), { weak: true }));
      assert.match(JSON.parse(ours.body).message, new RegExp(`service ${name.toUpperCase()} for method ${method} for widget responses`));
      assert.match(JSON.parse(theirs.body).message, new RegExp(`service ${name.toUpperCase()} for method ${method} for widget responses`));
    }
  });

  it('an error after the body started cuts the response off in both, rather than ending it', async () => {
    const request = 'GET /console/wb/next-error-after-write HTTP/1.1\r\nHost: x\r\nwidget-id: errors\r\nConnection: close\r\n\r\n';
    for (const [server, port] of [['wbe', wbe.port], ['stage', stage.port]]) {
      const reply = await rawRequest(port, request);
      assert.match(reply, /^HTTP\/1\.1 200 OK\r\n.*\r\n\r\n7\r\npartial\r\n/s, `${server}: ${reply}`);
      assert.doesNotMatch(reply, /\r\n0\r\n\r\n$/, `${server} ended the chunked body as if it were whole`);
    }
  });

  it('req fields match Express', async () => {
    const { ours, theirs } = await both('req-info', 'info/a/b?q[x]=1&q[y]=2&r=1&r=2&s=%C5%BC', {
      headers: { cookie: 'a=1; b=j:[1,2]; c=%20x', 'x-forwarded-for': '10.0.0.1', referer: 'http://r.example/' },
    });
    assert.equal(ours.status, 200);
    const oursBody = JSON.parse(ours.body);
    const theirsBody = JSON.parse(theirs.body);
    // The stage knows no manager user unless its auth middleware ran.
    assert.equal(oursBody.user, null);
    theirsBody.user = null;
    assert.deepEqual(oursBody, theirsBody);
  });
});
