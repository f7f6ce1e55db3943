module.exports = (r) => {
  r.register('twice', 'GET', (req, res) => res.send('first registration'));
  r.register('TWICE', 'get', (req, res) => res.send('second registration'));
  r.register('twice', 'POST', (req, res) => res.send('post registration'));
  r.register('shorthand', (req, res) => res.send(`shorthand via ${req.method}`));
};
