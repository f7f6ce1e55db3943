'use strict';
// CONTRACT.md §5 and the supervision promises: a widget that crashes, hangs, never
// answers, floods or leaks hurts only itself, and the bystander keeps answering.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { startWbe, writeWidgets, eventually, alive } = require('./lib/wbe');

const FAULTS = path.join(__dirname, 'fault-widgets');

const CONFIG = `
[workers]
heartbeat = "300ms"
handler_timeout = "2s"
memory_limit = "96MB"
restart_backoff_min = "200ms"
restart_backoff_max = "3s"
max_inflight = 4
queue_limit = 2
`;

/** Calls the bystander every 20 ms while `during` runs; returns every status it got. */
async function whileBystanderIsCalled(wbe, during) {
  const statuses = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const response = await wbe.call('ping', { widget: 'steady' });
      statuses.push(response.status);
      await response.text();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await during();
  } finally {
    stop = true;
    await loop;
  }
  return statuses;
}

async function pidOf(wbe, widget) {
  return eventually(async () => {
    const response = await wbe.call('pid', { widget });
    return response.status === 200 && (await response.json()).pid;
  }, { what: `${widget} serving again` });
}

describe('supervision', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: FAULTS, config: CONFIG });
  });
  after(() => wbe.stop());

  for (const [endpoint, how] of [['exit', /worker exited \(exit status: 3\)/], ['timer-throw', /worker exited \(exit status: 1\)/], ['self-kill', /signal: 9/]]) {
    it(`a worker that dies (${endpoint}) fails only its own request with 502 and is restarted`, async () => {
      const before = await pidOf(wbe, 'crasher');
      const restartsBefore = (await wbe.widgetStatus('crasher')).restarts;
      const statuses = await whileBystanderIsCalled(wbe, async () => {
        const response = await wbe.call(endpoint, { widget: 'crasher' });
        assert.equal(response.status, 502);
        const { message } = await response.json();
        assert.match(message, /Widget crasher failed while handling GET /);
        assert.match(message, how);
        const after = await pidOf(wbe, 'crasher');
        assert.notEqual(after, before);
        assert.equal(alive(before), false, 'the dead worker is gone');
      });
      assert.ok(statuses.length > 0);
      assert.deepEqual([...new Set(statuses)], [200], 'the bystander never failed');
      assert.equal((await wbe.widgetStatus('crasher')).restarts, restartsBefore + 1);
      await wbe.waitForLog((l) => l.msg.startsWith('worker crashed') && l.widget === 'crasher');
    });
  }

  it('a crash-looping widget answers 503 with Retry-After during its backoff', async () => {
    await pidOf(wbe, 'crasher');
    await (await wbe.call('exit', { widget: 'crasher' })).text();
    const during = await wbe.call('pid', { widget: 'crasher' });
    assert.equal(during.status, 503);
    assert.ok(Number(during.headers.get('retry-after')) >= 1);
    assert.match((await during.json()).message, /Widget crasher cannot serve now: it is restarting after a crash/);
    assert.equal((await wbe.widgetStatus('crasher')).state, 'restarting');
    await pidOf(wbe, 'crasher');
  });

  it('a hung worker is found by the heartbeat, killed and restarted', async () => {
    const before = await pidOf(wbe, 'hanger');
    const statuses = await whileBystanderIsCalled(wbe, async () => {
      const response = await wbe.call('spin', { widget: 'hanger' });
      assert.ok([502, 504].includes(response.status), `got ${response.status}`);
      assert.match((await response.json()).message, /did not answer heartbeats|did not answer GET spin/);
      assert.notEqual(await pidOf(wbe, 'hanger'), before);
    });
    assert.deepEqual([...new Set(statuses)], [200]);
  });

  it('a handler that never answers gets 504 and is cancelled; nothing stays in flight', async () => {
    const response = await wbe.call('never', { widget: 'sleeper' });
    assert.equal(response.status, 504);
    assert.match((await response.json()).message, /Widget sleeper did not answer GET never within 2s \(handler_timeout\)/);
    const stats = await eventually(async () => {
      const s = await (await wbe.call('stats', { widget: 'sleeper' })).json();
      return s.active === 0 && s;
    }, { what: 'the handler to see its request end' });
    assert.ok(stats.aborted >= 1, 'req emitted aborted');
    assert.equal((await wbe.widgetStatus('sleeper')).inflight, 0);
  });

  it('a client that disconnects cancels its request', async () => {
    const { aborted } = await (await wbe.call('stats', { widget: 'sleeper' })).json();
    const controller = new AbortController();
    const request = fetch(`${wbe.base}/console/wb/never`, { headers: { 'widget-id': 'sleeper' }, signal: controller.signal });
    request.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await eventually(async () => {
      const s = await (await wbe.call('stats', { widget: 'sleeper' })).json();
      return s.aborted >= aborted + 1;
    }, { what: 'the cancel to reach the widget' });
    await wbe.waitForLog((l) => l.msg === 'request' && l.status === 499 && l.widget === 'sleeper');
  });

  it('beyond max_inflight and the queue, requests get 503 with Retry-After', async () => {
    const calls = Array.from({ length: 10 }, () => wbe.call('slow', { widget: 'sleeper', query: 'ms=800' }));
    const responses = await Promise.all(calls);
    const statuses = responses.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 200).length, 6, `4 running + 2 queued succeed: ${statuses}`);
    const refused = responses.filter((r) => r.status === 503);
    assert.equal(refused.length, 4);
    assert.equal(refused[0].headers.get('retry-after'), '1');
    assert.match((await refused[0].json()).message, /request queue is full/);
  });

  it('a request that gave up waiting in the queue gives its place back', async () => {
    // Four responses that never end hold every slot of the widget.
    const holders = Array.from({ length: 4 }, () => new AbortController());
    const streams = await Promise.all(holders.map((holder) => wbe.call('drip', { widget: 'sleeper', signal: holder.signal })));
    assert.deepEqual(streams.map((r) => r.status), [200, 200, 200, 200]);
    try {
      // Twice as many waits as the queue has places: each must wait out its time, not be
      // refused at once for a queue that is in fact empty.
      for (let round = 0; round < 2; round += 1) {
        const waited = await Promise.all([1, 2].map(() => wbe.call('slow', { widget: 'sleeper', query: 'ms=1' })));
        for (const response of waited) {
          assert.equal(response.status, 503);
          assert.match((await response.json()).message, /no worker was free within handler_timeout/);
        }
      }
    } finally {
      for (const holder of holders) holder.abort();
    }
    await eventually(async () => (await wbe.call('slow', { widget: 'sleeper', query: 'ms=1' })).status === 200, { what: 'the slots free again' });
  });

  it('a stalled streaming response ends when its client leaves, and frees its slot', async () => {
    await eventually(async () => (await wbe.widgetStatus('sleeper')).inflight === 0, { what: 'sleeper idle' });
    const holder = new AbortController();
    const response = await wbe.call('drip', { widget: 'sleeper', signal: holder.signal });
    assert.equal(response.status, 200);
    assert.equal((await wbe.widgetStatus('sleeper')).inflight, 1);
    holder.abort();
    await eventually(async () => (await wbe.widgetStatus('sleeper')).inflight === 0, { what: 'the stalled request to end' });
  });

  it('a widget that logs in a loop gets its lines cut to its allowance, and the count of dropped ones logged', async () => {
    const statuses = await whileBystanderIsCalled(wbe, async () => {
      const response = await wbe.call('burst', { widget: 'chatty' });
      assert.equal(await response.text(), 'logged');
      await wbe.waitForLog((l) => l.widget === 'chatty' && l.msg === 'chatty after the burst');
    });
    assert.deepEqual([...new Set(statuses)], [200], 'the bystander never failed');
    const report = await wbe.waitForLog((l) => l.widget === 'chatty' && /lines dropped/.test(l.msg));
    assert.match(report.msg, /widget logged more than 1000 lines or 1024 KiB a second: \d+ lines dropped/);
    const dropped = Number(/(\d+) lines dropped/.exec(report.msg)[1]);
    const logged = wbe.logs.filter((l) => l.widget === 'chatty' && /^chatty line/.test(l.msg)).length;
    assert.equal(logged + dropped, 20000, `${logged} logged + ${dropped} dropped`);
    assert.ok(logged <= 2000, `${logged} lines of the burst reached the log`);
  });

  it('a worker that allocates without bound is stopped at the memory limit and restarted', async () => {
    for (const endpoint of ['heap', 'buffers']) {
      const before = await pidOf(wbe, 'leaker');
      const gatewayBefore = wbe.peakRss();
      const response = await wbe.call(endpoint, { widget: 'leaker' });
      assert.ok([502, 504].includes(response.status), `${endpoint}: ${response.status}`);
      await eventually(() => !alive(before), { what: 'the leaking worker to die', timeoutMs: 30_000 });
      assert.notEqual(await pidOf(wbe, 'leaker'), before);
      assert.ok(wbe.peakRss() - gatewayBefore < 32 * 1024 * 1024, 'the gateway did not grow with the leak');
    }
    await wbe.waitForLog((l) => l.widget === 'leaker' && /heap out of memory|Reached heap limit|exited/.test(l.msg));
  });
});

