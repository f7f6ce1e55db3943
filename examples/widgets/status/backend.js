// The smallest widget backend: GET /console/wb/status with the header `widget-id: status`.
module.exports = (r) => {
  r.register('status', 'GET', (req, res) => res.send('OK'));
};
