'use strict';
// A miniature of the Cloudify Console stage backend's widget-backend route, on a real
// Express 4: cookie-parser, `router.use('/:service', ...)` under <context>/wb, the
// register() rules, and the stage's app-level error handler. Differential tests run the
// same widget file here and in wbe and compare what an HTTP client receives.

const express = require('express');
const cookieParser = require('cookie-parser');
const path = require('node:path');

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

function loadWidget(file) {
  delete require.cache[require.resolve(file)];
  const exported = require(file);
  const define = typeof exported === 'function' ? exported : exported.default;
  const services = new Map();
  define({
    register(name, method, body) {
      let verb = method;
      let handler = body;
      if (typeof verb !== 'string') {
        handler = verb;
        verb = 'GET';
      }
      verb = verb.toUpperCase();
      if (!METHODS.includes(verb)) throw new Error(`Method '${verb}' not allowed. Valid methods: ${METHODS}`);
      services.set(`${verb} ${String(name).toUpperCase()}`, handler);
    },
  });
  return services;
}

/** Starts the stage on 127.0.0.1 with the given widgets `{id: '/abs/backend.js'}`. */
async function startStage(widgets, { contextPath = '/console' } = {}) {
  const registry = new Map(Object.entries(widgets).map(([id, file]) => [id, loadWidget(path.resolve(file))]));
  const app = express();
  app.use(cookieParser());
  const router = express.Router();
  router.use('/:service', (req, res, next) => {
    const widgetId = req.header('widget-id');
    const services = registry.get(widgetId);
    const service = req.params.service.toUpperCase();
    const handler = services && services.get(`${req.method} ${service}`);
    const helper = {};
    new Promise((resolve, reject) => {
      if (!handler) {
        reject(`No script for service ${service} for method ${req.method} for widget ${widgetId}`);
        return;
      }
      resolve(handler(req, res, next, helper));
    }).catch(next);
  });
  app.use(`${contextPath}/wb`, router);
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    let { message } = err;
    if (err.status === 500) message = 'The server is temporarily unavailable';
    res.status(err.status || 404).send({ message: message || err });
  });
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address();
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

module.exports = { startStage };
