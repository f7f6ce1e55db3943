'use strict';
// Owns loading the widget's own files and the `require` they see. The stage ran
// backends in vm2's NodeVM with an allow-list of external modules; here each file is
// compiled with vm.compileFunction (no wrapper, so line numbers are the file's own) and
// handed a guarded require that only reaches:
//   - packages named in allowed_modules (and their sub-paths), from modules_dir;
//   - Node built-ins named in allowed_builtins (with or without `node:`);
//   - the widget's own .js/.ts/.json files inside its folder, guarded the same way.
// It also remembers the text of every own file it read, so that the gateway can start
// this version again from those texts (`pinnedSources`) after a crash, when the folder
// may by then hold a newer version that does not load.
// Dynamic import() is unavailable (no importModuleDynamically), so it cannot bypass this.

const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire, isBuiltin } = require('module');
const { toCommonJs } = require('./transpile');

const RESOLVE_EXTENSIONS = ['.js', '.ts', '.json'];
const WRAPPER_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];

// 'lodash/fp' -> 'lodash', '@scope/pkg/x' -> '@scope/pkg', 'node:fs/promises' -> 'fs'.
function packageName(request) {
  const bare = request.startsWith('node:') ? request.slice(5) : request;
  const parts = bare.split('/');
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isPathRequest(request) {
  return request.startsWith('./') || request.startsWith('../') || request === '.' ||
    request === '..' || path.isAbsolute(request);
}

function moduleNotFound(request, fromFile) {
  const err = new Error(`Cannot find module '${request}' from '${fromFile}'`);
  err.code = 'MODULE_NOT_FOUND';
  return err;
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function createModuleLoader({ widgetDir, modulesDir, allowedModules, allowedBuiltins, pinnedSources = new Map() }) {
  const rootDir = fs.realpathSync(widgetDir);
  const requireFromModules = createRequire(path.join(modulesDir, '/'));
  const cache = new Map();
  const sourcesRead = new Map();
  const list = (names) => (names.length > 0 ? names.join(', ') : 'none');

  function refuse(request) {
    return new Error(
      `Cannot require '${request}': not allowed in a widget backend ` +
        `(allowed modules: ${list(allowedModules)}; allowed builtins: ${list(allowedBuiltins)})`
    );
  }

  // Node's file resolution for the cases widgets use, confined to the widget folder
  // (after following symlinks, so a link cannot lead out of it).
  function resolveOwnFile(request, fromFile) {
    const base = path.resolve(path.dirname(fromFile), request);
    const candidates = [base, ...RESOLVE_EXTENSIONS.map((ext) => base + ext),
      ...RESOLVE_EXTENSIONS.map((ext) => path.join(base, `index${ext}`))];
    const found = candidates.find((file) => pinnedSources.has(file) || isFile(file));
    if (!found) throw moduleNotFound(request, fromFile);
    // A pinned file is named by the real path it had when its version first loaded.
    const real = pinnedSources.has(found) ? found : fs.realpathSync(found);
    const relative = path.relative(rootDir, real);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new Error(`Cannot require '${request}': outside the widget's folder ${rootDir}`);
    }
    return real;
  }

  function makeRequire(fromFile) {
    return function require(request) {
      if (typeof request !== 'string' || request.length === 0) {
        throw new TypeError(`require() expects a non-empty string, got ${typeof request}`);
      }
      if (isPathRequest(request)) return loadFile(resolveOwnFile(request, fromFile));
      const name = packageName(request);
      if (isBuiltin(request)) {
        if (!allowedBuiltins.includes(name)) throw refuse(request);
        return requireFromModules(request);
      }
      if (!allowedModules.includes(name)) throw refuse(request);
      return requireFromModules(request);
    };
  }

  function readOwnFile(file) {
    const text = pinnedSources.has(file) ? pinnedSources.get(file) : readFromDisk(file);
    sourcesRead.set(file, text);
    return text;
  }

  function readFromDisk(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      // The worker runs as a user of its own, not as whoever installed the widget.
      if (err.code === 'EACCES') {
        err.message += `: the widget's worker runs as its own user (uid ${process.getuid()}), ` +
          `so its folder must be readable by every user (chmod -R a+rX ${rootDir})`;
      }
      throw err;
    }
  }

  function loadFile(file) {
    const cached = cache.get(file);
    if (cached) return cached.exports;
    const module = { id: file, filename: file, exports: {}, loaded: false };
    // Cached before running so that require cycles see the partial exports, as in Node.
    cache.set(file, module);
    try {
      if (path.extname(file) === '.json') {
        try {
          module.exports = JSON.parse(readOwnFile(file));
        } catch (err) {
          err.message = `${file}: ${err.message}`;
          throw err;
        }
      } else {
        const fn = vm.compileFunction(toCommonJs(readOwnFile(file), file), WRAPPER_PARAMS, { filename: file });
        fn.call(module.exports, module.exports, makeRequire(file), module, file, path.dirname(file));
      }
    } catch (err) {
      cache.delete(file);
      throw err;
    }
    module.loaded = true;
    return module.exports;
  }

  return { loadFile, sourcesRead };
}

module.exports = { createModuleLoader };
