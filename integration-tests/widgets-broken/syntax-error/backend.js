module.exports = (r) => {
  r.register('status', (req, res) => res.send('never'));
  const broken = {;
};
