// Talks to the Cloudify manager with helper.Manager and to any other HTTP service with
// helper.Request. Passing req.headers on lets the manager see the caller's token.
//
//   GET /console/wb/blueprints          (widget-id: manager-info)
//   GET /console/wb/deployment?id=...   (widget-id: manager-info)
//   GET /console/wb/fetch?url=...       (widget-id: manager-info)
const _ = require('lodash');

module.exports = (r) => {
  r.register('blueprints', 'GET', (req, res, next, helper) =>
    helper.Manager.doGetFull('/blueprints', { params: { _include: 'id,created_at' }, headers: req.headers })
      .then((data) => res.send({ count: data.items.length, ids: _.map(data.items, 'id') })));

  r.register('deployment', 'GET', (req, res, next, helper) =>
    helper.Manager.doGet(`/deployments/${encodeURIComponent(req.query.id)}`, { headers: req.headers })
      .then((deployment) => res.send(_.pick(deployment, ['id', 'blueprint_id', 'created_at'])))
      // The manager's error body, e.g. {"message": "...", "error_code": "not_found_error"}.
      .catch((error) => res.status(404).send({ message: error.message, code: error.error_code })));

  r.register('fetch', 'GET', (req, res, next, helper) =>
    helper.Request.doGet(req.query.url, { parseResponse: false })
      .then((buffer) => res.send({ url: req.query.url, bytes: buffer.length })));
};
