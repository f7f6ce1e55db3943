module.exports = function (r) {
  r.register('only-beta', 'GET', (req, res) => res.send('beta'));
  r.register('status', 'GET', (req, res) => res.send('beta OK'));
};
