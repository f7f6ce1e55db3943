// Reads a JSON body the way stage widgets do.
const jsonBody = require('body/json');

module.exports = (r) => {
  r.register('echo', 'POST', (req, res, next) => {
    jsonBody(req, res, (err, body) => {
      if (err) return next(err);
      return res.json({ received: body, contentType: req.get('content-type') });
    });
  });
  r.register('raw', 'PUT', (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => res.json({ length: Buffer.concat(chunks).length, text: Buffer.concat(chunks).toString('utf8') }));
  });
  r.register('for-await', 'POST', async (req, res) => {
    let bytes = 0;
    for await (const chunk of req) bytes += chunk.length;
    res.json({ bytes });
  });
};
