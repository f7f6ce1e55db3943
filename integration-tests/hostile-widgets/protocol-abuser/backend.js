// Abuses the protocol from inside the worker by writing to the descriptors the shim owns:
// the control channel (stdout, fd 1) and the first lane (fd 3). Each endpoint should get
// this worker killed and restarted; the gateway must stay up with bounded memory.
const CONTROL = 1;
const LANE = 3;

// The descriptors are non-blocking: keep writing what a full pipe refused, as a
// determined attacker would, until the gateway kills the worker.
function rawWrite(text, fd = CONTROL) {
    // eslint-disable-next-line no-new-func
    const proc = Function('return process')();
    const fs = proc.mainModule ? proc.mainModule.require('fs') : module.constructor._load('fs');
    let rest = Buffer.from(text);
    while (rest.length > 0) {
        try {
            rest = rest.subarray(fs.writeSync(fd, rest));
        } catch (err) {
            if (err.code !== 'EAGAIN') throw err;
        }
    }
}

module.exports = (r) => {
    r.register('pid', 'GET', (req, res) => res.json({ pid: process.pid }));
    r.register('garbage', 'GET', () => rawWrite('this is not json\n'));
    r.register('unknown-type', 'GET', () => rawWrite('{"t":"launch","id":1}\n'));
    r.register('unknown-id', 'GET', () => rawWrite('{"t":"head","id":987654321,"status":200,"headers":[]}\n'));
    r.register('response-on-control', 'GET', () => rawWrite('{"t":"end","id":1}\n'));
    r.register('lane-garbage', 'GET', () => rawWrite('this is not json\n', LANE));
    r.register('lane-unknown-id', 'GET', () => rawWrite('{"t":"head","id":987654321,"status":200,"headers":[]}\n', LANE));
    r.register('log-on-lane', 'GET', () => rawWrite('{"t":"log","level":"info","msg":"x"}\n', LANE));
    // Announces a 1 GiB payload: the gateway must refuse it at the line, not buffer it.
    r.register('oversized-payload', 'GET', () => {
        rawWrite('{"t":"chunk","id":1,"len":1073741824}\n', LANE);
        for (let i = 0; i < 40; i += 1) rawWrite('y'.repeat(1024 * 1024), LANE);
    });
    r.register('endless-line', 'GET', () => {
        const block = 'x'.repeat(1024 * 1024);
        for (let i = 0; i < 40; i += 1) rawWrite(block);
    });
    r.register('call-flood', 'GET', (req, res, next, helper) => {
        for (let i = 0; i < 5000; i += 1) helper.Request.doGet(`http://127.0.0.1:1/${i}`).catch(() => {});
    });
};
