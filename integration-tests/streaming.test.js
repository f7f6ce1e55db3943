'use strict';
// Large bodies both ways go through the gateway as streams (its memory stays bounded),
// many requests share one worker at once, and max_body_size is enforced (413) whether
// the size is declared or only known while streaming.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const { startWbe, fixtureWidgets } = require('./lib/wbe');

const MiB = 1024 * 1024;
const CHUNKS = 1600; // 1600 × 64 KiB = 100 MiB
const RSS_BOUND = 150 * 1000 * 1000;

// The same deterministic content as widgets/stream/backend.js.
function chunkFor(i) {
  const chunk = Buffer.allocUnsafe(65536);
  for (let j = 0; j < chunk.length; j += 1) chunk[j] = (i * 7 + j) & 0xff;
  return chunk;
}

/**
 * A request whose body is written chunk by chunk (chunked unless `length` is given),
 * resolving with the response even when the server answers before reading it all.
 */
function streamingRequest(url, { method = 'POST', headers = {}, chunks, length }) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn, value) => {
      if (!settled) {
        settled = true;
        fn(value);
      }
    };
    const allHeaders = { ...headers };
    if (length !== undefined) allHeaders['content-length'] = length;
    const req = http.request(url, { method, headers: allHeaders, agent: false }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => finish(resolve, { status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', () => finish(resolve, { status: res.statusCode, headers: res.headers, body: Buffer.concat(parts), truncated: true }));
    });
    req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', (err) => setTimeout(() => finish(reject, err), 500));
    (async () => {
      for (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise((r) => { req.once('drain', r); req.once('close', r); });
      }
      req.end();
    })().catch(() => {});
  });
}

