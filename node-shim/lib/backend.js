'use strict';
// Owns loading one widget backend: run the file through the require guard, check that
// it exports a function, call it with the registrator, and turn any failure into the
// hello frame's `error` object ({message, file, line, stack}) pointing into the widget's
// own source, which is what a widget author needs to fix it.

const path = require('path');
const { createModuleLoader } = require('./require-guard');
const { createRegistry } = require('./register');

const NOT_A_FUNCTION =
  'Backend definition must be a function (module.exports = function(BackendRegistrator) {...})';

// V8 stack frames: "at fn (/abs/file.js:3:9)" or "at /abs/file.js:3:9".
const FRAME_RE = /^\s*at (?:.*?\()?(.+?):(\d+):\d+\)?$/;
// A SyntaxError from vm.compileFunction starts its stack with "/abs/file.js:3".
const SYNTAX_HEADER_RE = /^(.+?):(\d+)\r?\n/;

// `file` as a stack frame names it: Node's own modules ("node:fs") are never the
// widget's, even though the worker's working directory is the widget folder.
function isInside(dir, file) {
  if (!path.isAbsolute(file)) return false;
  const relative = path.relative(dir, file);
  return !relative.startsWith('..') && !path.isAbsolute(relative);
}

// Where in the widget's folder the error points: the file and line an author should open.
function locate(err, widgetDir) {
  if (err.file && err.line) return { file: err.file, line: err.line };
  // A file the load could not read (EACCES, EISDIR, ...): no line, but which file.
  if (typeof err.path === 'string' && isInside(widgetDir, err.path)) return { file: err.path };
  const stack = typeof err.stack === 'string' ? err.stack : '';
  const header = err instanceof SyntaxError && SYNTAX_HEADER_RE.exec(stack);
  if (header && isInside(widgetDir, header[1])) return { file: header[1], line: Number(header[2]) };
  for (const line of stack.split('\n')) {
    const frame = FRAME_RE.exec(line);
    if (frame && isInside(widgetDir, frame[1])) return { file: frame[1], line: Number(frame[2]) };
  }
  return {};
}

function describeLoadError(err, widgetDir) {
  if (!(err instanceof Error)) return { message: String(err) };
  return { message: err.message, ...locate(err, widgetDir), stack: err.stack };
}

// Returns {registry, sources} on success, `sources` being the widget's own files as the
// load read them (path -> text), or {error} describing why the widget cannot serve.
function loadBackend({ backend, modulesDir, allowedModules, allowedBuiltins, pinnedSources }) {
  const widgetDir = path.dirname(backend);
  try {
    const loader = createModuleLoader({ widgetDir, modulesDir, allowedModules, allowedBuiltins, pinnedSources });
    const exported = loader.loadFile(backend);
    let define = exported;
    if (typeof define !== 'function') define = exported && exported.default;
    if (typeof define !== 'function') return { error: { message: NOT_A_FUNCTION, file: backend } };
    const registry = createRegistry();
    define(registry.registrator);
    const registerError = registry.error();
    if (registerError) return { error: describeLoadError(registerError, widgetDir) };
    return { registry, sources: loader.sourcesRead };
  } catch (err) {
    return { error: describeLoadError(err, widgetDir) };
  }
}

module.exports = { loadBackend };
