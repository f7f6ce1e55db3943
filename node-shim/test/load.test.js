'use strict';
// Handshake and loading: the stage's register rules and messages, load errors with the
// file and line a widget author must fix, TypeScript backends, and the require guard.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Shim, fixture } = require('./harness');

async function loadError(dir, file = 'backend.js') {
  const [shim, hello] = await Shim.start(fixture(dir, file));
  const code = await shim.exited;
  assert.ok(hello.error, `expected a load error, got ${JSON.stringify(hello)}`);
  assert.strictEqual(code, 1, 'the shim exits after a load error');
  return hello.error;
}

const REGISTER_ERRORS = [
  ['not-function', 'Backend definition must be a function (module.exports = function(BackendRegistrator) {...})', undefined],
  ['export-default-object', 'Backend definition must be a function (module.exports = function(BackendRegistrator) {...})', undefined],
  ['no-name', 'Service name must be provided', 2],
  ['bad-method', "Method 'HEAD' not allowed. Valid methods: GET,POST,PUT,DELETE,PATCH", 2],
  ['no-body', 'Service body must be provided', 2],
  ['body-not-function', 'Service body must be a function (function(request, response, next, helper) {...})', 2],
  ['caught-register-error', "Method 'TRACE' not allowed. Valid methods: GET,POST,PUT,DELETE,PATCH", 4],
];

for (const [dir, message, line] of REGISTER_ERRORS) {
  test(`load error: ${dir}`, async () => {
    const error = await loadError(dir);
    assert.strictEqual(error.message, message);
    assert.strictEqual(error.file, fixture(dir, 'backend.js'));
    assert.strictEqual(error.line, line);
  });
}

test('a syntax error reports its file and line', async () => {
  const error = await loadError('syntax-error');
  assert.match(error.message, /Unexpected token/);
  assert.strictEqual(error.file, fixture('syntax-error', 'backend.js'));
  assert.strictEqual(error.line, 3);
});

test('a throw at load time reports its file and line', async () => {
  const error = await loadError('throw-at-load');
  assert.strictEqual(error.message, 'load failed here');
  assert.strictEqual(error.line, 3);
  assert.match(error.stack, /backend\.js:3/);
});

test('TypeScript: a throw at load time points at the .ts line', async () => {
  const error = await loadError('ts-throw-at-load', 'backend.ts');
  assert.strictEqual(error.message, 'ts load failure 3');
  assert.strictEqual(error.file, fixture('ts-throw-at-load', 'backend.ts'));
  assert.strictEqual(error.line, 5);
});

test('TypeScript: a syntax error points at the .ts line', async () => {
  const error = await loadError('ts-syntax-error', 'backend.ts');
  assert.match(error.message, /Unexpected token/);
  assert.strictEqual(error.line, 2);
});

test('TypeScript backend with export default, import type and declare module', async () => {
  const [shim, hello] = await Shim.start(fixture('ts-widget', 'backend.ts'));
  assert.deepStrictEqual(hello.endpoints, [{ name: 'NAMES', method: 'GET' }, { name: 'BOOM', method: 'GET' }]);
  const ok = await shim.request({ url: '/console/wb/names' });
  assert.strictEqual(ok.body.toString(), '{"count":2,"names":["a","b"]}');

  const boom = await shim.request({ url: '/console/wb/boom' });
  assert.strictEqual(boom.status, 404);
  assert.strictEqual(boom.body.toString(), '{"message":"thrown on line 16"}');
  // The log travels on the control channel, the response on its lane: it may come later.
  const logged = await shim.waitFor((f) => f.t === 'log' && f.level === 'error' && f.msg.includes('thrown on line 16'));
  assert.match(logged.msg, new RegExp(`${fixture('ts-widget', 'backend.ts')}:16:`));
  await shim.stop();
});

test('a backend that registers nothing loads with no endpoints', async () => {
  const [shim, hello] = await Shim.start(fixture('empty', 'backend.js'));
  const backend = fixture('empty', 'backend.js');
  assert.deepStrictEqual(hello, { t: 'hello', v: 4, endpoints: [], sources: { [backend]: fs.readFileSync(backend, 'utf8') } });
  await shim.stop();
});

test('an unsupported protocol version is refused', async () => {
  const [shim, hello] = await Shim.start(fixture('empty', 'backend.js'), { version: 3 });
  assert.deepStrictEqual(hello.error, { message: 'protocol version 3 not supported (shim speaks 4)' });
  assert.strictEqual(await shim.exited, 1);
});

