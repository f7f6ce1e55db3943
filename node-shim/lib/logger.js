'use strict';
// Owns everything that becomes a `log` frame: helper.Logger (the stage's winston-style
// widget logger), the widget's console, and stray writes to process.stdout/stderr.
// fd 1 carries the protocol, so no widget output may reach it as raw bytes.

const util = require('util');

const LEVELS = ['error', 'warn', 'info', 'verbose', 'debug', 'silly'];
// A longer message is cut: a log line is for reading, and a frame must stay under the
// protocol's line limit.
const MAX_MESSAGE = 64 * 1024;

function truncate(msg) {
  if (msg.length <= MAX_MESSAGE) return msg;
  return `${msg.slice(0, MAX_MESSAGE)}... (${msg.length - MAX_MESSAGE} more characters)`;
}

// The stage's LoggerService: `WidgetBackend` alone, or `WidgetBackend-<category>`.
function categoryName(category) {
  return `WidgetBackend${category ? `-${category}` : ''}`;
}

function createLogging(send) {
  function log(level, category, msg) {
    send({ t: 'log', level: LEVELS.includes(level) ? level : 'info', category, msg: truncate(msg) });
  }

  // helper.Logger(category): winston's level methods plus log(level, ...args); winston
  // formats printf-style, which util.format reproduces for the common cases.
  function Logger(category = '') {
    const name = categoryName(category);
    const logger = {
      log(level, ...args) {
        log(String(level), name, util.format(...args));
        return logger;
      },
    };
    for (const level of LEVELS) {
      logger[level] = (...args) => logger.log(level, ...args);
    }
    return logger;
  }

  // Routes console.* and raw process.stdout/stderr writes into log frames under
  // `WidgetBackend-console`. Console methods we do not map (dir, table, trace, ...)
  // end up in the patched stream writes, so they are covered too.
  function captureConsole(stdout, stderr) {
    const consoleCategory = categoryName('console');
    const streamWriter = (level) =>
      function write(chunk, encoding, cb) {
        const text = Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
        const msg = text.endsWith('\n') ? text.slice(0, -1) : text;
        if (msg.length > 0) log(level, consoleCategory, msg);
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') process.nextTick(done);
        return true;
      };
    stdout.write = streamWriter('info');
    // Node's own warnings (deprecations, ...) arrive here: 'warn', not 'error'.
    stderr.write = streamWriter('warn');

    const consoleLevels = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug' };
    for (const [method, level] of Object.entries(consoleLevels)) {
      console[method] = (...args) => log(level, consoleCategory, util.format(...args));
    }
  }

  return { log, Logger, captureConsole, shimCategory: categoryName() };
}

module.exports = { createLogging };
