'use strict';
// The `helper` object the comparison servers hand to handlers: helper.Manager over Node's
// keep-alive HTTP client against the bench's fake manager (what the stage's
// ManagerService did, minus its logging), and a quiet helper.Logger. wbe runs the same
// calls in its gateway instead (call/ret frames).

const http = require('http');

function toQuery(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function xsrfToken(cookieHeader) {
  const match = /(?:^|;\s*)XSRF-TOKEN=([^;]*)/.exec(cookieHeader || '');
  return match ? decodeURIComponent(match[1]) : null;
}

const DROPPED = new Set(['host', 'connection', 'content-length', 'transfer-encoding']);

function createHelper(managerUrl) {
  const base = new URL(managerUrl || 'http://127.0.0.1:80');
  const agent = new http.Agent({ keepAlive: true });

  function call(method, url, options) {
    const { params = {}, body = null, headers = {} } = options || {};
    const outgoing = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!DROPPED.has(name.toLowerCase())) outgoing[name] = value;
    }
    const token = xsrfToken(headers.cookie);
    if (token) outgoing['authentication-token'] = token;
    const payload = body == null ? null : JSON.stringify(body);
    if (payload) outgoing['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: base.hostname,
          port: base.port || 80,
          method: String(method).toUpperCase(),
          path: `/api/v3.1${url}${toQuery(params)}`,
          headers: outgoing,
          agent,
        },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
            if (response.statusCode >= 200 && response.statusCode < 300) resolve(parsed);
            else reject(parsed);
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  }

  const Manager = { call };
  for (const [name, method] of Object.entries({ doGet: 'GET', doPost: 'POST', doPut: 'PUT', doDelete: 'DELETE', doPatch: 'PATCH' })) {
    Manager[name] = (url, options) => call(method, url, options);
  }
  const quiet = () => {};
  const Logger = () => ({ error: quiet, warn: quiet, info: quiet, verbose: quiet, debug: quiet, silly: quiet, log: quiet });
  return { Manager, Logger };
}

module.exports = { createHelper };
