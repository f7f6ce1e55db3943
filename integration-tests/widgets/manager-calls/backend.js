// helper.Manager and helper.Request, driven by the test through query/body parameters.
const jsonBody = require('body/json');

function describeError(err) {
  if (err instanceof Error) return { isError: true, message: err.message };
  return { isError: false, value: err };
}

function answer(res, promise) {
  return promise.then(
    (value) => res.json({ ok: true, value: Buffer.isBuffer(value) ? { buffer: true, length: value.length, hex: value.toString('hex') } : value }),
    (err) => res.status(200).json({ ok: false, error: describeError(err) })
  );
}

function withBody(req, res, next, fn) {
  jsonBody(req, res, { limit: 10 * 1024 * 1024 }, (err, body) => (err ? next(err) : fn(body)));
}

module.exports = (r) => {
  // GET with the caller's headers passed on, as stage widgets do.
  r.register('blueprints', (req, res, next, helper) =>
    answer(res, helper.Manager.doGet('/blueprints', { params: { _size: 3, _offset: 5, id: ['bp-1', 'bp-2'] }, headers: req.headers })));
  r.register('echo', 'POST', (req, res, next, helper) =>
    withBody(req, res, next, (body) => answer(res, helper.Manager.doPost('/echo', { params: { tag: ['x', 'y'] }, body, headers: req.headers }))));
  r.register('call', 'POST', (req, res, next, helper) =>
    withBody(req, res, next, (b) => answer(res, helper.Manager.call(b.method, b.url, b.options))));
  r.register('full', (req, res, next, helper) =>
    answer(res, helper.Manager.doGetFull('/blueprints', { headers: req.headers }).then((result) => ({
      count: result.items.length,
      unique: new Set(result.items.map((i) => i.id)).size,
      first: result.items[0],
      last: result.items[result.items.length - 1],
      keys: Object.keys(result),
    }))));
  r.register('missing', (req, res, next, helper) =>
    answer(res, helper.Manager.doGet(`/deployments/${req.query.id}`, { headers: req.headers })));
  r.register('missing-next', (req, res, next, helper) =>
    helper.Manager.doGet(`/deployments/${req.query.id}`).then((value) => res.json(value)));
  r.register('slow', (req, res, next, helper) =>
    answer(res, helper.Manager.doGet('/slow', { params: { ms: req.query.ms }, timeout: Number(req.query.timeout) || undefined })));
  r.register('request', 'POST', (req, res, next, helper) =>
    withBody(req, res, next, (b) => answer(res, helper.Request.call(b.method || 'GET', b.url, b.options || {}))));
  r.register('request-get', (req, res, next, helper) =>
    answer(res, helper.Request.doGet(req.query.url, { params: { q: req.query.q } })));
};
