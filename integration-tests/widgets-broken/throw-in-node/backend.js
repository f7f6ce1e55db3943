// Throws at load from inside Node itself: the error's location is this file's line 3.
const size = -1;
const buffer = Buffer.alloc(size);
module.exports = (r) => r.register('never', (req, res) => res.send(buffer));
