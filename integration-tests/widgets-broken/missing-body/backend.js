module.exports = (r) => {
  r.register('status', 'GET');
};
