// A transpiled ES module as some build tools emit it.
Object.defineProperty(exports, '__esModule', { value: true });
exports.default = function (r) {
  r.register('form', (req, res) => res.send('exports.default'));
};
