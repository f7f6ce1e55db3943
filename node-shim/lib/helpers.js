'use strict';
// Owns `helper.Manager` and `helper.Request`: the stage's service APIs, turned into
// `call` frames answered by `ret` frames. The gateway does the HTTP (and the paging of
// doGetFull), so the widget's process never holds the manager's address, CA or
// credentials. Each call carries the id of the request it serves.

function cancelledError() {
  return new Error('The request was cancelled; helper calls are no longer answered');
}

function createHelperCalls(send) {
  let nextCid = 1;
  const pending = new Map(); // cid -> {id, resolve, reject}

  function rpc(id, helper, fn, args) {
    return new Promise((resolve, reject) => {
      const cid = nextCid++;
      // send() serialises now: a body that is not JSON, or arguments too large for one
      // frame, reject this call only.
      send({ t: 'call', cid, id, helper, fn, args });
      pending.set(cid, { id, resolve, reject });
    });
  }

  // A binary result (one with a `len`) resolves the bytes that followed its frame. A
  // manager error rejects with the manager's own body, as the stage's jsonRequest did.
  function settle(frame, payload) {
    const call = pending.get(frame.cid);
    if (!call) return;
    pending.delete(frame.cid);
    if (frame.ok) {
      call.resolve(frame.len === undefined ? frame.value : payload);
      return;
    }
    const error = frame.error || {};
    if (error.kind === 'manager') call.reject(error.body);
    else call.reject(new Error(error.message || `helper call failed (${error.kind || 'unknown'})`));
  }

  // After a cancel the gateway answers nothing more for that request.
  function cancelRequest(id) {
    for (const [cid, call] of pending) {
      if (call.id === id) {
        pending.delete(cid);
        call.reject(cancelledError());
      }
    }
  }

  function managerHelper(guardedRpc) {
    const Manager = withShortcuts((method, url, options) => {
      const { params = {}, body = null, headers = {}, timeout = null } = options || {};
      return guardedRpc('manager', 'call', { method: String(method).toUpperCase(), url, params, headers, body, timeout });
    });
    Manager.doGetFull = (url, options) => {
      const { params = {}, headers = {}, timeout = null } = options || {};
      return guardedRpc('manager', 'getFull', { url, params, headers, timeout });
    };
    return Manager;
  }

  function requestHelper(guardedRpc) {
    return withShortcuts((method, url, options) => {
      const { params = {}, body = null, parseResponse = true, headers = {}, certificate = null } = options || {};
      return guardedRpc('request', 'call', {
        method: String(method).toUpperCase(), url, params, headers, body, parseResponse, certificate,
      });
    });
  }

  // Written out rather than built in a loop: every request builds two of these.
  function withShortcuts(call) {
    const api = {
      call,
      doGet: (url, options) => api.call('GET', url, options),
      doPost: (url, options) => api.call('POST', url, options),
      doDelete: (url, options) => api.call('DELETE', url, options),
      doPut: (url, options) => api.call('PUT', url, options),
      doPatch: (url, options) => api.call('PATCH', url, options),
    };
    return api;
  }

  // isCancelled(): whether the request this helper belongs to was cancelled.
  // Plain data properties, as the stage's helper has. Building Manager and Request on
  // first use through getters was tried and is far worse: an object literal with getters
  // gets a hidden class of its own per request, which V8 keeps in old space, so every
  // request's young objects survived scavenges until the next full GC (5-8 ms pauses).
  function helpersFor(id, isCancelled, Logger) {
    const guardedRpc = (helper, fn, args) =>
      isCancelled() ? Promise.reject(cancelledError()) : rpc(id, helper, fn, args);
    return { Logger, Manager: managerHelper(guardedRpc), Request: requestHelper(guardedRpc) };
  }

  return { helpersFor, settle, cancelRequest };
}

module.exports = { createHelperCalls };
