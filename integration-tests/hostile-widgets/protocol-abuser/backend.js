// Abuses the protocol from inside the worker by writing to the real stdout descriptor,
// which the shim owns. Each endpoint should get this worker killed and restarted; the
// gateway must stay up with bounded memory.
function rawWrite(text) {
    // eslint-disable-next-line no-new-func
    const proc = Function('return process')();
    const fs = proc.mainModule ? proc.mainModule.require('fs') : module.constructor._load('fs');
    fs.writeSync(1, text);
}

module.exports = (r) => {
    r.register('pid', 'GET', (req, res) => res.json({ pid: process.pid }));
    r.register('garbage', 'GET', () => rawWrite('this is not json\n'));
    r.register('unknown-type', 'GET', () => rawWrite('{"t":"launch","id":1}\n'));
    r.register('unknown-id', 'GET', () => rawWrite('{"t":"head","id":987654321,"status":200,"headers":[]}\n'));
    r.register('endless-line', 'GET', () => {
        const block = 'x'.repeat(1024 * 1024);
        for (let i = 0; i < 40; i += 1) rawWrite(block);
    });
    r.register('call-flood', 'GET', (req, res, next, helper) => {
        for (let i = 0; i < 5000; i += 1) helper.Request.doGet(`http://127.0.0.1:1/${i}`).catch(() => {});
    });
};