describe('worker pool', () => {
  it('spreads requests over workers.per_widget workers', async () => {
    const widgets = writeWidgets({ cpu: { 'backend.js': `module.exports = (r) => r.register('pid', (req, res) => setTimeout(() => res.json({ pid: process.pid }), 200));` } });
    const wbe = await startWbe({ widgets, config: '[workers]\nper_widget = 2\n' });
    try {
      const pids = await Promise.all(Array.from({ length: 6 }, async () => (await (await wbe.call('pid', { widget: 'cpu' })).json()).pid));
      assert.equal(new Set(pids).size, 2, `pids: ${pids}`);
      assert.equal((await wbe.widgetStatus('cpu')).workers.length, 2);
    } finally {
      await wbe.stop();
    }
  });
});

describe('heartbeats', () => {
  it('a worker still reading a backlog of helper results is not taken for hung', async () => {
    // Twelve 2 MiB downloads whose results the widget works on for 40 ms each: the
    // heartbeat's ping waits on stdin behind them for far longer than three 100 ms beats.
    const body = Buffer.alloc(2 * 1024 * 1024, 7);
    const server = http.createServer((req, res) => res.end(body));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const widgets = writeWidgets({
      bulk: {
        'backend.js': `module.exports = (r) => r.register('fetch', async (req, res, next, helper) => {
          const busy = () => { const until = Date.now() + 40; while (Date.now() < until); };
          const sizes = await Promise.all(Array.from({ length: 12 }, () =>
            helper.Request.doGet(req.query.url, { parseResponse: false }).then((buffer) => { busy(); return buffer.length; })));
          res.json({ sizes, pid: process.pid });
        });`,
      },
    });
    const wbe = await startWbe({ widgets, config: '[workers]\nheartbeat = "100ms"\n' });
    try {
      const pid = (await wbe.widgetStatus('bulk')).workers[0].pid;
      const response = await wbe.call('fetch', { widget: 'bulk', query: `url=${encodeURIComponent(`http://127.0.0.1:${server.address().port}/`)}` });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      assert.deepEqual(JSON.parse(text), { sizes: Array(12).fill(body.length), pid });
      assert.equal((await wbe.widgetStatus('bulk')).restarts, 0);
    } finally {
      await wbe.stop();
      server.close();
    }
  });
});

describe('shutdown', () => {
  it('SIGTERM lets requests in flight finish, stops every worker and exits 0', async () => {
    const wbe = await startWbe({ widgets: FAULTS });
    const pids = (await wbe.status()).widgets.map((w) => w.pid).filter(Boolean);
    assert.ok(pids.length >= 4);
    const inFlight = wbe.call('slow', { widget: 'sleeper', query: 'ms=1000' });
    await new Promise((r) => setTimeout(r, 200));
    const stopped = wbe.stop('SIGTERM');
    const response = await inFlight;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { done: true });
    const { code } = await stopped;
    assert.equal(code, 0);
    for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} survived`);
    await assert.rejects(fetch(`${wbe.base}/_wbe/health`), 'no longer accepting');
  });
});
