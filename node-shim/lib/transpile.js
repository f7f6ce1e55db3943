'use strict';
// Owns turning the text of a widget source file into CommonJS. TypeScript goes through
// sucrase, which only strips types and rewrites import/export in place: line numbers stay
// those of the .ts file, so stack traces point at the author's lines without source maps.

const path = require('path');

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

// `source` is the text of `file`; .js comes back as it is.
function toCommonJs(source, file) {
  if (!TS_EXTENSIONS.has(path.extname(file))) return source;
  // Loaded here, not at the top: sucrase adds ~10 MB to a worker that only runs .js.
  const { transform } = require('sucrase');
  try {
    return transform(source, {
      transforms: ['typescript', 'imports'],
      filePath: file,
      // Node 20 runs modern syntax natively; rewriting it would only move columns.
      disableESTransforms: true,
    }).code;
  } catch (err) {
    // sucrase reports "(line:col)" in its message and err.loc; re-throw it as a plain
    // SyntaxError that carries the location the way the loader expects.
    if (err && err.loc) {
      const syntaxError = new SyntaxError(err.message);
      syntaxError.file = file;
      syntaxError.line = err.loc.line;
      throw syntaxError;
    }
    throw err;
  }
}

module.exports = { toCommonJs };
