'use strict';
// Starting and talking to a real `wbe serve` for a test: a temporary config, a free port
// (wbe logs the address it bound), the JSON log lines it writes, and a guaranteed stop.
// Every process started here is killed when the test process exits, whatever happened.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const WBE_BIN = process.env.WBE_BIN || path.join(REPO, 'target', 'debug', 'wbe');
/** The fixture widgets (one folder per behaviour) and the ones that fail to load. */
const WIDGETS = path.resolve(__dirname, '..', 'widgets');
const BROKEN_WIDGETS = path.resolve(__dirname, '..', 'widgets-broken');
const EXAMPLES = path.join(REPO, 'examples', 'widgets');

const running = new Set();
const tempDirs = [];
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder that the sandboxed workers (another uid) can read; removed at exit. */
function tempDir(prefix = 'wbe-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}

/**
 * A widgets folder holding copies of the named fixture widgets (from widgets/ unless
 * `from` says otherwise), so a test starts only the workers it needs.
 */
function fixtureWidgets(ids, { from = WIDGETS, root = tempDir('wbe-widgets-') } = {}) {
  for (const id of ids) {
    fs.cpSync(path.join(from, id), path.join(root, id), { recursive: true });
  }
  return root;
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
  const result = spawnSync(WBE_BIN, args, { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL', ...options });
  if (result.error) throw result.error;
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Writes TOML text to a temporary config.toml and returns its path. */
function writeConfig(text) {
  const file = path.join(tempDir('wbe-config-'), 'config.toml');
  fs.writeFileSync(file, text);
  return file;
}

/**
 * Starts `wbe serve`. `config` is TOML text; `args` are extra flags. Resolves once wbe
 * logs that it is listening, with helpers to call it and read its log.
 */
async function startWbe({ widgets = [], config = '', args = [], env = {} } = {}) {
  const configFile = writeConfig(config);
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
      // WBE_TEST_VERBOSE=1 shows every wbe log line, for debugging a failing test.
      if (process.env.WBE_TEST_VERBOSE) process.stderr.write(`[wbe ${child.pid}] ${line}\n`);
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
    /** Calls a widget endpoint: `call('status', {widget: 'status', method, headers, body, query, signal})`. */
    call(name, { widget, method = 'GET', headers = {}, body, query = '', signal } = {}) {
      const allHeaders = { ...headers };
      if (widget !== undefined) allHeaders['widget-id'] = widget;
      const qs = query ? `?${query}` : '';
      return fetch(`${base}/console/wb/${name}${qs}`, { method, headers: allHeaders, body, duplex: body ? 'half' : undefined, signal });
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

/** Whether the process with this pid is still alive (a zombie awaiting its reaper is not). */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A plain node:http request (for what fetch will not send: a Host header, exact raw
 * headers, streamed bodies). Resolves {status, headers, rawHeaders, body: Buffer}.
 * `body` may be a string, a Buffer or an async iterable of Buffers.
 */
function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      (async () => {
        for await (const chunk of body) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch((e) => req.destroy(e));
    }
  });
}

/** Raw bytes over TCP (for requests no HTTP client will send); resolves what came back. */
function rawRequest(port, text, { timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    let data = '';
    socket.setEncoding('latin1');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms; got: ${data}`)));
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => resolve(data));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

module.exports = {
  REPO, WBE_BIN, WIDGETS, BROKEN_WIDGETS, EXAMPLES,
  tempDir, writeWidgets, fixtureWidgets, writeConfig, runWbe, startWbe, eventually, alive,
  httpRequest, rawRequest, closedPort,
};
