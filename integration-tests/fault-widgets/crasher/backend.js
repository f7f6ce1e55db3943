// Dies in the ways a worker can die; each endpoint takes the worker down.
module.exports = (r) => {
    r.register('pid', 'GET', (req, res) => res.json({ pid: process.pid }));
    r.register('exit', 'GET', () => process.exit(3));
    r.register('timer-throw', 'GET', () => {
        setTimeout(() => {
            throw new Error('boom from a timer');
        }, 10);
    });
    r.register('self-kill', 'GET', () => process.kill(process.pid, 'SIGKILL'));
};
