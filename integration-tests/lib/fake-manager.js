'use strict';
// A stand-in for the Cloudify manager's REST service, speaking its shapes: token checks
// on `Authentication-Token`, list endpoints with `_size`/`_offset` pagination metadata,
// and error bodies with `message` and `error_code`. It records every request so tests
// can check what wbe sent. HTTPS mode uses a self-signed certificate made with openssl.

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { tempDir } = require('./wbe');

const USERS = {
  'good-token': { username: 'admin', role: 'sys_admin', tenants: { default_tenant: { 'tenant-role': 'manager' } }, show_getting_started: false },
  'viewer-token': { username: 'viewer', role: 'default', tenants: { default_tenant: { 'tenant-role': 'viewer' } }, show_getting_started: false },
};

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function unauthorized(res, why) {
  json(res, 401, { message: `User unauthorized: ${why}`, error_code: 'unauthorized_error', server_traceback: null });
}

/** A self-signed certificate for 127.0.0.1: {key, cert, certFile}. */
function selfSignedCertificate() {
  const dir = tempDir('wbe-tls-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  fs.chmodSync(cert, 0o644);
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
}

/**
 * Starts the fake manager on 127.0.0.1. `blueprints` is how many items the paginated
 * list holds. Resolves to {url, requests, stop(), ...}.
 */
async function startFakeManager({ blueprints = 2500, tls = false } = {}) {
  const requests = [];
  const items = Array.from({ length: blueprints }, (_, i) => ({ id: `bp-${i}`, tenant_name: 'default_tenant' }));

  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://manager');
    requests.push({ method: req.method, url: req.url, path: url.pathname, query: url.searchParams, headers: req.headers, body });

    const route = url.pathname.replace(/^\/api\/v3\.1/, '');
    if (!url.pathname.startsWith('/api/v3.1/')) return json(res, 404, { message: `No API at ${url.pathname}`, error_code: 'not_found_error' });

    if (route === '/user') {
      const token = req.headers['authentication-token'];
      if (!token) return unauthorized(res, 'no authentication token');
      if (!USERS[token]) return unauthorized(res, 'invalid token');
      return json(res, 200, USERS[token]);
    }
    if (route === '/blueprints' && req.method === 'GET') {
      const size = Math.min(Number(url.searchParams.get('_size') || 1000), 1000);
      const offset = Number(url.searchParams.get('_offset') || 0);
      return json(res, 200, {
        items: items.slice(offset, offset + size),
        metadata: { pagination: { total: items.length, size, offset }, filtered: null },
      });
    }
    const deployment = /^\/deployments\/([^/]+)$/.exec(route);
    if (deployment) {
      return json(res, 404, { message: `Requested \`Deployment\` with ID \`${deployment[1]}\` was not found`, error_code: 'not_found_error', server_traceback: null });
    }
    if (route === '/echo') {
      return json(res, 200, { method: req.method, query: Object.fromEntries(url.searchParams), headers: req.headers, body: body ? JSON.parse(body) : null });
    }
    if (route === '/slow') {
      return setTimeout(() => json(res, 200, { slow: true }), Number(url.searchParams.get('ms') || 3000));
    }
    if (route === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('plain text');
    }
    if (route === '/binary') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(Buffer.from([0, 1, 2, 255, 254]));
    }
    if (route === '/broken') {
      return json(res, 500, { message: 'Internal error in the manager', error_code: 'internal_server_error' });
    }
    return json(res, 404, { message: `Requested URL ${url.pathname} was not found`, error_code: 'not_found_error' });
  }

  const certificate = tls ? selfSignedCertificate() : null;
  const server = tls
    ? https.createServer({ key: certificate.key, cert: certificate.cert }, handle)
    : http.createServer(handle);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    certFile: certificate && certificate.certFile,
    certPem: certificate && certificate.cert.toString(),
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

module.exports = { startFakeManager, USERS };
