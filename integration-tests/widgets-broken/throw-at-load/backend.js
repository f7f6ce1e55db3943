const config = { ready: false };

if (!config.ready) {
  throw new Error('configuration is not ready');
}

module.exports = (r) => r.register('status', (req, res) => res.send('never'));
