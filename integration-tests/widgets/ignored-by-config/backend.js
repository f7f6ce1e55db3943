module.exports = (r) => r.register('status', (req, res) => res.send('ignored-by-config serves'));
