'use strict';
// Owns `res`: Express 4's response methods, ported from express/lib/response.js so that
// status codes, headers and bodies come out byte-for-byte as the stage produced them, on
// Node's ServerResponse as outgoing.js provides it (as Express puts them on
// http.ServerResponse).

const crypto = require('crypto');
const path = require('path');
const contentDisposition = require('content-disposition');
const contentType = require('content-type');
const cookie = require('cookie');
const encodeUrl = require('encodeurl');
const escapeHtml = require('escape-html');
const mime = require('mime');
const merge = require('utils-merge');
const statuses = require('statuses');
const vary = require('vary');
const { OutgoingResponse } = require('./outgoing');
const { sendFile, download } = require('./send-file');

const CHARSET_RE = /;\s*charset\s*=/;

// A type name or extension as Express 4 resolves it (utils.normalizeType): mime@1, the
// one its `send` dependency carries, for names without a slash (unknown ones are
// application/octet-stream); a full type loses its parameters.
function normalizeType(type) {
  return type.indexOf('/') === -1 ? mime.lookup(type) : type.split(/ *; */)[0];
}

// Express's default ETag (the `etag` package's weak one) of a body: its length in hex
// and the first 27 base64 characters of its SHA-1. Computed here because `etag` builds a
// crypto Hash object per call, about a tenth of a small response's cost in the shim;
// the one-shot crypto.hash (Node >= 20.12) takes a third of that. The differential tests
// hold the result to what Express sends.
const sha1Base64 = crypto.hash
  ? (body) => crypto.hash('sha1', body, 'base64')
  : (body) => crypto.createHash('sha1').update(body).digest('base64');

function weakEtag(body) {
  return `W/"${body.length.toString(16)}-${sha1Base64(body).substring(0, 27)}"`;
}

// Express's setCharset, remembered: a handler sends the same few types over and over,
// and parsing and re-formatting one is a noticeable part of a small response's cost.
const charsetCache = new Map();
const CHARSET_CACHE_LIMIT = 256;

function setCharset(type, charset) {
  const key = `${charset}\0${type}`;
  let result = charsetCache.get(key);
  if (result === undefined) {
    const parsed = contentType.parse(type);
    parsed.parameters.charset = charset;
    result = contentType.format(parsed);
    if (charsetCache.size >= CHARSET_CACHE_LIMIT) charsetCache.clear();
    charsetCache.set(key, result);
  }
  return result;
}

class WidgetResponse extends OutgoingResponse {
  constructor(req, id, window, io) {
    super(req, id, window, io);
    // What Express's init middleware and app give every response: res.locals, req.res,
    // and the X-Powered-By header (the stage leaves that setting on).
    this.locals = Object.create(null);
    req.res = this;
    this._headers.set('x-powered-by', ['X-Powered-By', 'Express']);
  }

