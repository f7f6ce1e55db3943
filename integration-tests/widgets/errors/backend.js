// Every way a handler can fail; each ends in the stage's error handler.
module.exports = (r) => {
  r.register('next-error', (req, res, next) => next(new Error('next was called with an error')));
  r.register('next-status', (req, res, next) => {
    const err = new Error('You shall not pass');
    err.status = 403;
    next(err);
  });
  r.register('next-string', (req, res, next) => next('a plain string error'));
  r.register('next-500', (req, res, next) => {
    const err = new Error('database exploded with secrets');
    err.status = 500;
    next(err);
  });
  r.register('throw', () => {
    throw new Error('thrown synchronously');
  });
  r.register('throw-status', () => {
    const err = new Error('conflict while thrown');
    err.status = 409;
    throw err;
  });
  r.register('reject', async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new Error('rejected asynchronously');
  });
  r.register('reject-500', () => Promise.reject(Object.assign(new Error('hidden detail'), { status: 500 })));
  r.register('next-nothing', (req, res, next) => next());
  // The error arrives with the first chunk: its bytes must still reach the client.
  r.register('next-error-after-write', (req, res, next) => {
    res.write('partial');
    next(new Error('failed halfway through the body'));
  });
  r.register('after-error', (req, res) => res.send('still alive'));
};
