// Writes through every output a widget author might use.
module.exports = (r) => {
  r.register('print', (req, res, next, helper) => {
    console.log('console.log from widget', 42, { k: 'v' });
    console.error('console.error from widget');
    process.stdout.write('process.stdout.write from widget\n');
    process.stdout.write('{"t":"end","id":1}\n');
    const logger = helper.Logger('Printer');
    logger.info('helper logger info line');
    logger.warn('helper logger warn line %d', 7);
    res.send('printed');
  });
};
