module.exports = (r) => {
  r.register('status', 'GET', { handler: 'not a function' });
};
