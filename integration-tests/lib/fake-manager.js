'use strict';
// A stand-in for the Cloudify manager's REST service, speaking its shapes: token checks
// on `Authentication-Token`, list endpoints with `_size`/`_offset` pagination metadata,
// and error bodies with `message` and `error_code`. It records every request so tests
// can check what wbe sent. HTTPS mode uses a private CA and a server certificate made with openssl.

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { execFileSync } = require('node:child_process');
const { tempDir } = require('./wbe');

// What `GET /api/v3.1/user?_get_data=true` answers for each known token.
const USERS = {
  'good-token': {
    username: 'admin', role: 'sys_admin', group_system_roles: {}, active: true,
    tenants: { default_tenant: { 'tenant-role': 'manager', roles: ['manager'] } },
    tenant_roles: { direct: { default_tenant: 'manager' }, groups: {} },
    show_getting_started: false, first_login_at: '2026-01-01T00:00:00.000Z', last_login_at: '2026-11-24T10:00:00.000Z',
  },
  'viewer-token': {
    username: 'viewer', role: 'default', group_system_roles: {}, active: true,
    tenants: { default_tenant: { 'tenant-role': 'viewer', roles: ['viewer'] } },
    tenant_roles: { direct: { default_tenant: 'viewer' }, groups: {} },
    show_getting_started: false, first_login_at: null, last_login_at: null,
  },
};

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function unauthorized(res, why) {
  json(res, 401, { message: `User unauthorized: ${why}`, error_code: 'unauthorized_error', server_traceback: null });
}

/**
 * TLS material like a Cloudify manager's: a private CA (what `manager.ca_cert` and a
 * helper.Request `certificate` name) and a server certificate for 127.0.0.1 signed by
 * it. Made with the openssl CLI at test time: {key, cert, caFile, caPem}.
 */
function makeCertificates(mode) {
  const dir = tempDir('wbe-tls-');
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (mode === 'expired-self-signed') {
    // The same kind of certificate, valid only for a day in 2020: `openssl ca` is the
    // one openssl command that takes explicit dates.
    fs.writeFileSync(file('index.txt'), '');
    fs.writeFileSync(file('serial'), '01\n');
    fs.writeFileSync(file('ca.cnf'), ['[ca]', 'default_ca = expired', '[expired]', `database = ${file('index.txt')}`,
      `new_certs_dir = ${dir}`, `serial = ${file('serial')}`, 'default_md = sha256', 'policy = any', 'copy_extensions = copy',
      '[any]', 'commonName = supplied'].join('\n'));
    openssl('req', '-new', ...ec, '-keyout', file('key.pem'), '-out', file('req.csr'), '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE');
    openssl('ca', '-batch', '-notext', '-config', file('ca.cnf'), '-selfsign', '-keyfile', file('key.pem'), '-in', file('req.csr'),
      '-out', file('cert.pem'), '-startdate', '20200101000000Z', '-enddate', '20200102000000Z');
    const pem = fs.readFileSync(file('cert.pem'));
    return { key: fs.readFileSync(file('key.pem')), cert: pem, caFile: file('cert.pem'), caPem: pem.toString() };
  }
  if (mode === 'self-signed') {
    // What `openssl req -x509` gives by default: one certificate, CA:TRUE, used by the
    // server directly. Node's https accepts it as its own trust anchor.
    openssl('req', '-x509', ...ec, '-keyout', file('key.pem'), '-out', file('cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1');
    fs.chmodSync(file('cert.pem'), 0o644);
    const pem = fs.readFileSync(file('cert.pem'));
    return { key: fs.readFileSync(file('key.pem')), cert: pem, caFile: file('cert.pem'), caPem: pem.toString() };
  }
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=Fake Cloudify Internal CA');
  openssl('req', ...ec, '-keyout', file('key.pem'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(file('ext.cnf'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ].join('\n'));
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('cert.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  fs.chmodSync(file('ca.pem'), 0o644);
  return { key: fs.readFileSync(file('key.pem')), cert: fs.readFileSync(file('cert.pem')), caFile: file('ca.pem'), caPem: fs.readFileSync(file('ca.pem'), 'utf8') };
}

/**
 * Starts the fake manager on 127.0.0.1. `blueprints` is how many items the paginated
 * list holds. `tls`: false (http), true (a CA-signed certificate), 'self-signed' or 'expired-self-signed'. Resolves to {url, requests, stop(), ...}.
 */
async function startFakeManager({ blueprints = 2500, tls = false } = {}) {
  const requests = [];
  const timers = new Set();
  const items = Array.from({ length: blueprints }, (_, i) => ({
    id: `bp-${i}`, tenant_name: 'default_tenant', visibility: 'tenant', state: 'uploaded',
    main_file_name: 'blueprint.yaml', created_by: 'admin', created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    description: null,
  }));

  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://manager');
    requests.push({ method: req.method, url: req.url, path: url.pathname, query: url.searchParams, headers: req.headers, body });

    const route = url.pathname.replace(/^\/api\/v3\.1/, '');
    if (!url.pathname.startsWith('/api/v3.1/')) return json(res, 404, { message: `No API at ${url.pathname}`, error_code: 'not_found_error' });

    if (route === '/user' && url.searchParams.get('_get_data') === 'true') {
      const token = req.headers['authentication-token'];
      if (!token) return unauthorized(res, 'no authentication token');
      if (!USERS[token]) return unauthorized(res, 'invalid token');
      return json(res, 200, USERS[token]);
    }
    if (route === '/blueprints' && req.method === 'GET') {
      const size = Math.min(Number(url.searchParams.get('_size') || 1000), 1000);
      if (!Number.isInteger(size) || size < 0) return json(res, 400, { message: `Invalid _size: ${url.searchParams.get('_size')}`, error_code: 'bad_parameters_error' });
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
      let parsed = body;
      try {
        parsed = body ? JSON.parse(body) : null;
      } catch {
        // not JSON: echoed as text
      }
      const query = {};
      for (const key of new Set(url.searchParams.keys())) {
        const all = url.searchParams.getAll(key);
        query[key] = all.length > 1 ? all : all[0];
      }
      return json(res, 200, { method: req.method, query, headers: req.headers, body: parsed });
    }
    if (route === '/slow') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        json(res, 200, { slow: true });
      }, Number(url.searchParams.get('ms') || 3000));
      timers.add(timer);
      return timer;
    }
    if (route === '/compressed') {
      // Content coding as a web server chooses it from Accept-Encoding: brotli first.
      const body = Buffer.from(JSON.stringify({ compressed: true }));
      const accepted = req.headers['accept-encoding'] || '';
      const [coding, bytes] = /\bbr\b/.test(accepted) ? ['br', zlib.brotliCompressSync(body)]
        : /\bgzip\b/.test(accepted) ? ['gzip', zlib.gzipSync(body)] : [null, body];
      res.writeHead(200, { 'content-type': 'application/json', ...(coding ? { 'content-encoding': coding } : {}) });
      return res.end(bytes);
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

  const certificate = tls ? makeCertificates(tls) : null;
  const server = tls
    ? https.createServer({ key: certificate.key, cert: certificate.cert }, handle)
    : http.createServer(handle);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    /** The recorded requests whose path (after /api/v3.1) is `route`. */
    requestsTo: (route) => requests.filter((r) => r.path === `/api/v3.1${route}`),
    /** The CA certificate (PEM file path and text) that signed this manager's certificate. */
    certFile: certificate && certificate.caFile,
    certPem: certificate && certificate.caPem,
    stop: () => new Promise((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

module.exports = { startFakeManager, USERS };
