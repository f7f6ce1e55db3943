module.exports = {
  register: 'this module does not export a function',
};
