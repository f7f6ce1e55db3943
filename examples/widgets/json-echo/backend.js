// Reads a JSON request body the way stage widgets do: with the `body` package.
//
//   POST /console/wb/echo   (widget-id: json-echo, content-type: application/json)
const jsonBody = require('body/json');

module.exports = (r) => {
  r.register('echo', 'POST', (req, res, next, helper) => {
    const logger = helper.Logger('json-echo');
    jsonBody(req, res, (err, body) => {
      if (err) {
        err.status = 400;
        return next(err);
      }
      logger.debug('echoing', body);
      return res.json({ received: body });
    });
  });
};
