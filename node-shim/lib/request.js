'use strict';
// Owns `req`: a real stream.Readable of the request body (so body/json, pipe() and
// for-await work) carrying the fields Express 4 puts on a request inside the stage's
// `router.use('/:service', ...)`. Getters follow express/lib/request.js; the values the
// gateway already knows (url split, ip, protocol, user) come from the `req` frame.

const { Readable } = require('stream');
const { isIP } = require('net');
// The stage mounts cookie-parser (no secret) before the widget router; running the same
// middleware gives the same req.cookies and req.signedCookies (null-prototype objects,
// `j:` JSON cookies decoded only when truthy) from its own cookie parser.
const parseCookies = require('cookie-parser')();
const fresh = require('fresh');

// Query parsing, content negotiation and range parsing are loaded on first use: many
// requests have no query string and few handlers negotiate, and every module loaded at
// start-up is memory each idle worker holds (qs and its dependencies: about 2 MB).
const accepts = (req) => require('accepts')(req);
const typeis = (req, types) => require('type-is')(req, types);
const parseRange = (size, header, options) => require('range-parser')(size, header, options);

// Express's "extended" query parser (app setting 'query parser' default in 4.x); qs
// itself returns {} for an empty string.
function parseQuery(queryString) {
  return queryString === '' ? {} : require('qs').parse(queryString, { allowPrototypes: true });
}

// Express 4's default 'subdomain offset'.
const SUBDOMAIN_OFFSET = 2;

// Node's IncomingMessage folding: these keep only their first value when repeated.
const SINGLE_VALUED = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization',
  'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location',
  'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires',
]);

function foldHeaders(lines) {
  const headers = {};
  const rawHeaders = [];
  for (const [rawName, value] of lines) {
    const name = String(rawName).toLowerCase();
    rawHeaders.push(rawName, value);
    if (!(name in headers)) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      headers[name].push(value);
    } else if (name === 'cookie') {
      headers[name] += `; ${value}`;
    } else if (!SINGLE_VALUED.has(name)) {
      headers[name] += `, ${value}`;
    }
  }
  return { headers, rawHeaders };
}

