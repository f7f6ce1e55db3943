'use strict';
// Finding and loading backends (CONTRACT.md §1): export forms, register() rules, load
// errors with file and line that never stop other widgets, backend.js over backend.ts,
// ignore_folders and plain files.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { startWbe, fixtureWidgets, runWbe, writeWidgets, BROKEN_WIDGETS } = require('./lib/wbe');

const broken = (id, file = 'backend.js') => path.join(BROKEN_WIDGETS, id, file).replace(/[.\\]/g, '\\$&');

// id -> what `wbe check` and the 503 must say about it (message, then file:line).
const LOAD_ERRORS = {
  'syntax-error': [/Unexpected token/, new RegExp(`${broken('syntax-error')}:3\\b`)],
  'throw-at-load': [/configuration is not ready/, new RegExp(`${broken('throw-at-load')}:4\\b`)],
  'bad-method': [/Method 'OPTIONS' not allowed\. Valid methods: GET,POST,PUT,DELETE,PATCH/, new RegExp(`${broken('bad-method')}:3\\b`)],
  'missing-name': [/Service name must be provided/, new RegExp(`${broken('missing-name')}:2\\b`)],
  'missing-body': [/Service body must be provided/, new RegExp(`${broken('missing-body')}:2\\b`)],
  'non-function-body': [/Service body must be a function/, new RegExp(`${broken('non-function-body')}:2\\b`)],
  'not-a-function': [/Backend definition must be a function/, new RegExp(broken('not-a-function'))],
  'refused-require': [/Cannot require 'child_process'.*lodash, body, elkjs/, new RegExp(`${broken('refused-require')}:1\\b`)],
  'ts-syntax-error': [/ts-syntax-error|Unexpected token|expected/, new RegExp(`${broken('ts-syntax-error', 'backend.ts')}:\\d+`)],
  'throw-in-node': [/The value of "size" is out of range/, new RegExp(`${broken('throw-in-node')}:3\\b`)],
};

describe('wbe check on broken widgets', () => {
  let result;
  before(() => {
    result = runWbe(['check', '--widgets', BROKEN_WIDGETS]);
  });

  it('exits 1', () => {
    assert.equal(result.status, 1, result.stdout + result.stderr);
  });

  for (const [id, [message, location]] of Object.entries(LOAD_ERRORS)) {
    it(`prints ${id} with its load error, file and line`, () => {
      const line = result.stdout.split('\n').find((l) => l.startsWith(`${id}:`));
      assert.ok(line, `no line for ${id} in:\n${result.stdout}`);
      assert.match(line, /FAILED/);
      assert.match(line, message);
      assert.match(line, location);
    });
  }

  it('prints the widget with backend.js and backend.ts as loaded, from backend.js', () => {
    const line = result.stdout.split('\n').find((l) => l.startsWith('both-js-ts:'));
    assert.ok(line, result.stdout);
    assert.match(line, /ok/);
    assert.match(line, /GET which/);
    assert.doesNotMatch(line, /FAILED/);
  });

  it('skips the ignored common folder and plain files', () => {
    assert.doesNotMatch(result.stdout, /^common\b/m);
    assert.doesNotMatch(result.stdout, /notes/);
    assert.doesNotMatch(result.stdout + result.stderr, /never seen/);
  });
});

