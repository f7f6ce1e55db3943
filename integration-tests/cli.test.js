'use strict';
// The command line (CONTRACT.md §3, §4): --version, help, check exit codes, call,
// config errors naming the key, flags overriding the config file, and SIGTERM.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { REPO, WIDGETS, BROKEN_WIDGETS, runWbe, startWbe, fixtureWidgets, writeConfig, closedPort, alive, eventually, tempDir } = require('./lib/wbe');
const { startFakeManager } = require('./lib/fake-manager');

const CARGO_VERSION = /^version = "([^"]+)"/m.exec(fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8'))[1];

/** Splits `wbe call` output into status line, headers and body. */
function parseCallOutput(stdout) {
  const split = stdout.indexOf('\n\n') >= 0 ? stdout.indexOf('\n\n') : stdout.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no blank line between headers and body in:\n${stdout}`);
  const [statusLine, ...headerLines] = stdout.slice(0, split).split(/\r?\n/);
  const headers = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = stdout.slice(split).replace(/^\r?\n\r?\n/, '');
  return { statusLine, headers, body };
}

describe('wbe --version and help', () => {
  it('--version prints the crate version and exits 0', () => {
    const result = runWbe(['--version']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), `wbe ${CARGO_VERSION}`);
  });

  it('help lists the commands and exits 0', () => {
    const result = runWbe(['help']);
    assert.equal(result.status, 0, result.stderr);
    for (const command of ['serve', 'check', 'call']) assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('an unknown command exits non-zero', () => {
    const result = runWbe(['frobnicate']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /frobnicate/);
  });
});

describe('wbe check', () => {
  it('refuses to start, naming what to run, when the shim\'s npm dependencies are not installed', () => {
    const home = tempDir('wbe-home-');
    fs.cpSync(path.join(REPO, 'node-shim'), path.join(home, 'node-shim'), { recursive: true, filter: (src) => path.basename(src) !== 'node_modules' });
    for (const command of [['check'], ['serve', '--listen', '127.0.0.1:0']]) {
      const result = runWbe([...command, '--widgets', WIDGETS], { env: { ...process.env, WBE_HOME: home } });
      assert.notEqual(result.status, 0, command[0]);
      assert.match(result.stderr, /the Node shim's dependencies are not installed in .*node-shim\/node_modules \(missing: .*\bqs\b.*\); run scripts\/setup/, command[0]);
    }
  });

  it('exits 0 when every widget loads and prints each with its endpoints', () => {
    const config = writeConfig('[widgets]\nallowed_builtins = ["crypto"]\n');
    const result = runWbe(['check', '--config', config, '--widgets', WIDGETS]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^alpha: ok: POST data, GET status, GET whoami$/m);
    assert.match(result.stdout, /^ts-widget: .*GET sorted/m);
    assert.match(result.stdout, /^stream: .*POST upload/m);
    assert.match(result.stdout, /^no-backend: /m);
    assert.doesNotMatch(result.stdout, /^common\b/m);
    assert.doesNotMatch(result.stdout, /README/);
  });

  it('exits 1 when one widget fails, naming it (the config decides: crypto not allowed)', () => {
    const result = runWbe(['check', '--widgets', WIDGETS]);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^stream: FAILED: Cannot require 'crypto'.*stream\/backend\.js:\d+/m);
    assert.match(result.stdout, /^alpha: ok/m);
  });

  it('exits 1 for the broken widgets folder', () => {
    assert.equal(runWbe(['check', '--widgets', BROKEN_WIDGETS]).status, 1);
  });

  it('checks several --widgets folders together', () => {
    const result = runWbe(['check', '--widgets', fixtureWidgets(['alpha']), '--widgets', fixtureWidgets(['beta'])]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^alpha: ok/m);
    assert.match(result.stdout, /^beta: ok/m);
  });
});

describe('wbe call', () => {
  const widgets = fixtureWidgets(['alpha', 'req-info', 'json-body', 'manager-calls']);

  it('prints status line, headers, blank line and body', () => {
    const result = runWbe(['call', '--widgets', widgets, '--widget', 'alpha', 'status']);
    assert.equal(result.status, 0, result.stderr);
    const { statusLine, headers, body } = parseCallOutput(result.stdout);
    assert.match(statusLine, /^HTTP\/1\.1 200 OK$/);
    assert.equal(headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(headers['content-length'], '8');
    assert.equal(body, 'alpha OK');
  });

  it('passes -X, --query, --header and --data to the handler', () => {
    const result = runWbe(['call', '--widgets', widgets, '--widget', 'req-info', '-X', 'POST', 'info',
      '--query', 'a=1', '--query', 'b[c]=2', '--query', 'a=3', '--header', 'X-Custom-Header: from-cli', '--data', '{"x":1}']);
    assert.equal(result.status, 0, result.stderr);
    const { statusLine, body } = parseCallOutput(result.stdout);
    assert.match(statusLine, / 200 /);
    const seen = JSON.parse(body);
    assert.equal(seen.method, 'POST');
    assert.deepEqual(seen.query, { a: ['1', '3'], b: { c: '2' } });
    assert.equal(seen.getCustom, 'from-cli');
    assert.equal(seen.params.service, 'info');
  });

  it('delivers --data as the request body', () => {
    const result = runWbe(['call', '--widgets', widgets, '--widget', 'json-body', '-X', 'POST', 'echo',
      '--header', 'Content-Type: application/json', '--data', '{"hello":["w","b","e"]}']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(parseCallOutput(result.stdout).body), { received: { hello: ['w', 'b', 'e'] }, contentType: 'application/json' });
  });

  it('prints the gateway’s error response for an unknown endpoint', () => {
    const result = runWbe(['call', '--widgets', widgets, '--widget', 'alpha', 'nope']);
    const { statusLine, body } = parseCallOutput(result.stdout);
    assert.match(statusLine, / 404 /);
    assert.match(JSON.parse(body).message, /NOPE/);
  });

  it('reaches the manager given by --manager-url', async () => {
    const manager = await startFakeManager({ blueprints: 20 });
    try {
      const { spawn } = require('node:child_process');
      const { WBE_BIN } = require('./lib/wbe');
      // Asynchronously: the fake manager runs in this process.
      const child = spawn(WBE_BIN, ['call', '--widgets', widgets, '--widget', 'manager-calls', 'blueprints',
        '--manager-url', manager.url, '--header', 'Cookie: XSRF-TOKEN=good-token']);
      let stdout = '';
      child.stdout.on('data', (d) => { stdout += d; });
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await new Promise((resolve) => child.on('exit', resolve));
      clearTimeout(killer);
      assert.equal(code, 0);
      const result = JSON.parse(parseCallOutput(stdout).body);
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.value.metadata.pagination.total, 20);
      assert.equal(manager.requestsTo('/blueprints').at(-1).headers['authentication-token'], 'good-token');
    } finally {
      await manager.stop();
    }
  });
});

describe('config errors', () => {
  const cases = [
    ['an unknown key', '[server]\nlisen = "127.0.0.1:1"\n', 'server.lisen'],
    ['a bad duration', '[workers]\nhandler_timeout = "abc"\n', 'workers.handler_timeout'],
    ['a bad size', '[server]\nmax_body_size = "lots"\n', 'server.max_body_size'],
    ['a wrong type', '[workers]\nmax_inflight = "many"\n', 'workers.max_inflight'],
    ['an unknown section', '[serverz]\nlisten = "127.0.0.1:1"\n', 'serverz'],
    ['an unknown auth mode', '[auth]\nmode = "maybe"\n', 'auth.mode'],
    ['a bad manager timeout', '[manager.timeouts]\nget = "soon"\n', 'manager.timeouts.get'],
  ];
  for (const [what, toml, key] of cases) {
    it(`${what} exits non-zero with one line naming ${key}`, () => {
      const config = writeConfig(toml);
      for (const command of [['serve'], ['check']]) {
        const result = runWbe([...command, '--config', config, '--widgets', fixtureWidgets(['alpha'])], { timeout: 20_000 });
        assert.notEqual(result.status, 0, `${command}: ${result.stderr}`);
        assert.equal(result.signal, null, `${command} did not exit by itself`);
        const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
        assert.equal(lines.length, 1, `${command}: expected one line, got:\n${result.stderr}`);
        assert.ok(lines[0].includes(key), `${command}: ${lines[0]}`);
      }
    });
  }

  it('a TOML syntax error exits non-zero with one line naming the file, line and column', () => {
    const config = writeConfig('[server]\nlisten = \n');
    const result = runWbe(['serve', '--config', config], { timeout: 20_000 });
    assert.notEqual(result.status, 0);
    assert.equal(result.stderr.split('\n').filter((l) => l.trim() !== '').length, 1, result.stderr);
    assert.ok(result.stderr.includes(`${config}: line 2, column 10: `), result.stderr);
  });

  it('a missing config file exits non-zero naming it', () => {
    const result = runWbe(['serve', '--config', '/nonexistent/wbe.toml'], { timeout: 20_000 });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /\/nonexistent\/wbe\.toml/);
  });
});

describe('flags override the config file', () => {
  let manager;
  let wbe;
  before(async () => {
    manager = await startFakeManager({ blueprints: 7 });
    const config = [
      '[server]', 'listen = "127.0.0.1:1"',
      '[auth]', 'mode = "manager"',
      '[manager]', `url = "http://127.0.0.1:${await closedPort()}"`,
      '[widgets]', `dirs = [${JSON.stringify(BROKEN_WIDGETS)}]`,
      '[log]', 'format = "term"', 'level = "error"',
    ].join('\n');
    wbe = await startWbe({
      widgets: fixtureWidgets(['alpha', 'manager-calls']),
      config,
      args: ['--auth', 'none', '--manager-url', manager.url],
    });
  });
  after(async () => {
    if (wbe) await wbe.stop();
    await manager.stop();
  });

  it('--listen, --log-format and --log-level win over [server] and [log]', () => {
    assert.notEqual(wbe.port, 1);
    assert.ok(wbe.logs.length > 1);
    assert.equal(wbe.logs.filter((l) => l.raw).length, 0, 'a log line was not JSON');
    assert.ok(wbe.logs.some((l) => /^INFO/i.test(String(l.level))));
  });

  it('--auth none wins over auth.mode = "manager"', async () => {
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });

  it('--manager-url wins over manager.url', async () => {
    const response = await wbe.call('blueprints', { widget: 'manager-calls' });
    const result = await response.json();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.value.metadata.pagination.total, 7);
  });

  it('--widgets replaces widgets.dirs', async () => {
    assert.equal((await wbe.call('status', { widget: 'throw-at-load' })).status, 404);
  });
});

describe('SIGTERM', () => {
  it('stops wbe with exit 0 and no worker left behind', async () => {
    const wbe = await startWbe({ widgets: fixtureWidgets(['alpha', 'beta']) });
    let pids = [];
    try {
      assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
      const status = await wbe.status();
      pids = status.widgets.map((w) => w.pid).filter(Boolean);
      assert.equal(pids.length, 2);
      for (const pid of pids) assert.equal(alive(pid), true);
    } finally {
      const { code, signal } = await wbe.stop('SIGTERM');
      assert.equal(signal, null);
      assert.equal(code, 0);
    }
    await eventually(() => pids.every((pid) => !alive(pid)), { what: 'workers to exit' });
  });
});
