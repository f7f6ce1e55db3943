'use strict';
// Owns the rules of `r.register(name, method, body)`, copied from the stage's
// BackendRegistrator (backend/handler/BackendHandler.ts) including its messages.
// The stage reported a bad call by rejecting its load promise rather than throwing, so
// a widget that catches around register() still fails to load; we mirror that by
// remembering the first error instead of throwing it.

// The stage's lodash semantics (toUpper of a non-string, ...), without loading all of lodash.
const toUpper = require('lodash/toUpper');
const isString = require('lodash/isString');
const isFunction = require('lodash/isFunction');

const ALLOWED_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

function createRegistry() {
  // key `${METHOD} ${NAME}` -> handler; re-registering replaces (last one wins).
  const endpoints = new Map();
  let firstError = null;

  function fail(message) {
    // Captured here so the load error can point at the widget's register() line.
    if (!firstError) firstError = new Error(message);
  }

  function register(serviceName, method, service) {
    if (!serviceName) return fail('Service name must be provided');
    const name = toUpper(serviceName);
    let body = service;
    let verb = method;
    if (!isString(verb)) {
      body = verb;
      verb = 'GET';
    } else {
      verb = toUpper(verb);
      if (!ALLOWED_METHODS.includes(verb)) {
        return fail(`Method '${verb}' not allowed. Valid methods: ${ALLOWED_METHODS.toString()}`);
      }
    }
    if (!body) return fail('Service body must be provided');
    if (!isFunction(body)) {
      return fail('Service body must be a function (function(request, response, next, helper) {...})');
    }
    endpoints.set(`${verb} ${name}`, { name, method: verb, handler: body });
    return undefined;
  }

  return {
    registrator: { register },
    error: () => firstError,
    list: () => [...endpoints.values()].map(({ name, method }) => ({ name, method })),
    find: (name, method) => endpoints.get(`${toUpper(method)} ${toUpper(name)}`),
  };
}

module.exports = { createRegistry };
