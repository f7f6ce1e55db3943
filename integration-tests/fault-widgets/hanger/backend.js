// Blocks its event loop for good: only the gateway's heartbeat can notice.
module.exports = (r) => {
    r.register('pid', 'GET', (req, res) => res.json({ pid: process.pid }));
    r.register('spin', 'GET', () => {
        for (;;) {
            // never yields
        }
    });
};