describe('streaming through one widget worker', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(['stream']), config: '[widgets]\nallowed_builtins = ["crypto"]\n' });
  });
  after(() => wbe.stop());

  it('a 100 MiB upload reaches the widget intact (sha256 computed by the widget)', async () => {
    const hash = crypto.createHash('sha256');
    function* body() {
      for (let i = 0; i < CHUNKS; i += 1) {
        const chunk = chunkFor(i * 3 + 1);
        hash.update(chunk);
        yield chunk;
      }
    }
    const response = await streamingRequest(`${wbe.base}/console/wb/upload`, {
      headers: { 'widget-id': 'stream', 'content-type': 'application/octet-stream' },
      chunks: body(),
      length: CHUNKS * 65536,
    });
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(JSON.parse(response.body), { bytes: CHUNKS * 65536, sha256: hash.digest('hex') });
  });

  it('a chunked 10 MiB upload (no Content-Length) reaches the widget intact', async () => {
    const hash = crypto.createHash('sha256');
    function* body() {
      for (let i = 0; i < 10 * 16; i += 1) {
        const chunk = chunkFor(i + 5).subarray(0, 65536 - (i % 7));
        hash.update(chunk);
        yield chunk;
      }
    }
    let bytes = 0;
    for (let i = 0; i < 160; i += 1) bytes += 65536 - (i % 7);
    const response = await streamingRequest(`${wbe.base}/console/wb/upload`, { headers: { 'widget-id': 'stream' }, chunks: body() });
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(JSON.parse(response.body), { bytes, sha256: hash.digest('hex') });
  });

  it('a 100 MiB response written with res.write arrives intact', async () => {
    const expected = crypto.createHash('sha256');
    for (let i = 0; i < CHUNKS; i += 1) expected.update(chunkFor(i));
    const received = crypto.createHash('sha256');
    const { status, bytes } = await new Promise((resolve, reject) => {
      const req = http.get(`${wbe.base}/console/wb/download?chunks=${CHUNKS}`, { headers: { 'widget-id': 'stream' }, agent: false }, (res) => {
        let count = 0;
        res.on('data', (c) => {
          count += c.length;
          received.update(c);
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes: count }));
        res.on('error', reject);
      });
      req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
      req.on('error', reject);
    });
    assert.equal(status, 200);
    assert.equal(bytes, CHUNKS * 65536);
    assert.equal(received.digest('hex'), expected.digest('hex'));
  });

  it('a slow reader of a 100 MiB response gets it intact too (backpressure, not buffering)', async () => {
    const expected = crypto.createHash('sha256');
    for (let i = 0; i < CHUNKS; i += 1) expected.update(chunkFor(i));
    const received = crypto.createHash('sha256');
    const bytes = await new Promise((resolve, reject) => {
      const req = http.get(`${wbe.base}/console/wb/download?chunks=${CHUNKS}`, { headers: { 'widget-id': 'stream' }, agent: false }, (res) => {
        let count = 0;
        let paused = 0;
        res.on('data', (c) => {
          count += c.length;
          received.update(c);
          // Pause now and then so the gateway has to hold back rather than buffer.
          if (count > (paused + 1) * 10 * MiB) {
            paused += 1;
            res.pause();
            setTimeout(() => res.resume(), 50);
          }
        });
        res.on('end', () => resolve(count));
        res.on('error', reject);
      });
      req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
      req.on('error', reject);
    });
    assert.equal(bytes, CHUNKS * 65536);
    assert.equal(received.digest('hex'), expected.digest('hex'));
  });

  it(`keeps the gateway's peak RSS under ${RSS_BOUND / 1e6} MB after moving 300 MiB`, (t) => {
    const peak = wbe.peakRss();
    t.diagnostic(`wbe peak RSS: ${(peak / 1e6).toFixed(1)} MB`);
    assert.ok(peak < RSS_BOUND, `wbe peak RSS (VmHWM) is ${(peak / 1e6).toFixed(1)} MB`);
  });

  it('multiplexes 50 concurrent requests on one worker process', async () => {
    const n = 50;
    const responses = await Promise.all(Array.from({ length: n }, () =>
      fetch(`${wbe.base}/console/wb/rendezvous?n=${n}`, { headers: { 'widget-id': 'stream' }, signal: AbortSignal.timeout(60_000) })
        .then(async (r) => ({ status: r.status, body: await r.json() }))));
    for (const { status, body } of responses) assert.equal(status, 200, JSON.stringify(body));
    const pids = new Set(responses.map((r) => r.body.pid));
    assert.equal(pids.size, 1);
    const status = await wbe.widgetStatus('stream');
    assert.equal(status.pid, [...pids][0]);
    assert.equal(status.restarts, 0);
  });
});

describe('max_body_size', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({ widgets: fixtureWidgets(['stream']), config: '[widgets]\nallowed_builtins = ["crypto"]\n[server]\nmax_body_size = "1MB"\n' });
  });
  after(() => wbe.stop());

  const twoMiB = () => Array.from({ length: 32 }, (_, i) => chunkFor(i));

  function assert413(response) {
    assert.equal(response.status, 413, response.body.toString());
    assert.match(response.headers['content-type'], /^application\/json/);
    assert.match(JSON.parse(response.body).message, /max_body_size|too large|larger/i);
  }

  it('answers 413 JSON to a declared Content-Length over the limit', async () => {
    assert413(await streamingRequest(`${wbe.base}/console/wb/upload`, { headers: { 'widget-id': 'stream' }, chunks: twoMiB(), length: 2 * MiB }));
  });

  it('answers 413 JSON to a chunked body that grows over the limit', async () => {
    assert413(await streamingRequest(`${wbe.base}/console/wb/upload`, { headers: { 'widget-id': 'stream' }, chunks: twoMiB() }));
  });

  it('accepts a body under the limit and keeps serving after the 413s', async () => {
    const chunk = chunkFor(9).subarray(0, 900 * 1000);
    const response = await streamingRequest(`${wbe.base}/console/wb/upload`, { headers: { 'widget-id': 'stream' }, chunks: [chunk], length: chunk.length });
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(JSON.parse(response.body), { bytes: chunk.length, sha256: crypto.createHash('sha256').update(chunk).digest('hex') });
  });
});
