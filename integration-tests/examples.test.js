'use strict';
// The bundled example widgets (examples/widgets) load, are what `wbe` serves by default,
// and do what their comments say.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { EXAMPLES, REPO, runWbe, startWbe } = require('./lib/wbe');
const { startFakeManager } = require('./lib/fake-manager');

const EXAMPLE_IDS = ['json-echo', 'manager-info', 'status', 'ts-lodash'];

describe('wbe check on the examples', () => {
  for (const [what, args] of [['--widgets examples/widgets', ['--widgets', EXAMPLES]], ['no --widgets (the bundled default)', []]]) {
    it(`${what}: every example loads, common is skipped`, () => {
      const result = runWbe(['check', ...args]);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      const ids = result.stdout.split('\n').filter(Boolean).map((l) => l.split(':')[0]);
      assert.deepEqual(ids.sort(), EXAMPLE_IDS);
    });
  }
});

describe('serving the examples', () => {
  let manager;
  let wbe;
  before(async () => {
    manager = await startFakeManager({ blueprints: 2500 });
    wbe = await startWbe({ widgets: EXAMPLES, args: ['--manager-url', manager.url] });
  });
  after(async () => {
    await wbe.stop();
    await manager.stop();
  });

  // The README's "Calling the examples": every curl there that shows its answer (a
  // `# ...` line after it) gives that answer, so the README cannot drift from the widgets.
  it('the README’s example calls answer what the README shows', async () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const section = readme.split('### Calling the examples')[1].split('```sh')[1].split('```')[0];
    const lines = section.replace(/\\\n\s*/g, ' ').split('\n').map((line) => line.trim());
    let checked = 0;
    for (let i = 0; i < lines.length; i++) {
      const expected = lines[i + 1] && lines[i + 1].startsWith('# ') ? lines[i + 1].slice(2) : null;
      if (!lines[i].startsWith('curl ') || expected === null) continue;
      const words = [...lines[i].matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
      const headers = {};
      let body;
      let url;
      for (let w = 1; w < words.length; w++) {
        if (words[w] === '-H') {
          const [name, ...value] = words[++w].split(':');
          headers[name.trim()] = value.join(':').trim();
        } else if (words[w] === '-d') {
          body = words[++w];
        } else if (words[w].startsWith('http://127.0.0.1:8089')) {
          url = words[w].replace('http://127.0.0.1:8089', '');
        }
      }
      assert.ok(url, `no URL in: ${lines[i]}`);
      const response = await wbe.fetch(url, { method: body === undefined ? 'GET' : 'POST', headers, body });
      assert.equal(await response.text(), expected, lines[i]);
      checked += 1;
    }
    assert.ok(checked >= 3, `only ${checked} example calls with an answer were found`);
  });

  it('status answers OK', async () => {
    const response = await wbe.call('status', { widget: 'status' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await response.text(), 'OK');
  });

  it('ts-lodash sums its items', async () => {
    const response = await wbe.call('summary', { widget: 'ts-lodash', query: 'items=web:3,db:1,web:2' });
    assert.deepEqual(await response.json(), { totals: { web: 5, db: 1 }, names: ['db', 'web'] });
  });

  it('json-echo echoes JSON and answers 400 to invalid JSON', async () => {
    const ok = await wbe.call('echo', { widget: 'json-echo', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2]}' });
    assert.deepEqual(await ok.json(), { received: { a: [1, 2] } });
    const bad = await wbe.call('echo', { widget: 'json-echo', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).message, /JSON/);
  });

  it('manager-info lists every blueprint with the caller’s token', async () => {
    const response = await wbe.call('blueprints', { widget: 'manager-info', headers: { cookie: 'XSRF-TOKEN=good-token' } });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.count, 2500);
    assert.equal(body.ids[2499], 'bp-2499');
    const pages = manager.requestsTo('/blueprints');
    assert.equal(pages.length, 3);
    assert.ok(pages.every((p) => p.headers['authentication-token'] === 'good-token' && p.query.get('_include') === 'id,created_at'));
  });

  it('manager-info passes the manager’s not-found error on', async () => {
    const response = await wbe.call('deployment', { widget: 'manager-info', query: 'id=nope' });
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { message: 'Requested `Deployment` with ID `nope` was not found', code: 'not_found_error' });
  });

  it('manager-info fetches any URL with helper.Request', async () => {
    const url = `${manager.url}/api/v3.1/binary`;
    const response = await wbe.call('fetch', { widget: 'manager-info', query: `url=${encodeURIComponent(url)}` });
    assert.deepEqual(await response.json(), { url, bytes: 5 });
  });
});
