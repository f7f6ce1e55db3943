'use strict';
// Loads every `<widget>/backend.js` of a widgets folder with a stage-style registrator and
// returns what each registered, for the two comparison servers (node-floor, vm2). The
// load itself is not measured; only how each server runs the handlers is.

const fs = require('fs');
const path = require('path');

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

function endpointKey(widgetId, service, method) {
  return `${widgetId}\0${String(service).toUpperCase()}\0${String(method).toUpperCase()}`;
}

// Map endpointKey -> handler function.
function loadWidgets(dir) {
  const endpoints = new Map();
  for (const widgetId of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, widgetId, 'backend.js');
    if (!fs.existsSync(file)) continue;
    const exported = require(file);
    const register = typeof exported === 'function' ? exported : exported && exported.default;
    if (typeof register !== 'function') throw new Error(`${file}: the export is not a function`);
    register({
      register(name, method, body) {
        let handler = body;
        let verb = method;
        if (typeof method !== 'string') {
          handler = method;
          verb = 'GET';
        }
        if (!METHODS.includes(String(verb).toUpperCase())) throw new Error(`${file}: method ${verb}`);
        if (typeof handler !== 'function') throw new Error(`${file}: ${name} has no handler`);
        endpoints.set(endpointKey(widgetId, name, verb), handler);
      },
    });
  }
  return endpoints;
}

// `--name value` pairs of a helper program's command line.
function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  return args;
}

module.exports = { loadWidgets, endpointKey, parseArgs };
