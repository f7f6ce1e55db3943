module.exports = (r) => r.register('which', (req, res) => res.send('backend.js'));
