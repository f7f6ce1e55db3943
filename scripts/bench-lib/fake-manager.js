'use strict';
// A stand-in Cloudify manager for scripts/bench: answers GET /api/v3.1/blueprints with a
// fixed JSON page (20 blueprints) and GET /api/v3.1/user with a user, on 127.0.0.1 only.
// Usage: node fake-manager.js --port N

const http = require('http');
const { parseArgs } = require('./widgets');

const args = parseArgs(process.argv.slice(2));
const items = Array.from({ length: 20 }, (_, i) => ({
  id: `blueprint-${String(i).padStart(2, '0')}`,
  created_at: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
  state: 'uploaded',
  description: `Blueprint number ${i} of the benchmark's fake manager`,
}));
const blueprints = JSON.stringify({ metadata: { pagination: { total: items.length, size: 20, offset: 0 } }, items });
const user = JSON.stringify({ username: 'admin', role: 'sys_admin', tenants: { default_tenant: 'user' } });

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/api/v3.1/blueprints') answer(res, 200, blueprints);
  else if (req.method === 'GET' && path === '/api/v3.1/user') answer(res, 200, user);
  else answer(res, 404, JSON.stringify({ message: `no ${req.method} ${path}`, error_code: 'not_found_error' }));
});
// Longer than any pause between the bench's measurements, so that pooled client
// connections are not closed under the clients' feet.
server.keepAliveTimeout = 120 * 1000;
server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: server.address().port })}\n`);
});
