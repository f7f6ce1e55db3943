// Benchmark widget (scripts/bench, scenario 5): request and response bodies streamed
// through, never held whole. POST upload counts the bytes it reads; GET download writes
// `size` bytes (binary, or ASCII text with kind=text) honouring res.write() back-pressure.
module.exports = (r) => {
    r.register('upload', 'POST', (req, res) => {
        let bytes = 0;
        req.on('data', (chunk) => {
            bytes += chunk.length;
        });
        req.on('end', () => res.json({ bytes }));
        req.on('error', (err) => res.status(500).json({ message: String(err) }));
    });

    r.register('download', 'GET', (req, res) => {
        const size = Number(req.query.size) || 100 * 1000 * 1000;
        const block = Buffer.alloc(64 * 1024);
        let seed = 12345;
        for (let i = 0; i < block.length; i += 1) {
            seed = (seed * 1103515245 + 12345) & 0x7fffffff;
            block[i] = req.query.kind === 'text' ? 97 + (seed % 26) : seed >> 16;
        }
        res.set('Content-Type', 'application/octet-stream');
        res.set('Content-Length', String(size));
        let left = size;
        const pump = () => {
            while (left > 0) {
                const piece = left >= block.length ? block : block.subarray(0, left);
                left -= piece.length;
                if (!res.write(piece)) {
                    res.once('drain', pump);
                    return;
                }
            }
            res.end();
        };
        pump();
    });
};
