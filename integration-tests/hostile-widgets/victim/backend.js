// A well-behaved widget that must keep answering while its neighbours attack.
module.exports = (r) => {
    r.register('ping', 'GET', (req, res) => res.json({ ok: true, pid: process.pid }));
};
