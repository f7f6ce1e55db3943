// The everyday widget: a GET, a GET registered without a method, a POST (lower-case).
module.exports = (r) => {
  r.register('status', 'GET', (req, res) => res.send('alpha OK'));
  r.register('whoami', (req, res) => res.json({
    widget: 'alpha',
    method: req.method,
    url: req.url,
    path: req.path,
    baseUrl: req.baseUrl,
    originalUrl: req.originalUrl,
    service: req.params.service,
  }));
  r.register('data', 'post', (req, res) => res.status(201).send('created'));
};
