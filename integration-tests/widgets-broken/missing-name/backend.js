module.exports = (r) => {
  r.register('', 'GET', (req, res) => res.send('never'));
};
