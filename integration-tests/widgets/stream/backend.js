// Large bodies both ways and many requests at once on one worker.
// Needs `allowed_builtins = ["crypto"]`.
const crypto = require('crypto');

// Deterministic content: chunk i is 64 KiB of bytes (i * 7 + j) & 0xff.
function chunkFor(i) {
  const chunk = Buffer.allocUnsafe(65536);
  for (let j = 0; j < chunk.length; j += 1) chunk[j] = (i * 7 + j) & 0xff;
  return chunk;
}

const waiting = [];

module.exports = (r) => {
  r.register('upload', 'POST', (req, res, next) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('error', next);
    req.on('end', () => res.json({ bytes, sha256: hash.digest('hex') }));
  });
  r.register('download', (req, res) => {
    const chunks = Number(req.query.chunks || 1600);
    res.set('Content-Type', 'application/octet-stream');
    let i = 0;
    const pump = () => {
      while (i < chunks) {
        const more = res.write(chunkFor(i));
        i += 1;
        if (!more) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  // Answers only once `n` requests are waiting at the same time in this process.
  r.register('rendezvous', (req, res) => {
    const n = Number(req.query.n);
    const timer = setTimeout(() => res.status(500).json({ message: `only ${waiting.length} of ${n} arrived` }), 30000);
    waiting.push(() => {
      clearTimeout(timer);
      res.json({ pid: process.pid, arrived: n });
    });
    if (waiting.length >= n) waiting.splice(0).forEach((release) => release());
  });
  r.register('pid', (req, res) => res.json({ pid: process.pid }));
};