test('require guard: allowed modules, sub-paths, own files and JSON', async () => {
  const [shim] = await Shim.start(fixture('guard', 'backend.js'));
  const own = await shim.request({ url: '/console/wb/own' });
  assert.strictEqual(own.body.toString(), '{"helper":42,"data":{"answer":42},"chunk":[[1,2],[3]]}');

  const tryRequire = async (name) => JSON.parse((await shim.request({ url: `/console/wb/try?name=${encodeURIComponent(name)}` })).body);
  assert.deepStrictEqual(await tryRequire('lodash/fp'), { ok: true, type: 'function' });
  assert.deepStrictEqual(await tryRequire('body/json'), { ok: true, type: 'function' });
  assert.deepStrictEqual(await tryRequire('elkjs'), { ok: true, type: 'function' });
  const refusal = (name) =>
    `Cannot require '${name}': not allowed in a widget backend (allowed modules: lodash, body, elkjs; allowed builtins: none)`;
  for (const name of ['fs', 'node:fs', 'child_process', 'fs/promises', 'express', 'sucrase']) {
    assert.deepStrictEqual(await tryRequire(name), { ok: false, message: refusal(name) }, name);
  }
  const escape = await tryRequire('../empty/backend.js');
  assert.strictEqual(escape.ok, false);
  assert.match(escape.message, /outside the widget's folder/);
  const missing = await tryRequire('./nope');
  assert.match(missing.message, /Cannot find module '.\/nope'/);

  const globals = await shim.request({ url: '/console/wb/globals' });
  assert.deepStrictEqual(JSON.parse(globals.body), {
    buffer: 'function', url: 'function', usp: 'function', promise: 'function', timers: 'function,function,function',
  });
  const dynamicImport = await shim.request({ url: '/console/wb/import' });
  assert.deepStrictEqual(JSON.parse(dynamicImport.body), { ok: false, code: 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING' });
  await shim.stop();
});

test('require guard: allowed_builtins opens a builtin, with or without node:', async () => {
  const [shim] = await Shim.start(fixture('guard', 'backend.js'), { allowedBuiltins: ['path'] });
  for (const name of ['path', 'node:path', 'path/posix']) {
    const res = await shim.request({ url: `/console/wb/try?name=${name}` });
    assert.deepStrictEqual(JSON.parse(res.body), { ok: true, type: 'object' }, name);
  }
  const fs = await shim.request({ url: '/console/wb/try?name=fs' });
  assert.match(JSON.parse(fs.body).message, /allowed builtins: path\)/);
  await shim.stop();
});

test('the hello reply carries the text of every own file the load read', async () => {
  const backend = fixture('guard', 'backend.js');
  const [shim, hello] = await Shim.start(backend);
  const dir = path.dirname(backend);
  const expected = Object.fromEntries([backend, path.join(dir, 'lib', 'helper.js'), path.join(dir, 'data.json')]
    .map((file) => [file, fs.readFileSync(file, 'utf8')]));
  assert.deepStrictEqual(hello.sources, expected);
  await shim.stop();
});

// A last good version whose files have since been broken or removed on disk.
function brokenWidget() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-pinned-'));
  fs.mkdirSync(path.join(dir, 'lib'));
  const backend = path.join(dir, 'backend.js');
  const good = {
    [backend]: "const v = require('./lib/version');\nmodule.exports = (r) => r.register('version', (req, res) => res.send(v));\n",
    [path.join(dir, 'lib', 'version.js')]: "module.exports = 'pinned';\n",
  };
  fs.writeFileSync(backend, 'module.exports = (r) => { r.register(;\n');
  return { dir, backend, good };
}

test('pinned sources are loaded instead of the files on disk', async () => {
  const { dir, backend, good } = brokenWidget();
  const [shim, hello] = await Shim.start(backend, { sources: good });
  assert.deepStrictEqual(hello.endpoints, [{ name: 'VERSION', method: 'GET' }]);
  assert.deepStrictEqual(hello.sources, good);
  assert.strictEqual((await shim.request({ url: '/console/wb/version' })).body.toString(), 'pinned');
  await shim.stop();
  fs.rmSync(dir, { recursive: true });
});

test('without pinned sources the same folder fails to load', async () => {
  const { dir, backend } = brokenWidget();
  const [shim, hello] = await Shim.start(backend);
  assert.match(hello.error.message, /Unexpected token/);
  assert.strictEqual(await shim.exited, 1);
  fs.rmSync(dir, { recursive: true });
});

test('a pinned file outside the widget folder is refused like any other', async () => {
  const { dir, backend } = brokenWidget();
  const outside = path.join(path.dirname(dir), 'outside.js');
  const sources = {
    [backend]: "module.exports = require('../outside.js');\n",
    [outside]: 'module.exports = (r) => {};\n',
  };
  const [shim, hello] = await Shim.start(backend, { sources });
  const code = await shim.stop();
  assert.ok(hello.error, `expected a load error, got ${JSON.stringify(hello)}`);
  assert.match(hello.error.message, /Cannot require '\.\.\/outside\.js': outside the widget's folder/);
  assert.strictEqual(code, 1);
  fs.rmSync(dir, { recursive: true });
});

test('sources over 1 MiB are left out of the hello reply', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-large-'));
  const backend = path.join(dir, 'backend.js');
  fs.writeFileSync(path.join(dir, 'big.json'), JSON.stringify('x'.repeat(1024 * 1024)));
  fs.writeFileSync(backend, "const big = require('./big.json');\nmodule.exports = (r) => r.register('size', (req, res) => res.send(String(big.length)));\n");
  const [shim, hello] = await Shim.start(backend);
  assert.deepStrictEqual(hello.endpoints, [{ name: 'SIZE', method: 'GET' }]);
  assert.strictEqual(hello.sources, undefined);
  assert.strictEqual((await shim.request({ url: '/console/wb/size' })).body.toString(), String(1024 * 1024));
  await shim.stop();
  fs.rmSync(dir, { recursive: true });
});