  // Express lets a second send() die on setHeader(); a widget bug must not take the
  // worker down, so it is reported and ignored instead.
  _alreadySent(method) {
    if (!this.headersSent) return false;
    this._io.reportMisuse(`res.${method}() called after the response was already sent`);
    return true;
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  links(links) {
    let link = this.get('Link') || '';
    if (link) link += ', ';
    return this.set('Link', link + Object.keys(links).map((rel) => `<${links[rel]}>; rel="${rel}"`).join(', '));
  }

  send(body, ...rest) {
    if (this._alreadySent('send')) return this;
    let chunk = body;
    let encoding;
    const { req } = this;

    // Express 4's deprecated res.send(status, body) / res.send(body, status).
    if (rest.length === 1) {
      if (typeof body !== 'number' && typeof rest[0] === 'number') {
        this.statusCode = rest[0];
      } else {
        this.statusCode = body;
        [chunk] = rest;
      }
    }
    // Deprecated res.send(status): the status text becomes the body.
    if (typeof chunk === 'number' && rest.length === 0) {
      if (!this.get('Content-Type')) this.type('txt');
      this.statusCode = chunk;
      chunk = statuses.message[chunk];
    }

    switch (typeof chunk) {
      case 'string':
        if (!this.get('Content-Type')) this.type('html');
        break;
      case 'boolean':
      case 'number':
      case 'object':
        if (chunk === null) {
          chunk = '';
        } else if (Buffer.isBuffer(chunk)) {
          if (!this.get('Content-Type')) this.type('bin');
        } else {
          return this.json(chunk);
        }
        break;
      default:
        break;
    }

    if (typeof chunk === 'string') {
      encoding = 'utf8';
      const type = this.get('Content-Type');
      if (typeof type === 'string') this.set('Content-Type', setCharset(type, 'utf-8'));
    }

    // Express's default 'etag fn': a weak ETag of the body, unless the handler set one.
    const generateETag = !this.get('ETag');
    let len;
    if (chunk !== undefined) {
      if (Buffer.isBuffer(chunk)) {
        len = chunk.length;
      } else if (!generateETag && chunk.length < 1000) {
        // Kept a string, as Express keeps it: which decides how Node writes the head.
        len = Buffer.byteLength(chunk, encoding);
      } else {
        chunk = Buffer.from(chunk, encoding);
        encoding = undefined;
        len = chunk.length;
      }
      this.set('Content-Length', len);
    }
    if (generateETag && len !== undefined) this.set('ETag', weakEtag(chunk));

    if (req.fresh) this.statusCode = 304;

    if (this.statusCode === 204 || this.statusCode === 304) {
      this.removeHeader('Content-Type');
      this.removeHeader('Content-Length');
      this.removeHeader('Transfer-Encoding');
      chunk = '';
    }
    if (this.statusCode === 205) {
      this.set('Content-Length', '0');
      this.removeHeader('Transfer-Encoding');
      chunk = '';
    }

    if (req.method === 'HEAD') this.end();
    else this.end(chunk, encoding);
    return this;
  }

  // Express 4 still accepts the deprecated json(status, obj) and json(obj, status).
  _bodyAndLegacyStatus(obj, rest) {
    if (rest.length !== 1) return obj;
    if (typeof rest[0] === 'number') {
      this.statusCode = rest[0];
      return obj;
    }
    this.statusCode = obj;
    return rest[0];
  }

  json(obj, ...rest) {
    if (this._alreadySent('json')) return this;
    const val = this._bodyAndLegacyStatus(obj, rest);
    const body = JSON.stringify(val);
    if (!this.get('Content-Type')) this.set('Content-Type', 'application/json');
    return this.send(body);
  }

  jsonp(obj, ...rest) {
    if (this._alreadySent('jsonp')) return this;
    const val = this._bodyAndLegacyStatus(obj, rest);
    let body = JSON.stringify(val);
    let callback = this.req.query.callback;
    if (!this.get('Content-Type')) {
      this.set('X-Content-Type-Options', 'nosniff');
      this.set('Content-Type', 'application/json');
    }
    if (Array.isArray(callback)) [callback] = callback;
    if (typeof callback === 'string' && callback.length !== 0) {
      this.set('X-Content-Type-Options', 'nosniff');
      this.set('Content-Type', 'text/javascript');
      callback = callback.replace(/[^[\]\w$.]/g, '');
      if (body === undefined) {
        body = '';
      } else {
        body = body.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
      }
      // "/**/" guards against Rosetta-Flash style JSONP abuse, as Express does.
      body = `/**/ typeof ${callback} === 'function' && ${callback}(${body});`;
    }
    return this.send(body);
  }

  sendStatus(statusCode) {
    if (this._alreadySent('sendStatus')) return this;
    const body = statuses.message[statusCode] || String(statusCode);
    this.statusCode = statusCode;
    this.type('txt');
    return this.send(body);
  }

  type(type) {
    return this.set('Content-Type', type.indexOf('/') === -1 ? mime.lookup(type) : type);
  }

  contentType(type) {
    return this.type(type);
  }

  // Content negotiation on Accept; no match and no default is Express's 406 via next().
  format(obj) {
    const { req } = this;
    const keys = Object.keys(obj).filter((v) => v !== 'default');
    const key = keys.length > 0 ? req.accepts(keys) : false;
    this.vary('Accept');
    if (key) {
      this.set('Content-Type', normalizeType(key));
      obj[key](req, this, req.next);
    } else if (obj.default) {
      obj.default(req, this, req.next);
    } else {
      const err = new Error('Not Acceptable');
      err.status = 406;
      err.statusCode = 406;
      err.types = keys.map(normalizeType);
      req.next(err);
    }
    return this;
  }

  attachment(filename) {
    if (filename) this.type(path.extname(filename));
    return this.set('Content-Disposition', contentDisposition(filename));
  }

  // A file from the widget's folder, with send's caching and range support (send-file.js).
  sendFile(file, options, callback) {
    sendFile(this, file, options, callback);
  }

  download(file, filename, options, callback) {
    return download(this, file, filename, options, callback);
  }

  append(field, val) {
    const prev = this.get(field);
    let value = val;
    if (prev) {
      if (Array.isArray(prev)) value = prev.concat(val);
      else value = Array.isArray(val) ? [prev].concat(val) : [prev, val];
    }
    return this.set(field, value);
  }

  set(field, val) {
    if (arguments.length === 2) {
      let value = Array.isArray(val) ? val.map(String) : String(val);
      if (field.toLowerCase() === 'content-type') {
        if (Array.isArray(value)) throw new TypeError('Content-Type cannot be set to an Array');
        if (!CHARSET_RE.test(value)) {
          const charset = mime.charsets.lookup(value.split(';')[0]);
          if (charset) value += `; charset=${charset.toLowerCase()}`;
        }
      }
      this.setHeader(field, value);
    } else {
      for (const key in field) this.set(key, field[key]);
    }
    return this;
  }

  header(field, val) {
    return arguments.length === 2 ? this.set(field, val) : this.set(field);
  }

  get(field) {
    return this.getHeader(field);
  }

  clearCookie(name, options) {
    return this.cookie(name, '', merge({ expires: new Date(1), path: '/' }, options));
  }

  // Without a cookie-parser secret (the stage has none) signed cookies are an error.
  // Options are copied as Express copies them (utils-merge: inherited ones too).
  cookie(name, value, options) {
    const opts = merge({}, options);
    if (opts.signed) throw new Error('cookieParser("secret") required for signed cookies');
    const val = typeof value === 'object' ? `j:${JSON.stringify(value)}` : String(value);
    if (opts.maxAge != null) {
      const maxAge = opts.maxAge - 0;
      if (!Number.isNaN(maxAge)) {
        opts.expires = new Date(Date.now() + maxAge);
        opts.maxAge = Math.floor(maxAge / 1000);
      }
    }
    if (opts.path == null) opts.path = '/';
    return this.append('Set-Cookie', cookie.serialize(name, String(val), opts));
  }

  location(url) {
    const loc = url === 'back' ? this.req.get('Referrer') || '/' : String(url);
    return this.set('Location', encodeUrl(loc));
  }

  redirect(url, ...rest) {
    if (this._alreadySent('redirect')) return;
    let address = url;
    let status = 302;
    let body;
    if (rest.length === 1) {
      if (typeof url === 'number') {
        status = url;
        [address] = rest;
      } else {
        [status] = rest;
      }
    }
    address = this.location(address).get('Location');
    this.format({
      text: () => {
        body = `${statuses.message[status]}. Redirecting to ${address}`;
      },
      html: () => {
        body = `<p>${statuses.message[status]}. Redirecting to ${escapeHtml(address)}</p>`;
      },
      default: () => {
        body = '';
      },
    });
    this.statusCode = status;
    this.set('Content-Length', Buffer.byteLength(body));
    if (this.req.method === 'HEAD') this.end();
    else this.end(body);
  }

  vary(field) {
    if (!field || (Array.isArray(field) && !field.length)) return this;
    vary(this, field);
    return this;
  }
}

module.exports = { WidgetResponse };
