// Handlers that never answer, or answer slowly; used for timeouts, cancellation and
// backpressure. `aborted` counts the requests the gateway told it to give up on.
let aborted = 0;
let active = 0;
module.exports = (r) => {
    r.register('never', 'GET', (req) => {
        active += 1;
        req.on('aborted', () => {
            aborted += 1;
        });
        req.on('close', () => {
            active -= 1;
        });
    });
    r.register('slow', 'GET', (req, res) => {
        setTimeout(() => res.json({ done: true }), Number(req.query.ms || 500));
    });
    // A response that starts and never ends: it holds its admission slot until the
    // client goes away.
    r.register('drip', 'GET', (req, res) => {
        res.write('x');
    });
    r.register('stats', 'GET', (req, res) => res.json({ aborted, active }));
};
