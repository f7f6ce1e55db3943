'use strict';
// Starting and talking to a real `wbe serve` for a test: a temporary config, a free port
// (wbe logs the address it bound), the JSON log lines it writes, and a guaranteed stop.
// Every process started here is killed when the test process exits, whatever happened.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const WBE_BIN = process.env.WBE_BIN || path.join(REPO, 'target', 'debug', 'wbe');

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A fresh temporary folder that the sandboxed workers (another uid) can read. */
function tempDir(prefix = 'wbe-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Writes widget folders: `{id: {'backend.js': source, ...}}`; returns the widgets folder. */
function writeWidgets(widgets, root = tempDir('wbe-widgets-')) {
  for (const [id, files] of Object.entries(widgets)) {
    const dir = path.join(root, id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(dir, name);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      fs.writeFileSync(file, content, { mode: 0o644 });
    }
  }
  return root;
}

/** Runs a wbe command to completion: {status, stdout, stderr}. */
function runWbe(args, options = {}) {
  const result = spawnSync(WBE_BIN, args, { encoding: 'utf8', timeout: 60_000, ...options });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Starts `wbe serve`. `config` is TOML text; `args` are extra flags. Resolves once wbe
 * logs that it is listening, with helpers to call it and read its log.
 */
async function startWbe({ widgets = [], config = '', args = [], env = {} } = {}) {
  const dir = tempDir('wbe-config-');
  const configFile = path.join(dir, 'config.toml');
  fs.writeFileSync(configFile, config);
  const argv = ['serve', '--config', configFile, '--listen', '127.0.0.1:0', '--log-format', 'json', '--log-level', 'debug', ...args];
  for (const widgetsDir of [].concat(widgets)) argv.push('--widgets', widgetsDir);

  const child = spawn(WBE_BIN, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  const logs = [];
  const waiters = [];
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    pending += text;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { msg: line, raw: true };
      }
      logs.push(entry);
      for (const waiter of [...waiters]) {
        if (waiter.match(entry)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      }
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));

  /** Resolves with the first log entry (past or future) matching `match`. */
  function waitForLog(match, timeoutMs = 20_000) {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      waiters.push(waiter);
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line within ${timeoutMs} ms; log:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      timer.unref();
      exited.then(({ code }) => reject(new Error(`wbe exited (${code}) before the expected log line; log:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`)));
    });
  }

  const listening = await waitForLog((l) => l.msg === 'listening');
  const base = `http://${listening.addr}`;

  const server = {
    child,
    pid: child.pid,
    base,
    port: Number(listening.addr.split(':').pop()),
    logs,
    exited,
    waitForLog,
    /** `fetch` on a wbe path. */
    fetch(pathname, init = {}) {
      return fetch(base + pathname, init);
    },
    /** Calls a widget endpoint: `call('status', {widget: 'status', method, headers, body, query})`. */
    call(name, { widget, method = 'GET', headers = {}, body, query = '' } = {}) {
      const allHeaders = { ...headers };
      if (widget !== undefined) allHeaders['widget-id'] = widget;
      const qs = query ? `?${query}` : '';
      return fetch(`${base}/console/wb/${name}${qs}`, { method, headers: allHeaders, body, duplex: body ? 'half' : undefined });
    },
    async status() {
      return (await fetch(`${base}/_wbe/status`)).json();
    },
    async widgetStatus(id) {
      return (await server.status()).widgets.find((w) => w.id === id);
    },
    /** Peak resident memory of the gateway process, in bytes. */
    peakRss() {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1]) * 1024;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  return server;
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
async function eventually(check, { timeoutMs = 15_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Whether the process with this pid is still alive. */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

module.exports = { REPO, WBE_BIN, tempDir, writeWidgets, runWbe, startWbe, eventually, alive };
