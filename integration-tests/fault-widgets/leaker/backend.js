// Allocates without bound until something stops it.
const hoard = [];
module.exports = (r) => {
    r.register('pid', 'GET', (req, res) => res.json({ pid: process.pid }));
    r.register('heap', 'GET', () => {
        setInterval(() => {
            for (let i = 0; i < 200; i += 1) hoard.push({ filler: 'x'.repeat(1024) + i });
        }, 1);
    });
    r.register('buffers', 'GET', () => {
        setInterval(() => hoard.push(Buffer.alloc(8 * 1024 * 1024, 1)), 1);
    });
};
