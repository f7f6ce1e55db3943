'use strict';
// Runtime duties of the shim, over the real protocol: logging and console capture,
// misuse that must not crash, helper calls, cancel, flow control both ways, heartbeats
// and the widget-crash policy.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { Shim, fixture, routeOf } = require('./harness');

const BACKEND = fixture('behaviour', 'backend.js');
let shim;

before(async () => {
  let hello;
  [shim, hello] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
  assert.ok(hello.endpoints, JSON.stringify(hello));
});

after(() => shim.stop());

const logsSince = (from) => shim.frames.slice(from).filter((f) => f.t === 'log');
// Logs travel on the control channel and responses on a lane, in no order between them:
// wait for the last log a test expects before reading them.
async function logsUntil(from, lastMsg) {
  await shim.waitFor((f) => f.t === 'log' && f.msg === lastMsg, 5000, from);
  return logsSince(from);
}
const text = (res) => res.body.toString();

test('the same (name, method) registered twice: listed once, last one wins', async () => {
  const [, hello] = [null, shim.frames.find((f) => f.t === 'hello')];
  assert.strictEqual(hello.endpoints.filter((e) => e.name === 'DUP').length, 1);
  assert.strictEqual(text(await shim.request({ url: '/console/wb/dup' })), 'second');
});

test('console and raw stdout/stderr writes become log frames', async () => {
  const from = shim.frames.length;
  assert.strictEqual(text(await shim.request({ url: '/console/wb/console' })), 'logged');
  const logs = (await logsUntil(from, 'raw stderr')).map(({ level, category, msg }) => [level, category, msg]);
  const c = 'WidgetBackend-console';
  assert.deepStrictEqual(logs, [
    ['info', c, 'plain log { a: 1 }'],
    ['info', c, 'info line'],
    ['warn', c, 'warn line'],
    ['error', c, 'error line'],
    ['debug', c, 'debug line'],
    ['info', c, 'raw stdout'],
    ['warn', c, 'raw stderr'],
  ]);
});

test('helper.Logger categories and levels', async () => {
  const from = shim.frames.length;
  await shim.request({ url: '/console/wb/logger' });
  assert.deepStrictEqual((await logsUntil(from, 's')).map(({ level, category, msg }) => [level, category, msg]), [
    ['info', 'WidgetBackend-cat', 'value 42'],
    ['warn', 'WidgetBackend', 'plain words'],
    ['silly', 'WidgetBackend-x', 's'],
  ]);
});

test('a log message is cut at 64 KiB characters', async () => {
  const from = shim.frames.length;
  assert.strictEqual(text(await shim.request({ url: '/console/wb/huge-log' })), 'logged');
  const log = await shim.waitFor((f) => f.t === 'log' && f.category === 'WidgetBackend-big', 5000, from);
  assert.strictEqual(log.msg, `${'y'.repeat(65536)}... (${100000 - 65536} more characters)`);
});