describe('serving broken and good widgets together', () => {
  let wbe;
  before(async () => {
    const good = fixtureWidgets(['alpha', 'common', 'ignored-by-config', 'export-exports-default', 'export-ts-default', 'dup-register']);
    wbe = await startWbe({ widgets: [BROKEN_WIDGETS, good] });
  });
  after(() => wbe.stop());

  for (const [id, [message]] of Object.entries(LOAD_ERRORS)) {
    it(`answers 503 JSON naming the load error of ${id}`, async () => {
      // bad-method registered a valid `status` before failing: the whole widget is out.
      const response = await wbe.call('status', { widget: id });
      const text = await response.text();
      assert.equal(response.status, 503, text);
      assert.match(response.headers.get('content-type'), /^application\/json/);
      const body = JSON.parse(text);
      assert.match(body.message, new RegExp(id));
      assert.match(body.message, message);
    });
  }

  it('logs each load error with widget, file and line', async () => {
    const entry = await wbe.waitForLog((l) => l.widget === 'throw-at-load' && /configuration is not ready/.test(l.msg));
    assert.equal(entry.file, path.join(BROKEN_WIDGETS, 'throw-at-load', 'backend.js'));
    assert.equal(Number(entry.line), 4);
  });

  it('reports load errors in /_wbe/status', async () => {
    const status = await wbe.widgetStatus('syntax-error');
    assert.ok(status, 'syntax-error missing from /_wbe/status');
    assert.ok(status.load_error, JSON.stringify(status));
    assert.match(status.load_error.message, /Unexpected token/);
    assert.equal(status.load_error.file, path.join(BROKEN_WIDGETS, 'syntax-error', 'backend.js'));
    assert.equal(status.load_error.line, 3);
    const good = await wbe.widgetStatus('alpha');
    assert.equal(good.load_error, null);
  });

  it('keeps serving the good widgets of the same run', async () => {
    const response = await wbe.call('status', { widget: 'alpha' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'alpha OK');
  });

  it('uses backend.js when backend.ts exists too, and logs a warning', async () => {
    const response = await wbe.call('which', { widget: 'both-js-ts' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'backend.js');
    const warning = await wbe.waitForLog((l) => /^WARN/i.test(String(l.level)) && /backend\.ts/.test(JSON.stringify(l)) && /both-js-ts/.test(JSON.stringify(l)));
    assert.ok(warning);
  });

  it('loads the export forms module.exports, exports.default and TypeScript export default', async () => {
    assert.equal(await (await wbe.call('whoami', { widget: 'alpha' })).status, 200);
    assert.equal(await (await wbe.call('form', { widget: 'export-exports-default' })).text(), 'exports.default');
    assert.equal(await (await wbe.call('form', { widget: 'export-ts-default' })).text(), 'export default');
  });

  it('lets the last registration of the same (name, method) win', async () => {
    assert.equal(await (await wbe.call('twice', { widget: 'dup-register' })).text(), 'second registration');
    assert.equal(await (await wbe.call('twice', { widget: 'dup-register', method: 'POST' })).text(), 'post registration');
    const status = await wbe.widgetStatus('dup-register');
    const twice = status.endpoints.filter((e) => e.name === 'TWICE');
    assert.deepEqual(twice.map((e) => e.method).sort(), ['GET', 'POST']);
  });

  it('treats register(name, fn) as GET', async () => {
    assert.equal(await (await wbe.call('shorthand', { widget: 'dup-register' })).text(), 'shorthand via GET');
    assert.equal((await wbe.call('shorthand', { widget: 'dup-register', method: 'POST' })).status, 404);
  });

  it('skips the common folder (default ignore_folders) and plain files', async () => {
    const response = await wbe.call('status', { widget: 'common' });
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /not found/);
    assert.equal((await wbe.status()).widgets.some((w) => w.id === 'common' || w.id === 'notes.txt'), false);
    assert.equal(wbe.logs.some((l) => /common must never be loaded|never seen/.test(l.msg)), false);
  });

  it('serves a folder that only a custom ignore_folders would skip', async () => {
    assert.equal(await (await wbe.call('status', { widget: 'ignored-by-config' })).text(), 'ignored-by-config serves');
  });
});

describe('ignore_folders from the config', () => {
  let wbe;
  before(async () => {
    wbe = await startWbe({
      widgets: fixtureWidgets(['alpha', 'common', 'ignored-by-config']),
      config: '[widgets]\nignore_folders = ["ignored-by-config"]\n',
    });
  });
  after(() => wbe.stop());

  it('skips the folders it names', async () => {
    const response = await wbe.call('status', { widget: 'ignored-by-config' });
    assert.equal(response.status, 404);
    assert.match((await response.json()).message, /not found/);
  });

  it('replaces the default list: common is then a widget (whose backend throws)', async () => {
    const response = await wbe.call('status', { widget: 'common' });
    assert.equal(response.status, 503);
    assert.match((await response.json()).message, /common must never be loaded/);
    assert.equal((await wbe.call('status', { widget: 'alpha' })).status, 200);
  });
});

describe('a widget folder its worker cannot read', () => {
  // Only a gateway running as root gives workers users of their own; otherwise the
  // worker is the test's own user and reads the folder anyway.
  const switchesUsers = process.getuid() === 0;

  it('is a load error naming the file and what to do', { skip: !switchesUsers && 'not running as root' }, () => {
    const root = writeWidgets({ private: { 'backend.js': "module.exports = (r) => r.register('x', (req, res) => res.send('x'));" } });
    const dir = path.join(root, 'private');
    fs.chmodSync(dir, 0o700);
    const result = runWbe(['check', '--widgets', root]);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    const line = result.stdout.split('\n').find((l) => l.startsWith('private:'));
    assert.ok(line, result.stdout);
    assert.match(line, /EACCES: permission denied/);
    assert.match(line, new RegExp(`must be readable by every user \\(chmod -R a\\+rX ${dir.replace(/[.\\]/g, '\\$&')}\\)`));
    assert.match(line, new RegExp(`${path.join(dir, 'backend.js').replace(/[.\\]/g, '\\$&')}`));
    assert.doesNotMatch(line, /node:fs/, 'the location is the widget file, not a Node internal');
  });
});
