module.exports = { shared: true };
