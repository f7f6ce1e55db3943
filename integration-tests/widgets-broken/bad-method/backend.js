module.exports = (r) => {
  r.register('status', 'GET', (req, res) => res.send('fine'));
  r.register('options', 'OPTIONS', (req, res) => res.send('never'));
};
