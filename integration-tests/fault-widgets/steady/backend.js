// The bystander: must keep answering whatever the other widgets do.
module.exports = (r) => {
    r.register('ping', 'GET', (req, res) => res.send('pong'));
};
