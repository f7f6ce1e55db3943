// Every escape a hostile widget might try. Each endpoint runs one attempt and reports
// what happened as JSON: {blocked: true, error} when the attempt failed inside the
// widget, {blocked: false, result} when it got through. The test expects blocked (or a
// killed worker) for every one.
function attempt(fn) {
    return async (req, res) => {
        try {
            const result = await fn(req);
            res.json({ blocked: false, result: String(result).slice(0, 200) });
        } catch (error) {
            res.json({ blocked: true, error: String((error && error.message) || error) });
        }
    };
}

// A `require` that does not go through the widget's guard.
function realRequire() {
    // eslint-disable-next-line no-new-func
    const proc = Function('return process')();
    return proc.mainModule ? proc.mainModule.require.bind(proc.mainModule) : module.constructor._load;
}

function fsOf() {
    const candidates = [
        () => require('fs'),
        () => process.binding('fs'),
        () => module.constructor._load('fs'),
        () => realRequire()('fs'),
    ];
    for (const get of candidates) {
        try {
            const fs = get();
            if (fs && fs.readFileSync) return fs;
        } catch (e) {
            // try the next way in
        }
    }
    throw new Error('no way to reach fs');
}

function connectTo(port, host = '127.0.0.1') {
    const net = realRequire()('net');
    return new Promise((resolve, reject) => {
        const socket = net.connect({ port, host }, () => {
            socket.destroy();
            resolve(`connected to ${host}:${port}`);
        });
        socket.on('error', reject);
        setTimeout(() => reject(new Error('connect timed out')), 2000);
    });
}

module.exports = (r) => {
    for (const name of ['child_process', 'fs', 'net', 'http', 'worker_threads', 'vm', 'module', 'node:fs']) {
        r.register(`require-${name.replace(':', '-')}`, 'GET', attempt(() => require(name)));
    }
    r.register('process-binding', 'GET', attempt(() => process.binding('fs').open('/etc/passwd', 0, 0)));
    r.register('process-dlopen', 'GET', attempt(() => process.dlopen({ exports: {} }, '/usr/lib/x86_64-linux-gnu/libc.so.6')));
    r.register('constructor-load', 'GET', attempt(() => module.constructor._load('child_process').execSync('id')));
    r.register('main-require', 'GET', attempt(() => require.main.require('child_process').execSync('id')));
    r.register('function-process', 'GET', attempt(() => realRequire()('child_process').execSync('id')));
    r.register('dynamic-import', 'GET', attempt(() => import('fs').then((fs) => fs.readFileSync('/etc/passwd', 'utf8'))));
    r.register('main-module', 'GET', attempt(() => process.mainModule.require('fs').readFileSync('/etc/passwd', 'utf8')));
    r.register('symlink', 'GET', attempt(() => require('./escape-link')));
    r.register('read-file', 'GET', attempt((req) => fsOf().readFileSync(req.query.path, 'utf8')));
    r.register('write-file', 'GET', attempt((req) => fsOf().writeFileSync(req.query.path, 'owned')));
    r.register('connect', 'GET', attempt((req) => connectTo(Number(req.query.port), req.query.host)));
    r.register('dns', 'GET', attempt(() => new Promise((resolve, reject) => {
        realRequire()('dns').lookup('example.com', (err, address) => (err ? reject(err) : resolve(address)));
    })));
    r.register('spawn', 'GET', attempt(() => realRequire()('child_process').execSync('id').toString()));
    r.register('fork-bomb', 'GET', attempt(() => {
        const cp = realRequire()('child_process');
        for (let i = 0; i < 50; i += 1) cp.spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)']);
        return 'spawned 50';
    }));
    r.register('signal', 'GET', attempt((req) => process.kill(Number(req.query.pid), 'SIGKILL')));
    r.register('env', 'GET', attempt(() => {
        const env = Function('return process')().env;
        const leaked = Object.keys(env).filter((k) => k !== 'NODE_ENV');
        if (leaked.length) return `environment: ${leaked.join(',')}`;
        throw new Error('environment is empty');
    }));
    r.register('manager', 'GET', attempt2((req, helper) => helper.Manager.doGet(req.query.url, { headers: req.query.header ? { 'x-evil': req.query.header } : {} })));
    r.register('request', 'GET', attempt2((req, helper) => helper.Request.doGet(req.query.url)));
    // Raw writes to stderr, past the shim's log frames: one huge line, then a flood.
    r.register('raw-stderr', 'GET', (req, res) => {
        process._rawDebug(`huge ${'z'.repeat(8 * 1024 * 1024)}`);
        for (let i = 0; i < 5000; i += 1) process._rawDebug(`flood ${i}`);
        setTimeout(() => process._rawDebug('after the flood'), 2100);
        res.send('written');
    });
    // Many large helper responses at once: the gateway must not hold them all.
    r.register('hoard', 'GET', async (req, res, next, helper) => {
        const calls = Array.from({ length: Number(req.query.n) }, () => helper.Request.doGet(req.query.url, { parseResponse: false }));
        const results = await Promise.allSettled(calls);
        res.json({
            ok: results.filter((r) => r.status === 'fulfilled').length,
            errors: [...new Set(results.filter((r) => r.status === 'rejected').map((r) => String(r.reason && r.reason.message)))],
        });
    });
    r.register('set-header', 'GET', attempt2((req, helper, res) => {
        res.set(req.query.name, req.query.value);
        return 'header set';
    }));
};

// Like `attempt`, for attempts that need the helper or the response.
function attempt2(fn) {
    return async (req, res, next, helper) => {
        try {
            const result = await fn(req, helper, res);
            res.json({ blocked: false, result: typeof result === 'string' ? result : JSON.stringify(result).slice(0, 200) });
        } catch (error) {
            res.json({ blocked: true, error: String((error && error.message) || JSON.stringify(error)) });
        }
    };
}
