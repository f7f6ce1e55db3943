'use strict';
// Owns res.sendFile and res.download: Express 4's, on the same `send` module, so
// caching headers, ranges, conditional GETs and errors come out as they do in the stage.
// The worker can read only what its sandbox grants (its widget folder, docs/SECURITY.md);
// a file outside that is an error for the handler's callback or next(), as any other.
// `send` is loaded on first use: most widgets never serve a file, and every module
// loaded at start-up is memory each idle worker holds.

const path = require('path');
const contentDisposition = require('content-disposition');
const onFinished = require('on-finished');

// express/lib/utils.js isAbsolute.
function isAbsolute(file) {
  if (file[0] === '/') return true;
  if (file[1] === ':' && (file[2] === '\\' || file[2] === '/')) return true;
  return file.substring(0, 2) === '\\\\';
}

// express/lib/response.js sendfile(): pipes the `send` stream into res and calls back
// once, with an error (ECONNABORTED when the client left first) or without.
function pipeFile(res, file, options, callback) {
  let done = false;
  let streaming;
  const finish = (err) => {
    if (done) return;
    done = true;
    callback(err);
  };
  const aborted = () => finish(Object.assign(new Error('Request aborted'), { code: 'ECONNABORTED' }));

  file.on('directory', () => finish(Object.assign(new Error('EISDIR, read'), { code: 'EISDIR' })));
  file.on('end', () => finish());
  file.on('error', finish);
  file.on('file', () => {
    streaming = false;
  });
  file.on('stream', () => {
    streaming = true;
  });
  onFinished(res, (err) => {
    if (err && err.code === 'ECONNRESET') return aborted();
    if (err) return finish(err);
    if (done) return undefined;
    return setImmediate(() => {
      if (streaming !== false && !done) aborted();
      else finish();
    });
  });
  if (options.headers) {
    file.on('headers', (out) => {
      for (const name of Object.keys(options.headers)) out.setHeader(name, options.headers[name]);
    });
  }
  file.pipe(res);
}

// res.sendFile(path[, options][, callback]): without a callback, a missing file goes to
// next(err) (the stage's error handler: 404 with send's message) and a directory to next().
function sendFile(res, file, options, callback) {
  let done = callback;
  let opts = options || {};
  if (!file) throw new TypeError('path argument is required to res.sendFile');
  if (typeof file !== 'string') throw new TypeError('path must be a string to res.sendFile');
  if (typeof options === 'function') {
    done = options;
    opts = {};
  }
  if (!opts.root && !isAbsolute(file)) throw new TypeError('path must be absolute or specify root to res.sendFile');

  const stream = require('send')(res.req, encodeURI(file), opts);
  pipeFile(res, stream, opts, (err) => {
    if (done) return done(err);
    if (err && err.code === 'EISDIR') return res.req.next();
    // Write errors are the client's; everything else is the handler's.
    if (err && err.code !== 'ECONNABORTED' && err.syscall !== 'write') res.req.next(err);
    return undefined;
  });
}

// res.download(path[, filename][, options][, callback]): sendFile with a
// Content-Disposition: attachment; a relative path is resolved against the working
// directory, which for a worker is its widget folder.
function download(res, file, filename, options, callback) {
  let done = callback;
  let name = filename;
  let opts = options || null;
  if (typeof filename === 'function') {
    done = filename;
    name = null;
    opts = null;
  } else if (typeof options === 'function') {
    done = options;
    opts = null;
  }
  if (typeof filename === 'object' && (typeof options === 'function' || options === undefined)) {
    name = null;
    opts = filename;
  }
  const headers = { 'Content-Disposition': contentDisposition(name || file) };
  if (opts && opts.headers) {
    for (const key of Object.keys(opts.headers)) {
      if (key.toLowerCase() !== 'content-disposition') headers[key] = opts.headers[key];
    }
  }
  opts = Object.create(opts);
  opts.headers = headers;
  return res.sendFile(opts.root ? file : path.resolve(file), opts, done);
}

module.exports = { sendFile, download };