test('a helper call too large for one frame is rejected to the widget, not sent', async () => {
  const from = shim.frames.length;
  const res = await shim.request({ url: '/console/wb/huge-call' });
  assert.strictEqual(res.status, 413);
  const error = JSON.parse(text(res));
  assert.strictEqual(error.name, 'RangeError');
  assert.match(error.message, /^a "call" frame of \d+ bytes exceeds the protocol's limit of 4194304 bytes$/);
  assert.ok(!shim.frames.slice(from).some((f) => f.t === 'call'), 'no call frame went out');
});

test('sending twice is logged, not a crash', async () => {
  const from = shim.frames.length;
  const res = await shim.request({ url: '/console/wb/twice' });
  assert.strictEqual(text(res), 'once');
  await shim.waitFor((f) => f.t === 'log' && f.msg.includes('res.write() called after the response ended'), 2000, from);
  const errors = logsSince(from).filter((l) => l.level === 'error').map((l) => l.msg.split('\n')[0]);
  assert.deepStrictEqual(errors, [
    'res.send() called after the response was already sent (GET /console/wb/twice)',
    'res.json() called after the response was already sent (GET /console/wb/twice)',
    'res.write() called after the response ended (write after end) (GET /console/wb/twice)',
  ]);
});

test('CR/LF in a header value or a bad header name is a TypeError, answered by the error handler', async () => {
  const value = await shim.request({ url: '/console/wb/bad-header' });
  assert.strictEqual(value.status, 404);
  assert.strictEqual(text(value), '{"message":"Invalid character in header content [\\"X-Evil\\"]"}');
  const name = await shim.request({ url: '/console/wb/bad-header-name' });
  assert.strictEqual(text(name), '{"message":"Header name must be a valid HTTP token [\\"Bad Name\\"]"}');
});

test('an error after the headers went out ends the response and is logged', async () => {
  const from = shim.frames.length;
  const res = await shim.request({ url: '/console/wb/late-error' });
  assert.strictEqual(res.status, 200);
  assert.strictEqual(text(res), 'partial');
  // Logs travel on the control channel, the response on its lane: either may come first.
  await shim.waitFor((f) => f.t === 'log' && f.level === 'error' && f.msg.includes('after headers'), 5000, from);
});

test('an invalid err.status falls back to finalhandler\'s 500 page', async () => {
  const res = await shim.request({ url: '/console/wb/bad-status' });
  assert.strictEqual(res.status, 500);
  assert.match(text(res), /<pre>Internal Server Error<\/pre>/);
});

test('Manager calls go out as call frames and resolve from ret frames', async () => {
  const from = shim.frames.length;
  const headers = [['cookie', 'XSRF-TOKEN=abc'], ['host', 'h']];
  const id = shim.nextId++;
  shim.send({ t: 'req', id, method: 'GET', ...routeOf('/console/wb/manager'), headers, window: 65536 });
  shim.send({ t: 'end', id });
  const first = await shim.waitFor((f) => f.t === 'call', 2000, from);
  assert.deepStrictEqual(first, {
    t: 'call', cid: first.cid, id, helper: 'manager', fn: 'call',
    args: { method: 'GET', url: '/blueprints', params: { _size: 5 }, headers: { cookie: 'XSRF-TOKEN=abc', host: 'h' }, body: null, timeout: null },
  });
  shim.send({ t: 'ret', cid: first.cid, ok: true, value: { items: [1] } });
  const second = await shim.waitFor((f) => f.t === 'call' && f.cid !== first.cid, 2000, from);
  assert.strictEqual(second.fn, 'getFull');
  assert.deepStrictEqual(second.args, { url: '/deployments', params: {}, headers: { cookie: 'XSRF-TOKEN=abc', host: 'h' }, timeout: null });
  shim.send({ t: 'ret', cid: second.cid, ok: true, value: { items: [1, 2] } });
  const res = await shim.collect(id, from);
  assert.strictEqual(text(res), '{"data":{"items":[1]},"all":{"items":[1,2]}}');
});

test('a manager error rejects with the manager\'s body; others with an Error', async () => {
  let from = shim.frames.length;
  const pending = shim.request({ url: '/console/wb/manager-error', method: 'GET' });
  const call = await shim.waitFor((f) => f.t === 'call', 2000, from);
  assert.deepStrictEqual(call.args.body, { a: 1 });
  assert.strictEqual(call.args.method, 'POST');
  shim.send({ t: 'ret', cid: call.cid, ok: false, error: { kind: 'manager', body: { message: 'nope', error_code: 'x' } } });
  assert.strictEqual(text(await pending), '{"caught":{"message":"nope","error_code":"x"}}');

  from = shim.frames.length;
  const failing = shim.request({ url: '/console/wb/request-error' });
  const call2 = await shim.waitFor((f) => f.t === 'call', 2000, from);
  assert.deepStrictEqual(call2.args, { method: 'GET', url: 'http://x/', params: {}, headers: {}, body: null, parseResponse: true, certificate: null });
  shim.send({ t: 'ret', cid: call2.cid, ok: false, error: { kind: 'status', message: 'Status: 500 Internal Server Error. Data received: x' } });
  const res = await failing;
  assert.strictEqual(res.status, 404);
  assert.strictEqual(text(res), '{"message":"Status: 500 Internal Server Error. Data received: x"}');
});

test('Request with parseResponse:false resolves the raw bytes that follow its ret frame', async () => {
  const from = shim.frames.length;
  const pending = shim.request({ url: '/console/wb/request' });
  const call = await shim.waitFor((f) => f.t === 'call', 2000, from);
  assert.strictEqual(call.helper, 'request');
  assert.strictEqual(call.args.parseResponse, false);
  shim.send({ t: 'ret', cid: call.cid, ok: true }, Buffer.from('by\ntes'));
  assert.strictEqual(text(await pending), '{"isBuffer":true,"text":"by\\ntes"}');
});

test('req/res.setTimeout: an idle request times out, with a listener answering and without one aborted', async () => {
  const heard = await shim.request({ url: '/console/wb/idle-heard' });
  assert.deepStrictEqual([heard.status, text(heard)], [503, 'idle']);
  const unheard = await shim.request({ url: '/console/wb/idle-unheard' });
  const last = shim.frames.filter((f) => f.id === unheard.id).at(-1);
  assert.strictEqual(last.abort, true, JSON.stringify(last));
  // Writes are activity: 40 ms apart, they never let 120 ms of idleness pass.
  const busy = await shim.request({ url: '/console/wb/idle-kept-busy' });
  assert.strictEqual(text(busy), '01234done');
});

test('cancel: aborted then close, pending calls rejected, later writes dropped', async () => {
  const from = shim.frames.length;
  const id = shim.nextId++;
  shim.send({ t: 'req', id, method: 'GET', ...routeOf('/console/wb/wait-cancel'), headers: [], window: 65536 });
  await shim.waitFor((f) => f.t === 'call' && f.id === id, 2000, from);
  shim.send({ t: 'cancel', id, reason: 'timeout' });
  const log = await shim.waitFor((f) => f.t === 'log' && f.category === 'WidgetBackend-cancel', 2000, from);
  assert.strictEqual(log.msg, 'req:aborted req:close res:close call:The request was cancelled; helper calls are no longer answered');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepStrictEqual(shim.frames.slice(from).filter((f) => f.id === id && f.t !== 'call'), []);
});

test('response flow control: never more than the window in flight; write() false, then drain', async () => {
  const from = shim.frames.length;
  const id = shim.nextId++;
  const window = 100000;
  shim.send({ t: 'req', id, method: 'GET', ...routeOf('/console/wb/big'), headers: [], window });
  shim.send({ t: 'end', id });
  await shim.waitFor((f) => f.t === 'head' && f.id === id, 2000, from);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const sent = () => shim.frames.slice(from).filter((f) => f.id === id && f.payload).reduce((n, f) => n + f.payload.length, 0);
  assert.strictEqual(sent(), window, 'stops exactly at the window');
  const res = await shim.collect(id, from); // acks everything from here on
  assert.strictEqual(res.body.length, 4 * 65536 + '[true,false,false,false]'.length);
  assert.ok(res.body.toString().endsWith('[true,false,false,false]'));
});

test('a response complete at its head travels whole in the head frame, outside the window', async () => {
  const small = await shim.request({ url: '/console/wb/whole?size=300000', window: 1000, ack: false });
  assert.strictEqual(small.head.end, true);
  assert.strictEqual(small.head.payload.length, 300000);
  // Beyond 512 KiB it is streamed under the window like any other body.
  const large = await shim.request({ url: '/console/wb/whole?size=600000', window: 1000 });
  assert.strictEqual(large.head.end, undefined);
  assert.strictEqual(large.head.payload.length, 1000);
  assert.strictEqual(large.body.length, 600000);
});

test('a Readable piped into res arrives whole under a small window', async () => {
  const res = await shim.request({ url: '/console/wb/pipe', window: 15000 });
  assert.strictEqual(res.status, 200);
  assert.deepStrictEqual(res.headers, [['x-powered-by', 'Express'], ['content-type', 'text/plain; charset=utf-8']]);
  assert.strictEqual(res.body.length, 400000);
});

test('request flow control: the body is acked as the widget consumes it', async () => {
  const from = shim.frames.length;
  const id = shim.nextId++;
  shim.send({ t: 'req', id, method: 'POST', ...routeOf('/console/wb/slow-reader'), headers: [], window: 65536 });
  const acked = () => shim.frames.slice(from).filter((f) => f.t === 'ack' && f.id === id).reduce((n, f) => n + f.bytes, 0);
  // Behave like the gateway: never more than 256 KiB ahead of the shim's acks.
  const chunk = 'b'.repeat(60000);
  const total = 600000;
  let sent = 0;
  while (sent < total) {
    if (sent + chunk.length - acked() > 256 * 1024) {
      const seen = shim.frames.length;
      await shim.waitFor((f) => f.t === 'ack' && f.id === id, 2000, seen);
      continue;
    }
    shim.send({ t: 'body', id }, chunk);
    sent += chunk.length;
  }
  shim.send({ t: 'end', id });
  const res = await shim.collect(id, from);
  assert.strictEqual(text(res), `{"total":${total}}`);
  assert.ok(acked() >= total - 256 * 1024, `acks let the whole body through (acked ${acked()})`);
});

test('body bytes travel raw: any byte (newlines, invalid UTF-8) in frames split anywhere', async () => {
  const body = Buffer.alloc(150000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 256;
  const id = shim.nextId++;
  const from = shim.frames.length;
  shim.send({ t: 'req', id, method: 'POST', ...routeOf('/console/wb/reverse'), headers: [], window: 65536 });
  const wire = [];
  for (let at = 0; at < body.length; at += 65536) {
    const piece = body.subarray(at, at + 65536);
    wire.push(Buffer.from(`${JSON.stringify({ t: 'body', id, len: piece.length })}\n`), piece);
  }
  wire.push(Buffer.from(`${JSON.stringify({ t: 'end', id })}\n`));
  // Odd-sized writes, so that lines and payloads are cut at arbitrary places.
  const bytes = Buffer.concat(wire);
  for (let at = 0; at < bytes.length; at += 9973) shim.lane.write(bytes.subarray(at, at + 9973));
  const res = await shim.collect(id, from);
  assert.ok(res.body.equals(Buffer.from(body).reverse()));
  const chunks = shim.frames.slice(from).filter((f) => f.id === id && f.t === 'chunk');
  assert.ok(chunks.length >= 2 && chunks.every((f) => f.len === f.payload.length && f.len <= 65536));
});

test('req.user, ip and protocol come from the req frame', async () => {
  const id = shim.nextId++;
  const from = shim.frames.length;
  shim.send({ t: 'req', id, method: 'GET', ...routeOf('/console/wb/user'), headers: [], ip: '10.0.0.9', protocol: 'https', user: { username: 'admin' }, window: 65536 });
  shim.send({ t: 'end', id });
  const res = await shim.collect(id, from);
  assert.strictEqual(text(res), '{"user":{"username":"admin"},"ip":"10.0.0.9","protocol":"https","secure":true}');
});

test('ping is answered with memory use', async () => {
  shim.send({ t: 'ping', seq: 77 });
  const pong = await shim.waitFor((f) => f.t === 'pong' && f.seq === 77);
  assert.ok(pong.rss > 0 && pong.heap > 0);
});

test('an unhandled rejection is logged and the worker keeps serving', async () => {
  const from = shim.frames.length;
  assert.strictEqual(text(await shim.request({ url: '/console/wb/unhandled' })), 'still here');
  await shim.waitFor((f) => f.t === 'log' && f.msg.includes('nobody catches me'), 2000, from);
  assert.strictEqual(text(await shim.request({ url: '/console/wb/dup' })), 'second');
});

test('a throw from a widget timer is the widget\'s crash: logged, exit 1', async () => {
  const [crashing] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
  assert.strictEqual(text(await crashing.request({ url: '/console/wb/timer-crash' })), 'crashing soon');
  assert.strictEqual(await crashing.exited, 1);
  assert.ok(crashing.logs.some((l) => l.level === 'error' && l.msg.includes('widget timer exploded')));
});

test('an unknown frame type is a protocol fault', async () => {
  const [faulty] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
  faulty.send({ t: 'bogus' });
  assert.strictEqual(await faulty.exited, 1);
  assert.ok(faulty.logs.some((l) => l.msg.includes('unknown lane frame type "bogus"')));
});

test('a body frame announcing more than a frame may carry is a protocol fault', async () => {
  const [faulty] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
  faulty.send({ t: 'req', id: 1, method: 'POST', ...routeOf('/console/wb/reverse'), headers: [], window: 65536 });
  faulty.lane.write(`${JSON.stringify({ t: 'body', id: 1, len: 65537 })}\n`);
  assert.strictEqual(await faulty.exited, 1);
  assert.ok(faulty.logs.some((l) => l.msg.includes('body frame with an invalid len 65537')));
});

test('raw bytes announced on a frame that carries none, or over a result’s limit, are a protocol fault', async () => {
  for (const [frame, message] of [
    [{ t: 'ping', seq: 1, len: 3 }, 'ping frame with an invalid len 3'],
    [{ t: 'ret', cid: 1, ok: true, len: 64 * 1024 * 1024 + 1 }, 'ret frame with an invalid len 67108865'],
  ]) {
    const [faulty] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
    faulty.child.stdin.write(`${JSON.stringify(frame)}\n`);
    assert.strictEqual(await faulty.exited, 1);
    assert.ok(faulty.logs.some((l) => l.msg.includes(message)), JSON.stringify(faulty.logs));
  }
});

test('a request frame on the control channel is a protocol fault', async () => {
  const [faulty] = await Shim.start(BACKEND, { allowedBuiltins: ['stream'] });
  faulty.child.stdin.write(`${JSON.stringify({ t: 'req', id: 1, method: 'GET', ...routeOf('/console/wb/status'), headers: [] })}\n`);
  assert.strictEqual(await faulty.exited, 1);
  assert.ok(faulty.logs.some((l) => l.msg.includes('unknown control frame type "req"')));
});
