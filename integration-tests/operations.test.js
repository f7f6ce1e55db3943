'use strict';
// Running wbe for months: hot reload without failed requests, the /_wbe/ endpoints, the
// status page (rendered in headless Chromium when it is installed), and both log formats.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync, spawn } = require('node:child_process');
const { startWbe, writeWidgets, eventually, WBE_BIN, tempDir } = require('./lib/wbe');

const version = (v) => `module.exports = (r) => r.register('version', (req, res) => res.send('${v}'));`;

/** Keeps `loops` clients calling `widget`'s `version` until stopped; counts every answer. */
function steadyLoad(wbe, widget, loops = 4) {
  const seen = { ok: 0, failed: [], bodies: new Set() };
  let running = true;
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      try {
        const response = await wbe.call('version', { widget });
        const body = await response.text();
        if (response.status === 200) {
          seen.ok += 1;
          seen.bodies.add(body);
        } else {
          seen.failed.push(`${response.status} ${body}`);
        }
      } catch (e) {
        seen.failed.push(String(e));
      }
    }
  });
  return {
    seen,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return seen;
    },
  };
}

function writeBackend(root, widget, source) {
  const file = path.join(root, widget, 'backend.js');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, source, { mode: 0o644 });
}

describe('hot reload', () => {
  let wbe;
  let root;
  before(async () => {
    root = writeWidgets({ live: { 'backend.js': version('v1') } });
    wbe = await startWbe({ widgets: root });
  });
  after(() => wbe.stop());

  it('a changed backend takes effect with no failed request under load', async () => {
    const load = steadyLoad(wbe, 'live');
    await eventually(() => load.seen.ok > 20, { what: 'load to start' });
    writeBackend(root, 'live', version('v2'));
    await eventually(async () => (await (await wbe.call('version', { widget: 'live' })).text()) === 'v2', { what: 'v2 serving' });
    await eventually(() => load.seen.ok > 200, { what: 'more load after the swap' });
    const seen = await load.stop();
    assert.deepEqual(seen.failed, [], 'no request failed during the reload');
    assert.ok(seen.bodies.has('v1') && seen.bodies.has('v2'));
    await wbe.waitForLog((l) => l.msg === 'backend changed: loading the new version' && l.widget === 'live');
  });

  it('a version that no longer loads keeps the last good one serving and shows the error', async () => {
    writeBackend(root, 'live', "module.exports = (r) => r.register('version', 'FETCH', () => {});");
    const status = await eventually(async () => {
      const w = await wbe.widgetStatus('live');
      return w.load_error && w;
    }, { what: 'the load error in /_wbe/status' });
    assert.equal(status.state, 'ready');
    assert.match(status.load_error.message, /Method 'FETCH' not allowed/);
    assert.match(status.load_error.file, /live\/backend\.js$/);
    assert.equal(status.load_error.line, 1);
    const response = await wbe.call('version', { widget: 'live' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'v2');
    writeBackend(root, 'live', version('v3'));
    await eventually(async () => (await (await wbe.call('version', { widget: 'live' })).text()) === 'v3', { what: 'v3 serving' });
    assert.equal((await wbe.widgetStatus('live')).load_error, null);
  });

  it('added and removed widgets take effect without a restart', async () => {
    writeBackend(root, 'newcomer', version('new'));
    await eventually(async () => (await wbe.call('version', { widget: 'newcomer' })).status === 200, { what: 'the new widget' });
    const pid = (await wbe.widgetStatus('newcomer')).pid;
    fs.rmSync(path.join(root, 'newcomer'), { recursive: true });
    await eventually(async () => (await wbe.call('version', { widget: 'newcomer' })).status === 404, { what: 'the widget gone' });
    await eventually(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, { what: "the removed widget's worker to stop" });
  });
});

describe('the last good version outlives a crash', () => {
  // A backend that takes its answer from a file of its own, and can be made to crash.
  const good = (name) => ({
    'backend.js': "const name = require('./lib/name');\n" +
      "module.exports = (r) => {\n  r.register('version', (req, res) => res.send(name));\n  r.register('crash', () => process.exit(3));\n};\n",
    'lib/name.js': `module.exports = '${name}';\n`,
  });
  let wbe;
  let root;
  let dir;
  before(async () => {
    root = writeWidgets({ phoenix: good('good-1') });
    dir = path.join(root, 'phoenix');
    // A backoff long enough to change the files before the restart.
    wbe = await startWbe({ widgets: root, config: '[workers]\nrestart_backoff_min = "2s"\n' });
  });
  after(() => wbe.stop());

  const answer = async () => {
    const response = await wbe.call('version', { widget: 'phoenix' });
    return response.status === 200 && response.text();
  };
  const loadError = () => eventually(async () => {
    const w = await wbe.widgetStatus('phoenix');
    return w.state === 'ready' && w.load_error && w;
  }, { what: 'a load error reported while serving' });
  const crash = async () => {
    const { pid, restarts } = await wbe.widgetStatus('phoenix');
    assert.equal((await wbe.call('crash', { widget: 'phoenix' })).status, 502);
    return { pid, restarts };
  };
  const breakFolder = () => {
    fs.writeFileSync(path.join(dir, 'backend.js'), "module.exports = (r) => { r.register('version', ;\n");
    fs.rmSync(path.join(dir, 'lib'), { recursive: true });
  };

  it('restarts as it loaded when its folder no longer loads', async () => {
    assert.equal(await answer(), 'good-1');
    breakFolder();
    assert.match((await loadError()).load_error.message, /Unexpected token/);
    const before = await crash();
    assert.equal(await eventually(answer, { what: 'serving again after the crash' }), 'good-1');
    const after = await wbe.widgetStatus('phoenix');
    assert.notEqual(after.pid, before.pid);
    assert.equal(after.restarts, before.restarts + 1);
    assert.match(after.load_error.message, /Unexpected token/, 'the folder\'s error is still reported');
    await wbe.waitForLog((l) => l.msg === 'worker ready' && l.widget === 'phoenix' && l.version === 'last good');
  });

  it('falls back to it when the folder breaks during the restart backoff', async () => {
    writeWidgets({ phoenix: good('good-2') }, root);
    await eventually(async () => (await answer()) === 'good-2', { what: 'good-2 serving' });
    assert.equal((await wbe.widgetStatus('phoenix')).load_error, null);
    await crash();
    breakFolder();
    assert.equal(await eventually(answer, { what: 'serving again after the crash' }), 'good-2');
    assert.match((await loadError()).load_error.message, /Unexpected token/);
    await wbe.waitForLog((l) => l.widget === 'phoenix' && l.msg.startsWith('backend failed to load, its last good version serves again'));
    writeWidgets({ phoenix: good('good-3') }, root);
    await eventually(async () => (await answer()) === 'good-3', { what: 'good-3 serving' });
    assert.equal((await wbe.widgetStatus('phoenix')).load_error, null);
  });
});

describe('a widgets folder replaced as a whole', () => {
  const answer = async (wbe) => {
    const response = await wbe.call('version', { widget: 'w' });
    return response.status === 200 && response.text();
  };
  const serving = (wbe, expected) => eventually(async () => (await answer(wbe)) === expected, { what: `${expected} serving` });
  // A folder laid out by writeWidgets, readable by the workers' own uids.
  const release = (base, name, v) => {
    fs.mkdirSync(path.join(base, name), { mode: 0o755 });
    return writeWidgets({ w: { 'backend.js': version(v) } }, path.join(base, name));
  };

  it('is followed when a symlink on the way to it is switched', async () => {
    const base = tempDir('wbe-deploy-');
    release(base, 'release-1', 'r1');
    fs.symlinkSync('release-1', path.join(base, 'current'));
    const wbe = await startWbe({ widgets: path.join(base, 'current') });
    try {
      assert.equal(await answer(wbe), 'r1');
      // What deploy tools do: a new link renamed over the old one, in one step.
      release(base, 'release-2', 'r2');
      fs.symlinkSync('release-2', path.join(base, 'current.new'));
      fs.renameSync(path.join(base, 'current.new'), path.join(base, 'current'));
      await serving(wbe, 'r2');
      // The watch moved with it: an edit in the new release is noticed too.
      writeBackend(path.join(base, 'release-2'), 'w', version('r2-edited'));
      await serving(wbe, 'r2-edited');
      await wbe.waitForLog((l) => l.msg === 'widget folder created or replaced, watching it anew');
    } finally {
      await wbe.stop();
    }
  });

  it('is watched once it exists, when it did not at start', async () => {
    const base = tempDir('wbe-deploy-');
    const widgets = path.join(base, 'widgets');
    const wbe = await startWbe({ widgets });
    try {
      assert.equal((await wbe.call('version', { widget: 'w' })).status, 404);
      release(base, 'widgets', 'late');
      await serving(wbe, 'late');
      writeBackend(widgets, 'w', version('late-edited'));
      await serving(wbe, 'late-edited');
    } finally {
      await wbe.stop();
    }
  });

  it('is followed when a new folder is renamed into its place', async () => {
    const base = tempDir('wbe-deploy-');
    const widgets = release(base, 'widgets', 'a');
    const wbe = await startWbe({ widgets });
    try {
      assert.equal(await answer(wbe), 'a');
      release(base, 'staged', 'b');
      fs.renameSync(widgets, path.join(base, 'widgets.old'));
      fs.renameSync(path.join(base, 'staged'), widgets);
      await serving(wbe, 'b');
      writeBackend(widgets, 'w', version('b-edited'));
      await serving(wbe, 'b-edited');
    } finally {
      await wbe.stop();
    }
  });
});

describe('reload without file notifications', () => {
  it('SIGHUP, POST /_wbe/reload and polling rescan the folders', async () => {
    const root = writeWidgets({ nfs: { 'backend.js': version('a') } });
    const wbe = await startWbe({ widgets: root, config: '[widgets]\nwatch = false\n' });
    try {
      writeBackend(root, 'nfs', version('b'));
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(await (await wbe.call('version', { widget: 'nfs' })).text(), 'a', 'no rescan without a trigger');
      wbe.child.kill('SIGHUP');
      await eventually(async () => (await (await wbe.call('version', { widget: 'nfs' })).text()) === 'b', { what: 'SIGHUP reload' });
      writeBackend(root, 'nfs', version('c'));
      const reload = await wbe.fetch('/_wbe/reload', { method: 'POST' });
      assert.deepEqual(await reload.json(), { added: [], changed: ['nfs'], removed: [] });
      assert.equal(await (await wbe.call('version', { widget: 'nfs' })).text(), 'c', 'POST /_wbe/reload returns once reloaded');
    } finally {
      await wbe.stop();
    }
    const polled = await startWbe({ widgets: root, config: '[widgets]\nwatch = false\npoll_interval = "200ms"\n' });
    try {
      writeBackend(root, 'nfs', version('d'));
      await eventually(async () => (await (await polled.call('version', { widget: 'nfs' })).text()) === 'd', { what: 'polling reload' });
    } finally {
      await polled.stop();
    }
  });
});

describe('operations endpoints', () => {
  let wbe;
  before(async () => {
    const root = writeWidgets({
      good: { 'backend.js': "module.exports = (r) => { r.register('hello', (req, res) => res.send('hi')); r.register('fail', () => { const e = new Error('no'); e.status = 500; throw e; }); };" },
      broken: { 'backend.js': 'module.exports = (r) => {\n  r.register(\n};' },
      plain: { 'widget.js': '' },
    });
    wbe = await startWbe({ widgets: root });
    await (await wbe.call('hello', { widget: 'good' })).text();
    await (await wbe.call('fail', { widget: 'good' })).text();
  });
  after(() => wbe.stop());

  it('health and ready answer', async () => {
    assert.deepEqual(await (await wbe.fetch('/_wbe/health')).json(), { status: 'ok' });
    const ready = await wbe.fetch('/_wbe/ready');
    assert.equal(ready.status, 200);
  });

  it('status has every field of the contract', async () => {
    const status = await wbe.status();
    assert.ok(status.version);
    assert.ok(Array.isArray(status.sandbox));
    const good = status.widgets.find((w) => w.id === 'good');
    assert.equal(good.state, 'ready');
    assert.deepEqual(good.endpoints, [{ name: 'FAIL', method: 'GET' }, { name: 'HELLO', method: 'GET' }]);
    assert.equal(typeof good.pid, 'number');
    assert.equal(good.restarts, 0);
    assert.equal(good.inflight, 0);
    assert.equal(good.requests, 2);
    assert.equal(good.errors, 1);
    assert.ok(good.latency.p50_ms > 0 && good.latency.p99_ms >= good.latency.p50_ms);
    assert.ok(good.memory.rss > 0 || good.memory.rss === 0);
    const broken = status.widgets.find((w) => w.id === 'broken');
    assert.equal(broken.state, 'load_failed');
    assert.equal(broken.load_error.line, 3);
    assert.equal(status.widgets.find((w) => w.id === 'plain').state, 'no_backend');
  });

  it('metrics are Prometheus text with requests, errors, latency, restarts, in-flight and memory', async () => {
    await eventually(async () => (await wbe.widgetStatus('good')).memory.rss > 0, { what: 'a heartbeat to report memory' });
    const response = await wbe.fetch('/_wbe/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^application\/openmetrics-text/);
    const text = await response.text();
    assert.match(text, /^wbe_requests_total\{widget="good",endpoint="hello",method="GET",status="200"\} 1$/m);
    assert.match(text, /^wbe_requests_total\{widget="good",endpoint="fail",method="GET",status="500"\} 1$/m);
    assert.match(text, /^wbe_request_duration_seconds_bucket\{le="\+Inf",widget="good",endpoint="hello"\} 1$/m);
    assert.match(text, /^wbe_worker_restarts_total\{widget="good"\} 0$/m);
    assert.match(text, /^wbe_inflight_requests\{widget="good"\} 0$/m);
    assert.match(text, /^wbe_worker_memory_bytes\{widget="good",kind="rss"\} [1-9]\d*$/m);
    assert.match(text, /# EOF\n$/);
  });

  it('the status page shows widgets, states and load errors in a browser', async (t) => {
    const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
    if (!chromium) {
      t.skip('Chromium is not installed (scripts/setup --with-tests installs it)');
      return;
    }
    const page = await wbe.fetch('/_wbe/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /text\/html/);
    const artifacts = path.join(__dirname, 'artifacts');
    fs.mkdirSync(artifacts, { recursive: true });
    const screenshot = path.join(artifacts, 'status-page.png');
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${tempDir('wbe-chromium-')}`, '--virtual-time-budget=3000'];
    const dom = spawnSync(chromium, [...flags, '--dump-dom', `${wbe.base}/_wbe/`], { encoding: 'utf8', timeout: 60_000 });
    assert.match(dom.stdout, /<tr data-widget="good">/);
    assert.match(dom.stdout, /<span class="state ready">ready<\/span>/);
    assert.match(dom.stdout, /<span class="state load_failed">load failed<\/span>/);
    assert.match(dom.stdout, /broken\/backend\.js:3/);
    assert.match(dom.stdout, /GET hello/);
    spawnSync(chromium, [...flags, '--window-size=1280,600', `--screenshot=${screenshot}`, `${wbe.base}/_wbe/`], { timeout: 60_000 });
    assert.ok(fs.statSync(screenshot).size > 1000, 'a screenshot was saved');
  });
});

describe('log formats', () => {
  it('term and json both log requests and worker lifecycle with the widget id', async () => {
    const root = writeWidgets({ logged: { 'backend.js': version('x') } });
    const wbe = await startWbe({ widgets: root });
    await (await wbe.call('version', { widget: 'logged' })).text();
    await wbe.waitForLog((l) => l.msg === 'worker ready' && l.widget === 'logged' && l.pid > 0);
    await wbe.stop();

    const term = spawn(WBE_BIN, ['serve', '--widgets', root, '--listen', '127.0.0.1:0', '--log-format', 'term'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    term.stderr.on('data', (d) => { text += d; });
    await eventually(() => /listening/.test(text), { what: 'term log' });
    term.kill('SIGTERM');
    await new Promise((r) => term.on('exit', r));
    assert.match(text, /INFO worker ready.*widget: logged/);
    assert.doesNotMatch(text, /^\{/m, 'not JSON');
  });

  it('on a terminal, a widget cannot forge lines or send escape sequences', async () => {
    const forger = "module.exports = (r) => r.register('log', (req, res) => {\n" +
      "  console.log('innocent\\nNov 29 12:00:00.000 INFO FORGED gateway line\\u001b[2J');\n  res.send('ok');\n});\n";
    const root = writeWidgets({ forger: { 'backend.js': forger } });
    const term = spawn(WBE_BIN, ['serve', '--widgets', root, '--listen', '127.0.0.1:0', '--log-format', 'term'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    term.stderr.on('data', (d) => { text += d; });
    try {
      await eventually(() => /listening.*addr: (\S+)/.test(text), { what: 'term log' });
      const addr = /listening.*addr: (\S+)/.exec(text)[1];
      const response = await fetch(`http://${addr}/console/wb/log`, { headers: { 'widget-id': 'forger' } });
      assert.equal(await response.text(), 'ok');
      await eventually(() => /innocent/.test(text), { what: 'the widget log line' });
    } finally {
      term.kill('SIGTERM');
      await new Promise((r) => term.on('exit', r));
    }
    assert.match(text, /innocent\\nNov 29 12:00:00\.000 INFO FORGED gateway line\\u\{1b\}\[2J/);
    assert.doesNotMatch(text, /^Nov 29 12:00:00\.000 INFO FORGED/m);
    assert.ok(!text.includes('\u001b[2J'), 'no raw escape sequence');
  });
});
