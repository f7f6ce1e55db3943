'use strict';
// docs/SECURITY.md's promises, attacked: every escape in hostile-widgets/attacker must
// fail inside the widget (or cost it its worker), protocol abuse must get the abuser
// restarted, and the well-behaved `victim` and the gateway must keep answering, with
// the gateway's memory bounded. Run with every sandbox layer, then again with Node's
// permission model off to show that the kernel layers hold on their own.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { startWbe, eventually, alive, tempDir, REPO } = require('./lib/wbe');
const { startFakeManager } = require('./lib/fake-manager');

const HOSTILE = path.join(__dirname, 'hostile-widgets');
const SECRET = 'wbe-test-secret-4b1d';

async function attempt(wbe, name, query = '') {
  // An earlier attempt may have cost the attacker its worker: wait for the restart.
  const response = await eventually(async () => {
    const r = await wbe.call(name, { widget: 'attacker', query });
    if (r.status !== 503) return r;
    await r.text();
    return null;
  }, { what: 'the attacker to be serving' });
  const text = await response.text();
  // A killed worker (502) is an acceptable outcome; an answer must say "blocked".
  if (response.status === 502) return { blocked: true, error: text };
  assert.equal(response.status, 200, `${name}: ${text}`);
  return JSON.parse(text);
}

