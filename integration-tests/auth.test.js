'use strict';
// Authentication against the manager (CONTRACT.md §2, 401): the XSRF-TOKEN cookie is
// checked with GET /user?_get_data=true and Authentication-Token; the answer is cached
// for auth.cache_ttl; the handler sees the manager's user object as req.user.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startWbe, fixtureWidgets } = require('./lib/wbe');
const { startFakeManager, USERS } = require('./lib/fake-manager');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function assert401(response) {
  const text = await response.text();
  assert.equal(response.status, 401, text);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  const body = JSON.parse(text);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  return body;
}

// A fake manager and a wbe serving the req-info widget with `config` and `--auth mode`,
// for the tests of the enclosing describe(): `served.manager`, `served.wbe`.
function serveReqInfo({ config, mode }) {
  const served = {};
  before(async () => {
    served.manager = await startFakeManager();
    served.wbe = await startWbe({
      widgets: fixtureWidgets(['req-info']),
      config,
      args: ['--auth', mode, '--manager-url', served.manager.url],
    });
  });
  after(async () => {
    await served.wbe.stop();
    await served.manager.stop();
  });
  return served;
}

describe('--auth manager', () => {
  const served = serveReqInfo({ config: '[auth]\ncache_ttl = "10m"\n', mode: 'manager' });
  const userCalls = () => served.manager.requestsTo('/user');

  it('answers 401 JSON without an XSRF-TOKEN cookie, without asking the manager', async () => {
    const before = userCalls().length;
    const body = await assert401(await served.wbe.call('info', { widget: 'req-info' }));
    assert.match(body.message, /XSRF-TOKEN|token|unauthori[sz]ed/i);
    await assert401(await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'other=1; XSRF-TOKENX=good-token' } }));
    assert.equal(userCalls().length, before);
  });

  it('answers 401 JSON when the manager rejects the token', async () => {
    await assert401(await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=bad-token' } }));
    const asked = userCalls().filter((r) => r.headers['authentication-token'] === 'bad-token');
    assert.equal(asked.length, 1);
    assert.equal(asked[0].method, 'GET');
    assert.equal(asked[0].query.get('_get_data'), 'true');
  });

  it('serves a good token and gives the handler the manager user as req.user', async () => {
    const response = await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'a=1; XSRF-TOKEN=good-token; b=2' } });
    assert.equal(response.status, 200);
    const seen = await response.json();
    assert.deepEqual(seen.user, USERS['good-token']);
    assert.equal(seen.cookies['XSRF-TOKEN'], 'good-token');
    const asked = userCalls().filter((r) => r.headers['authentication-token'] === 'good-token');
    assert.ok(asked.length >= 1);
    assert.equal(asked[0].path, '/api/v3.1/user');
  });

  it('asks the manager once for repeated calls within cache_ttl, per token', async () => {
    const viewer = () => userCalls().filter((r) => r.headers['authentication-token'] === 'viewer-token').length;
    assert.equal(viewer(), 0);
    for (let i = 0; i < 5; i += 1) {
      const response = await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=viewer-token' } });
      assert.equal(response.status, 200);
      assert.equal((await response.json()).user.username, 'viewer');
    }
    assert.equal(viewer(), 1);
    // Another token is another cache entry: its own user, not the cached one.
    const admin = await (await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=good-token' } })).json();
    assert.equal(admin.user.username, 'admin');
  });

  it('keeps rejecting a bad token (a rejection never becomes a pass)', async () => {
    for (let i = 0; i < 3; i += 1) {
      await assert401(await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=bad-token' } }));
    }
  });
});

describe('--auth manager with a short cache_ttl', () => {
  // The flag wins over the config file's mode.
  const served = serveReqInfo({ config: '[auth]\nmode = "none"\ncache_ttl = "1s"\n', mode: 'manager' });

  it('asks the manager again once the cached answer expired', async () => {
    const asked = () => served.manager.requestsTo('/user').length;
    const call = () => served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=good-token' } });
    assert.equal((await call()).status, 200);
    assert.equal(asked(), 1);
    await sleep(2500);
    const again = await call();
    assert.equal(again.status, 200);
    assert.equal((await again.json()).user.username, 'admin');
    assert.equal(asked(), 2);
  });
});

describe('--auth none', () => {
  const served = serveReqInfo({ config: '[auth]\nmode = "manager"\n', mode: 'none' });

  it('serves without a cookie, with req.user null, and never asks the manager', async () => {
    const response = await served.wbe.call('info', { widget: 'req-info' });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).user, null);
    const withBadCookie = await served.wbe.call('info', { widget: 'req-info', headers: { cookie: 'XSRF-TOKEN=bad-token' } });
    assert.equal(withBadCookie.status, 200);
    assert.equal(served.manager.requestsTo('/user').length, 0);
  });
});
