// Benchmark widget (scripts/bench, scenarios 1, 2, 6, 7): the smallest endpoint there is.
module.exports = (r) => {
    r.register('status', 'GET', (req, res) => res.send('OK'));
};