for (const [label, sandboxConfig] of [
  ['every layer', ''],
  ['Node permission model off (kernel layers only)', 'node_permissions = false\n'],
]) {
  describe(`hostile widgets, ${label}`, () => {
    let wbe;
    let manager;
    let layers;
    const root = process.getuid && process.getuid() === 0;
    before(async () => {
      manager = await startFakeManager();
      const caDir = tempDir('wbe-ca-');
      const ca = path.join(caDir, 'ca.pem');
      fs.writeFileSync(ca, 'not a real CA, only a file the widget must not read\n');
      wbe = await startWbe({
        widgets: HOSTILE,
        args: ['--manager-url', manager.url],
        config: `[sandbox]\n${sandboxConfig}[workers]\nheartbeat = "500ms"\nrestart_backoff_min = "100ms"\nrestart_backoff_max = "500ms"\n`,
        env: { WBE_TEST_SECRET: SECRET },
      });
      layers = Object.fromEntries((await wbe.status()).sandbox.map((l) => [l.name, l.active]));
    });
    after(async () => {
      await wbe.stop();
      await manager.stop();
    });

    it('reports the sandbox layers in the log and /_wbe/status', async () => {
      assert.equal(layers.clean_environment, true);
      assert.equal(layers.node_permissions, sandboxConfig === '');
      const line = await wbe.waitForLog((l) => l.layer === 'network_namespace');
      assert.match(line.msg, /sandbox layer (active|NOT active)/);
      if (root) {
        assert.equal(layers.network_namespace, true, 'running as root: the network namespace must be set up');
        assert.equal(layers.user, true, 'running as root: workers must get their own uid');
      }
    });

    it('refuses forbidden modules with a message naming the module and the allow-list', async () => {
      for (const name of ['child_process', 'fs', 'net', 'http', 'worker_threads', 'vm', 'module', 'node-fs']) {
        const result = await attempt(wbe, `require-${name}`);
        assert.equal(result.blocked, true, name);
        assert.match(result.error, /Cannot require '(node:)?[a-z_]+': not allowed in a widget backend \(allowed modules: lodash, body, elkjs; allowed builtins: none\)/);
      }
    });

    it('blocks the known bypasses of require', async () => {
      for (const name of ['process-binding', 'process-dlopen', 'constructor-load', 'main-require', 'function-process', 'dynamic-import', 'main-module', 'symlink']) {
        const result = await attempt(wbe, name);
        assert.equal(result.blocked, true, `${name}: ${JSON.stringify(result)}`);
      }
    });

    it('cannot read files outside its folder or write anywhere', async () => {
      const targets = ['/etc/passwd', path.join(REPO, 'config.toml'), path.join(HOSTILE, 'victim', 'backend.js')];
      for (const target of targets) {
        const result = await attempt(wbe, 'read-file', `path=${encodeURIComponent(target)}`);
        assert.equal(result.blocked, true, `read ${target}: ${JSON.stringify(result)}`);
      }
      for (const target of ['/tmp/wbe-owned', path.join(HOSTILE, 'attacker', 'owned.txt')]) {
        const result = await attempt(wbe, 'write-file', `path=${encodeURIComponent(target)}`);
        assert.equal(result.blocked, true, `write ${target}: ${JSON.stringify(result)}`);
        assert.equal(fs.existsSync(target), false);
      }
    });

    it('cannot open network connections, to the gateway, the manager or DNS', async () => {
      for (const port of [wbe.port, manager.port]) {
        const result = await attempt(wbe, 'connect', `port=${port}`);
        assert.equal(result.blocked, true, `port ${port}: ${JSON.stringify(result)}`);
      }
      assert.equal((await attempt(wbe, 'dns')).blocked, true);
    });

    it('cannot spawn processes, fork-bomb, or signal the gateway or another worker', async () => {
      assert.equal((await attempt(wbe, 'spawn')).blocked, true);
      // Landlock must let the worker exec Node itself, so without Node's permission model a
      // widget could start more (equally confined) Node processes: see docs/SECURITY.md.
      if (layers.node_permissions) assert.equal((await attempt(wbe, 'fork-bomb')).blocked, true);
      const victim = (await wbe.widgetStatus('victim')).pid;
      for (const pid of [wbe.pid, victim]) {
        const result = await attempt(wbe, 'signal', `pid=${pid}`);
        if (root) assert.equal(result.blocked, true, `signal ${pid}: ${JSON.stringify(result)}`);
      }
      assert.equal(alive(wbe.pid), true);
      assert.equal(alive(victim), true);
    });

    it("cannot read the gateway's environment", async () => {
      const result = await attempt(wbe, 'env');
      assert.equal(result.blocked, true, JSON.stringify(result));
      assert.doesNotMatch(JSON.stringify(result), new RegExp(SECRET));
    });

    it("cannot make helper.Manager leave the manager's API", async () => {
      const before = manager.requests.length;
      for (const url of ['../../x', 'http://other-host/', '//other-host/x', '/%2e%2e/%2e%2e/x']) {
        const result = await attempt(wbe, 'manager', `url=${encodeURIComponent(url)}`);
        assert.equal(result.blocked, true, url);
        assert.match(result.error, /refused/);
      }
      const crlf = await attempt(wbe, 'manager', `url=/blueprints&header=${encodeURIComponent('a\r\nHost: evil')}`);
      assert.equal(crlf.blocked, true);
      assert.equal(manager.requests.length, before, 'nothing reached the manager');
    });

    it('cannot reach link-local or cloud-metadata hosts with helper.Request', async () => {
      const result = await attempt(wbe, 'request', `url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`);
      assert.equal(result.blocked, true);
      assert.match(result.error, /refused: host not allowed/);
    });

    it('cannot inject response headers', async () => {
      const response = await wbe.call('set-header', { widget: 'attacker', query: `name=x-a&value=${encodeURIComponent('a\r\nSet-Cookie: evil=1')}` });
      assert.equal(response.headers.get('set-cookie'), null);
      assert.equal((await response.json()).blocked, true);
      const badName = await wbe.call('set-header', { widget: 'attacker', query: `name=${encodeURIComponent('bad name')}&value=1` });
      assert.equal((await badName.json()).blocked, true);
    });

    it('abusing the protocol gets the worker restarted, not the gateway hurt', async () => {
      const peakBefore = wbe.peakRss();
      const abuses = ['garbage', 'unknown-type', 'unknown-id', 'response-on-control', 'lane-garbage', 'lane-unknown-id',
        'log-on-lane', 'oversized-payload', 'endless-line', 'call-flood'];
      for (const abuse of abuses) {
        const pid = await eventually(async () => {
          const r = await wbe.call('pid', { widget: 'protocol-abuser' });
          return r.status === 200 && (await r.json()).pid;
        }, { what: 'protocol-abuser serving' });
        const response = await wbe.call(abuse, { widget: 'protocol-abuser' });
        assert.equal(response.status, 502, abuse);
        const { message } = await response.json();
        assert.match(message, /protocol fault/, abuse);
        // Refused at the line that announces it, before a byte of it is buffered.
        if (abuse === 'oversized-payload') assert.match(message, /announces 1073741824 payload bytes/);
        await eventually(() => !alive(pid), { what: `${abuse}: the faulty worker gone` });
        const victim = await wbe.call('ping', { widget: 'victim' });
        assert.equal(victim.status, 200);
        await victim.text();
      }
      assert.ok(wbe.peakRss() - peakBefore < 64 * 1024 * 1024, `gateway grew by ${(wbe.peakRss() - peakBefore) >> 20} MB`);
    });

    it('cannot make the gateway hold many large helper responses at once', async () => {
      const body = Buffer.alloc(4 * 1024 * 1024, 7);
      const server = http.createServer((req, res) => res.end(body));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${server.address().port}/big`;
        const peakBefore = wbe.peakRss();
        const result = await attempt(wbe, 'hoard', `n=32&url=${encodeURIComponent(url)}`);
        assert.ok(result.ok >= 1, JSON.stringify(result));
        assert.ok(result.ok < 32, `all 32 responses of 4 MiB were held at once: ${JSON.stringify(result)}`);
        assert.ok(result.errors.length > 0 && result.errors.every((e) => /helper calls already hold 64 MiB in the gateway/.test(e)), JSON.stringify(result.errors));
        const grown = wbe.peakRss() - peakBefore;
        assert.ok(grown < 256 * 1024 * 1024, `gateway grew by ${grown >> 20} MB`);
      } finally {
        server.close();
      }
      assert.equal((await wbe.call('ping', { widget: 'victim' })).status, 200);
    });

    it('cannot flood the gateway log through raw stderr writes', async () => {
      const peakBefore = wbe.peakRss();
      const response = await wbe.call('raw-stderr', { widget: 'attacker' });
      assert.equal(await response.text(), 'written');
      const huge = await wbe.waitForLog((l) => l.widget === 'attacker' && l.stream === 'stderr' && l.msg.startsWith('huge '));
      assert.ok(huge.msg.length <= 64 * 1024 + 64, `a ${huge.msg.length}-character line reached the log`);
      assert.match(huge.msg, /… \(line cut at 64 KiB\)$/);
      const report = await wbe.waitForLog((l) => l.widget === 'attacker' && /worker wrote to stderr more than 1000 lines/.test(l.msg));
      assert.match(report.msg, /\d+ lines dropped/);
      const flood = wbe.logs.filter((l) => l.widget === 'attacker' && /^flood \d+$/.test(l.msg)).length;
      // The allowance is per second of the gateway's clock: a burst that straddles the
      // start of a new second gets at most two seconds' worth.
      assert.ok(flood < 2000, `${flood} flood lines reached the log`);
      assert.ok(wbe.peakRss() - peakBefore < 64 * 1024 * 1024, `gateway grew by ${(wbe.peakRss() - peakBefore) >> 20} MB`);
    });

    it('the well-behaved widget and the gateway kept answering', async () => {
      const response = await wbe.call('ping', { widget: 'victim' });
      assert.equal(response.status, 200);
      assert.equal((await response.json()).ok, true);
      assert.equal((await wbe.fetch('/_wbe/health')).status, 200);
    });
  });
}

describe('a gateway that cannot set up every layer', { skip: process.getuid() === 0 ? false : 'needs root to start wbe as another user' }, () => {
  const { spawnSync, spawn } = require('node:child_process');
  const { WBE_BIN, writeWidgets } = require('./lib/wbe');
  const NOBODY = { uid: 65534, gid: 65534 };

  function configFile(text) {
    const file = path.join(tempDir('wbe-unprivileged-'), 'config.toml');
    fs.writeFileSync(file, text, { mode: 0o644 });
    return file;
  }

  it('refuses to start with sandbox.required, naming what is missing', () => {
    const result = spawnSync(WBE_BIN, ['serve', '--config', configFile('[sandbox]\nrequired = true\n'), '--widgets', HOSTILE, '--listen', '127.0.0.1:0'],
      { ...NOBODY, encoding: 'utf8', timeout: 60_000, env: {} });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /sandbox\.required is set but these layers cannot be set up: .*user \(wbe is not running as root/);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  });

  it('without it, starts, says which layers are off, and still serves', async () => {
    const widgets = writeWidgets({ plain: { 'backend.js': "module.exports = (r) => r.register('ping', (req, res) => res.send('pong'));" } });
    const child = spawn(WBE_BIN, ['serve', '--config', configFile(''), '--widgets', widgets, '--listen', '127.0.0.1:0', '--log-format', 'json'],
      { ...NOBODY, stdio: ['ignore', 'ignore', 'pipe'], env: {} });
    let log = '';
    child.stderr.on('data', (d) => { log += d; });
    try {
      const addr = await eventually(() => (/"msg":"listening".*?"addr":"([^"]+)"/.exec(log) || [])[1], { what: `listening (${log})` });
      assert.match(log, /"msg":"sandbox layer NOT active: wbe is not running as root, so workers keep its uid".*"layer":"user"/);
      const status = await (await fetch(`http://${addr}/_wbe/status`)).json();
      assert.equal(status.sandbox.find((l) => l.name === 'user').active, false);
      assert.equal(status.sandbox.find((l) => l.name === 'node_permissions').active, true);
      const response = await fetch(`http://${addr}/console/wb/ping`, { headers: { 'widget-id': 'plain' } });
      assert.equal(await response.text(), 'pong');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  });
});
