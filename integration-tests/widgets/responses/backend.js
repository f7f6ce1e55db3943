// One endpoint per Express 4 response method. The same file is mounted in a real
// Express 4 app by shim.test.js to compare the answers byte for byte.
module.exports = (r) => {
  r.register('send-string', (req, res) => res.send('<p>hello</p>'));
  r.register('send-object', (req, res) => res.send({ a: 1, list: [1, 2, 3] }));
  r.register('send-array', (req, res) => res.send([1, 'two']));
  r.register('send-buffer', (req, res) => res.send(Buffer.from([0, 1, 2, 3, 250])));
  r.register('send-number-status', (req, res) => res.status(201).send('made'));
  r.register('json', (req, res) => res.json({ nested: { ok: true }, n: null }));
  r.register('json-status', (req, res) => res.status(422).json({ invalid: 'field' }));
  r.register('send-status', (req, res) => res.sendStatus(403));
  r.register('send-status-204', (req, res) => res.sendStatus(204));
  r.register('set-object', (req, res) => {
    res.set({ 'X-One': '1', 'X-Two': 'two', 'Content-Type': 'text/plain' });
    res.send('plain');
  });
  r.register('set-get', (req, res) => {
    res.set('X-Echo', 'echo-value');
    res.header('X-Header-Alias', 'alias');
    res.send({ got: res.get('x-echo'), getHeader: res.getHeader('X-Header-Alias') });
  });
  r.register('type', (req, res) => res.type('json').send('{"typed":true}'));
  r.register('type-ext', (req, res) => res.type('.txt').send('text by extension'));
  r.register('append', (req, res) => {
    res.append('X-Multi', 'a');
    res.append('X-Multi', ['b', 'c']);
    res.send('appended');
  });
  r.register('location', (req, res) => res.location('/somewhere?x=1').status(201).send('located'));
  r.register('redirect', (req, res) => res.redirect('/elsewhere'));
  r.register('redirect-status', (req, res) => res.redirect(301, 'https://example.com/moved'));
  r.register('cookies', (req, res) => {
    res.cookie('plain', 'v1');
    res.cookie('opts', 'v2', { httpOnly: true, path: '/console', sameSite: 'strict' });
    res.cookie('obj', { x: 1 });
    res.clearCookie('gone');
    res.send('cookies set');
  });
  r.register('stream', (req, res) => {
    res.status(200);
    res.write('first,');
    res.write(Buffer.from('second,'));
    setTimeout(() => res.end('last'), 10);
  });
  r.register('write-head', (req, res) => {
    res.writeHead(202, { 'X-Written': 'yes', 'Content-Type': 'text/plain' });
    res.end('accepted');
  });
  r.register('set-header', (req, res) => {
    res.setHeader('X-Set', 'set');
    res.statusCode = 203;
    res.end('set-header');
  });
  r.register('remove-header', (req, res) => {
    res.set('X-Remove-Me', 'x');
    res.set('X-Keep-Me', 'k');
    res.removeHeader('X-Remove-Me');
    res.send('removed');
  });
  r.register('headers-sent', (req, res) => {
    const before = res.headersSent;
    res.write('x');
    const after = res.headersSent;
    res.end(JSON.stringify({ before, after }));
  });
  r.register('send-twice', (req, res) => {
    res.send('first answer');
    res.send('second answer');
  });
  r.register('status-chain', (req, res) => res.status(418).set('X-Tea', 'pot').send({ teapot: true }));
  // The status line's reason phrase: the widget's own, and Node's for codes where it
  // is not everyone's ("I'm a Teapot") or where there is none ("unknown").
  r.register('status-message', (req, res) => {
    res.statusMessage = 'Partly Done';
    res.status(202).send('custom phrase');
  });
  r.register('write-head-message', (req, res) => {
    res.writeHead(200, 'Fine, Thanks', { 'Content-Type': 'text/plain' });
    res.end('writeHead phrase');
  });
  r.register('status-unknown', (req, res) => res.sendStatus(299));
  r.register('status-non-ascii-message', (req, res) => {
    res.statusMessage = 'Caf\u00e9';
    res.send('latin-1 phrase');
  });
  // Files: the widget's own folder is readable in the sandbox, nothing else is.
  r.register('send-file', (req, res) => res.sendFile(`${__dirname}/file.txt`));
  r.register('download', (req, res) => res.download('file.txt', 'copy.txt'));
  r.register('send-file-outside', (req, res) => res.sendFile('/etc/hostname', (err) => res.status(403).send(err.code)));
  // Header values beyond ASCII, in the bytes Node writes: UTF-8 when the head goes out
  // with a string body, latin-1 otherwise; Content-Disposition mangled by end(data).
  r.register('latin1-end-string', (req, res) => {
    res.setHeader('X-Name', 'Zo\u00eb');
    res.end('string body');
  });
  r.register('latin1-end-buffer', (req, res) => {
    res.setHeader('X-Name', 'Zo\u00eb');
    res.end(Buffer.from('buffer body'));
  });
  r.register('latin1-attachment', (req, res) => res.attachment('r\u00e9sum\u00e9.txt').send('attached'));
  r.register('etag-large', (req, res) => res.send('x'.repeat(5000)));
  r.register('utf8', (req, res) => res.send('żółć 😀'));
  // res.send of n patterned bytes: around 512 KiB a whole response stops fitting in one
  // frame and is streamed instead.
  r.register('send-size', (req, res) => {
    const n = Number(req.query.n);
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i += 1) body[i] = (i * 31) & 0xff;
    res.send(body);
  });
  r.register('delete-method', 'DELETE', (req, res) => res.send('deleted'));
  r.register('put-method', 'PUT', (req, res) => res.json({ put: true }));
  r.register('patch-method', 'patch', (req, res) => res.json({ patched: true }));
};
