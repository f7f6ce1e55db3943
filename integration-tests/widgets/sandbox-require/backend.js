// What `require` gives a widget: allowed packages work, built-ins are refused.
const _ = require('lodash');

function attempt(name) {
  try {
    const mod = require(name);
    return { ok: true, type: typeof mod };
  } catch (err) {
    return { ok: false, message: err.message };
  }
}

module.exports = (r) => {
  r.register('require', (req, res) => res.json(attempt(req.query.name)));
  r.register('lodash', (req, res) => res.json({ chunked: _.chunk([1, 2, 3, 4, 5], 2) }));
  r.register('globals', (req, res) => {
    const url = new URL('http://x/p?q=1');
    res.json({
      buffer: Buffer.from('hi').toString('base64'),
      url: url.searchParams.get('q'),
      params: new URLSearchParams('a=1&a=2').getAll('a'),
      timers: typeof setTimeout === 'function' && typeof setImmediate === 'function' && typeof clearTimeout === 'function',
      promise: typeof Promise.all === 'function',
    });
  });
};
