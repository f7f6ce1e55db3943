// Echoes what a handler sees on `req`.
module.exports = (r) => {
  const describe = (req) => ({
    method: req.method,
    url: req.url,
    originalUrl: req.originalUrl,
    baseUrl: req.baseUrl,
    path: req.path,
    query: req.query,
    headers: req.headers,
    getCustom: req.get('X-Custom-Header'),
    headerCustom: req.header('x-custom-header'),
    getReferrer: req.get('Referrer'),
    params: req.params,
    service: req.params.service,
    cookies: req.cookies,
    ip: req.ip,
    protocol: req.protocol,
    secure: req.secure,
    hostname: req.hostname,
    user: req.user === undefined ? '<undefined>' : req.user,
    hasBody: req.body !== undefined,
    readable: typeof req.pipe === 'function' && typeof req.on === 'function',
  });
  for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
    r.register('info', method, (req, res) => res.json(describe(req)));
  }
};
