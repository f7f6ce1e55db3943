'use strict';
// The shipped nginx configuration (docs/deploy/nginx-wbe.conf), run by a real nginx in
// front of two wbe instances and a stand-in stage backend: widget calls go to wbe, the
// rest to the stage, and killing one wbe instance mid-run fails no call.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startWbe, writeWidgets, eventually, tempDir, REPO } = require('./lib/wbe');

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The shipped site config with this test's ports, inside a minimal nginx.conf. */
function nginxConfig({ listen, wbePorts, stagePort, dir }) {
  let site = fs.readFileSync(path.join(REPO, 'docs', 'deploy', 'nginx-wbe.conf'), 'utf8');
  site = site.replace('server 127.0.0.1:8089', `server 127.0.0.1:${wbePorts[0]}`)
    .replace('# server 127.0.0.1:8090', `server 127.0.0.1:${wbePorts[1]}`)
    .replace('server 127.0.0.1:8088', `server 127.0.0.1:${stagePort}`)
    .replace('listen 80;', `listen 127.0.0.1:${listen};`);
  assert.match(site, new RegExp(`server 127.0.0.1:${wbePorts[1]} `), 'the second upstream line was found');
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${site}
}
`;
}

describe('behind nginx', { skip: NGINX ? false : 'nginx is not installed (scripts/setup --with-tests installs it)' }, () => {
  let instances;
  let stage;
  let nginx;
  let base;
  before(async () => {
    const widgets = writeWidgets({ hello: { 'backend.js': "module.exports = (r) => r.register('hello', (req, res) => res.json({ pid: process.pid, user: req.query.n }));" } });
    instances = [await startWbe({ widgets }), await startWbe({ widgets })];
    stage = http.createServer((req, res) => res.end(`stage:${req.url}`));
    await new Promise((r) => stage.listen(0, '127.0.0.1', r));
    const listen = await freePort();
    const dir = tempDir('wbe-nginx-');
    fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig({ listen, wbePorts: instances.map((i) => i.port), stagePort: stage.address().port, dir }));
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let errors = '';
    nginx.stderr.on('data', (d) => { errors += d; });
    base = `http://127.0.0.1:${listen}`;
    await eventually(async () => (await fetch(`${base}/console/x`)).ok, { what: `nginx to start (${errors})` });
  });
  after(async () => {
    if (nginx) nginx.kill('SIGQUIT');
    await Promise.all((instances || []).map((i) => i.stop()));
    if (stage) stage.close();
  });

  const call = (n) => fetch(`${base}/console/wb/hello?n=${n}`, { headers: { 'widget-id': 'hello' } });

  it('sends widget calls to wbe and the rest to the stage backend', async () => {
    const response = await call(1);
    assert.equal(response.status, 200);
    assert.equal((await response.json()).user, '1');
    assert.equal(await (await fetch(`${base}/console/templates`)).text(), 'stage:/console/templates');
  });

  it('balances over both instances, and keeps succeeding when one is killed', async () => {
    const served = new Set();
    for (let n = 0; n < 20; n += 1) {
      const response = await call(n);
      assert.equal(response.status, 200);
      served.add(response.headers.get('x-request-id').split('-')[0]);
      await response.json();
    }
    assert.equal(served.size, 2, 'both instances served');

    const statuses = [];
    const load = (async () => {
      for (let n = 0; n < 200; n += 1) {
        const response = await call(n);
        statuses.push(response.status);
        await response.text();
      }
    })();
    await eventually(() => statuses.length >= 50, { what: 'load before the kill' });
    instances[0].child.kill('SIGKILL');
    await load;
    assert.equal(statuses.length, 200);
    assert.deepEqual([...new Set(statuses)], [200], `statuses: ${statuses.filter((s) => s !== 200)}`);
  });
});
