'use strict';
// Owns how a request ends when the handler does not answer it: the stage's app-level
// error middleware for next(err) / throws / rejections, and Express's finalhandler 404
// for a plain next() that falls off the router.

const util = require('util');
const encodeUrl = require('encodeurl');
const escapeHtml = require('escape-html');

function describe(err) {
  return err instanceof Error ? err.stack || String(err) : util.inspect(err);
}

// finalhandler's HTML error page, byte for byte.
function htmlDocument(message) {
  const body = escapeHtml(message).replace(/\n/g, '<br>').replace(/\x20{2}/g, ' &nbsp;');
  return '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<title>Error</title>\n</head>\n<body>\n<pre>${body}</pre>\n</body>\n</html>\n`;
}

function sendHtml(req, res, status, message) {
  const body = htmlDocument(message);
  res.statusCode = status;
  res.removeHeader('Content-Encoding');
  res.removeHeader('Content-Language');
  res.removeHeader('Content-Range');
  res.setHeader('Content-Security-Policy', "default-src 'none'");
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body, 'utf8'));
  if (req.method === 'HEAD') res.end();
  else res.end(body, 'utf8');
}

// log(level, msg) writes under the widget's `WidgetBackend` category.
function createErrorHandler(log) {
  // next() past the router: Express's finalhandler "Cannot GET /path" (the stage's own
  // SPA fallback for GET is not something a widget backend should ever serve).
  function notFound(req, res) {
    if (res.headersSent) return;
    const pathname = req.originalUrl.split(/[?#]/)[0];
    sendHtml(req, res, 404, `Cannot ${req.method} ${encodeUrl(pathname)}`);
  }

  // The stage's app.use((err, req, res, next) => ...) handler.
  function handleError(err, req, res) {
    log('error', `Error has occured in ${req.method} ${req.originalUrl}: ${describe(err)}`);
    if (res.headersSent) {
      // Too late for an error response. In the stage the handler's own send() throws
      // here and Express's finalhandler destroys the socket, so a body that was still
      // being written is cut off: the client must not take it for a whole one.
      if (!res.writableEnded) res.destroy();
      return;
    }
    try {
      let message = err.message;
      if (err.status === 500) message = 'The server is temporarily unavailable';
      res.status(err.status || 404).send({ message: message || err });
    } catch (sendErr) {
      // e.g. an err.status that is not a valid HTTP status: finalhandler's 500.
      log('error', `The error response failed: ${describe(sendErr)}`);
      if (!res.headersSent) sendHtml(req, res, 500, 'Internal Server Error');
    }
  }

  return { notFound, handleError };
}

module.exports = { createErrorHandler };
