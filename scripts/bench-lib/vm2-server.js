'use strict';
// vm2-per-request: what the stage backend did for every widget-backend call
// (cloudify-stage backend/handler/BackendHandler.ts, callService): Express 4 routes
// `/console/wb/:service`, looks up the handler's stored source text, creates a new vm2
// NodeVM with the allowed modules and runs `module.exports = <handler source>` in it,
// then calls the result with (req, res, next, helper). The stage looked the source up in
// its database on every request; here it is a Map, so this baseline is faster than the
// stage was.
// Usage: node vm2-server.js --widgets DIR --port N --manager-url URL   (cwd: where the
// allowed modules resolve from, as the stage resolved them from its own folder)

const path = require('path');
const express = require('express');
const { NodeVM } = require('vm2');
const { loadWidgets, endpointKey, parseArgs } = require('./widgets');
const { createHelper } = require('./helpers');

const args = parseArgs(process.argv.slice(2));
const allowedModules = ['lodash', 'body', 'elkjs'];
const helper = createHelper(args['manager-url']);
// The stage stored `module.exports = ${service.toString()}` for each registered handler.
const scripts = new Map();
for (const [key, handler] of loadWidgets(args.widgets)) scripts.set(key, `module.exports = ${handler.toString()}`);

function callService(serviceName, method, req, res, next) {
  const widgetId = req.header('widget-id');
  const service = String(serviceName).toUpperCase();
  return Promise.resolve(scripts.get(endpointKey(widgetId, service, method))).then((script) => {
    if (script) {
      const vm = new NodeVM({ require: { external: allowedModules } });
      return vm.run(script, path.resolve(`${process.cwd()}/${widgetId}`))(req, res, next, helper);
    }
    return Promise.reject(`No script for service ${service} for method ${method} for widget ${widgetId}`);
  });
}

const app = express();
const router = express.Router();
router.use('/:service', (req, res, next) => callService(req.params.service, req.method, req, res, next).catch(next));
app.use('/console/wb', router);
// The stage's error handler: status err.status or 404, JSON {message}.
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  const status = (err && err.status) || 404;
  res.status(status).send({ message: status === 500 ? 'The server is temporarily unavailable' : (err && err.message) || err });
});

const server = app.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: server.address().port })}\n`);
});
server.keepAliveTimeout = 120 * 1000;