function pathnameOf(url) {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

function queryStringOf(url) {
  const q = url.indexOf('?');
  if (q === -1) return '';
  const hash = url.indexOf('#', q);
  return url.slice(q + 1, hash === -1 ? undefined : hash);
}

class WidgetRequest extends Readable {
  // frame: the `req` frame; onConsumed(bytes) returns request-body credit to the gateway.
  constructor(frame, onConsumed) {
    super({ highWaterMark: 64 * 1024 });
    const { headers, rawHeaders } = foldHeaders(Array.isArray(frame.headers) ? frame.headers : []);
    this.method = String(frame.method || 'GET').toUpperCase();
    this.url = frame.url || '/';
    this.originalUrl = frame.originalUrl || this.url;
    this.baseUrl = frame.baseUrl || '';
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.httpVersion = '1.1';
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.params = { service: frame.service };
    this.query = parseQuery(queryStringOf(this.originalUrl));
    parseCookies(this, undefined, () => {});
    this.ip = frame.ip;
    this.ips = [];
    this.protocol = frame.protocol || 'http';
    this.user = frame.user === undefined ? null : frame.user;
    this.aborted = false;
    this.complete = false;
    this.upgrade = false;
    this._onConsumed = onConsumed;
    this._unacked = 0;
  }

  get path() {
    return pathnameOf(this.url);
  }

  get secure() {
    return this.protocol === 'https';
  }

  // Express 4 without 'trust proxy' (the stage does not set it): the Host header,
  // minus the port, keeping an IPv6 literal's brackets.
  get hostname() {
    const host = this.get('Host');
    if (!host) return undefined;
    const offset = host[0] === '[' ? host.indexOf(']') + 1 : 0;
    const index = host.indexOf(':', offset);
    return index !== -1 ? host.substring(0, index) : host;
  }

  // Deprecated in Express 4 in favour of hostname, which it returns.
  get host() {
    return this.hostname;
  }

  // The widget's process has no connection of its own: what a handler may read of the
  // stage's (`req.socket.remoteAddress`, or the older `req.connection`) describes the
  // gateway's connection from its client. Nothing here can be written to or closed.
  get socket() {
    this._socket ??= Object.freeze({
      remoteAddress: this.ip,
      remoteFamily: isIP(this.ip) === 6 ? 'IPv6' : 'IPv4',
      encrypted: this.protocol === 'https' ? true : undefined,
    });
    return this._socket;
  }

  get connection() {
    return this.socket;
  }

  // Node's older alias of socket.
  get client() {
    return this.socket;
  }

  // Every header's lines as the client sent them, unjoined: {name: [value, ...]}.
  get headersDistinct() {
    if (this._headersDistinct === undefined) {
      const distinct = {};
      for (let i = 0; i < this.rawHeaders.length; i += 2) {
        (distinct[this.rawHeaders[i].toLowerCase()] ??= []).push(this.rawHeaders[i + 1]);
      }
      this._headersDistinct = distinct;
    }
    return this._headersDistinct;
  }

  get trailersDistinct() {
    this._trailersDistinct ??= {};
    return this._trailersDistinct;
  }

  // The gateway does not forward a chunked body's trailers: empty, as Node's are for a
  // body without any. Made on first use; few handlers look.
  get trailers() {
    this._trailers ??= {};
    return this._trailers;
  }

  set trailers(value) {
    this._trailers = value;
  }

  get rawTrailers() {
    this._rawTrailers ??= [];
    return this._rawTrailers;
  }

  set rawTrailers(value) {
    this._rawTrailers = value;
  }

  get subdomains() {
    const { hostname } = this;
    if (!hostname) return [];
    const parts = isIP(hostname) ? [hostname] : hostname.split('.').reverse();
    return parts.slice(SUBDOMAIN_OFFSET);
  }

  get xhr() {
    return (this.get('X-Requested-With') || '').toLowerCase() === 'xmlhttprequest';
  }

  // Needs this.res (set by the response) for the ETag/Last-Modified the handler set.
  get fresh() {
    if (this.method !== 'GET' && this.method !== 'HEAD') return false;
    const status = this.res.statusCode;
    if ((status >= 200 && status < 300) || status === 304) {
      return fresh(this.headers, {
        etag: this.res.get('ETag'),
        'last-modified': this.res.get('Last-Modified'),
      });
    }
    return false;
  }

  get stale() {
    return !this.fresh;
  }

  get(name) {
    if (!name) throw new TypeError('name argument is required to req.get');
    if (typeof name !== 'string') throw new TypeError('name must be a string to req.get');
    const lc = name.toLowerCase();
    if (lc === 'referer' || lc === 'referrer') return this.headers.referrer || this.headers.referer;
    return this.headers[lc];
  }

  header(name) {
    return this.get(name);
  }

  // With no types, the request's media type if it has a body (type-is with an empty list).
  is(...types) {
    return typeis(this, Array.isArray(types[0]) ? types[0] : types);
  }

  accepts(...types) {
    return accepts(this).types(...types);
  }

  acceptsEncodings(...encodings) {
    return accepts(this).encodings(...encodings);
  }

  acceptsCharsets(...charsets) {
    return accepts(this).charsets(...charsets);
  }

  acceptsLanguages(...languages) {
    return accepts(this).languages(...languages);
  }

  // The deprecated singular names Express 4 still has.
  acceptsEncoding(...encodings) {
    return this.acceptsEncodings(...encodings);
  }

  acceptsCharset(...charsets) {
    return this.acceptsCharsets(...charsets);
  }

  acceptsLanguage(...languages) {
    return this.acceptsLanguages(...languages);
  }

  // The Range header parsed against a resource of `size` bytes (range-parser's result:
  // ranges, -1 unsatisfiable, -2 malformed), undefined without a Range header.
  range(size, options) {
    const header = this.get('Range');
    if (!header) return undefined;
    return parseRange(size, header, options);
  }

  // Express 4's deprecated req.param(): route params, then the body, then the query.
  param(name, defaultValue) {
    const params = this.params || {};
    const body = this.body || {};
    const query = this.query || {};
    if (params[name] != null && Object.prototype.hasOwnProperty.call(params, name)) return params[name];
    if (body[name] != null) return body[name];
    if (query[name] != null) return query[name];
    return defaultValue;
  }

  // -- fed by the dispatcher ------------------------------------------------------

  // IncomingMessage's setTimeout: the request's idle timeout, kept by its response.
  setTimeout(msecs, callback) {
    if (callback) this.on('timeout', callback);
    this.res.setTimeout(msecs);
    return this;
  }

  _pushBody(buf) {
    if (this.destroyed) return;
    this.res._touch();
    this._unacked += buf.length;
    // While the readable buffer is under its high-water mark the bytes count as taken.
    if (this.push(buf)) this._returnCredit();
  }

  _endBody() {
    if (this.destroyed) return;
    this.complete = true;
    this.push(null);
  }

  // The gateway gave up: like Node's IncomingMessage, 'aborted' then 'close'.
  _abort() {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('aborted');
    this.destroy();
  }

  _read() {
    this._returnCredit();
  }

  _returnCredit() {
    if (this._unacked === 0) return;
    const bytes = this._unacked;
    this._unacked = 0;
    this._onConsumed(bytes);
  }
}

// A server's request has no status; Node sets these to null.
WidgetRequest.prototype.statusCode = null;
WidgetRequest.prototype.statusMessage = null;

module.exports = { WidgetRequest };
