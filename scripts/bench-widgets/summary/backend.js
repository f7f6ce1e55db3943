// Benchmark widget (scripts/bench, scenario 3): lodash over req.query, answered with res.json.
// `require` sits inside the handler because the stage ran each handler from its source text
// (handler.toString()) in a fresh vm2 NodeVM, where the module's own variables do not exist.
module.exports = (r) => {
    r.register('summary', 'GET', (req, res) => {
        const _ = require('lodash');
        const numbers = _.castArray(req.query.n ?? []).map(Number).filter(Number.isFinite);
        const tags = _.uniq(_.castArray(req.query.tag ?? []));
        res.json({
            count: numbers.length,
            sum: _.sum(numbers),
            min: _.min(numbers) ?? null,
            max: _.max(numbers) ?? null,
            mean: numbers.length ? _.round(_.mean(numbers), 3) : null,
            sorted: _.sortBy(numbers),
            buckets: _.countBy(numbers, (n) => (n % 2 === 0 ? 'even' : 'odd')),
            tags: _.sortBy(tags),
            filter: _.pick(req.query.filter ?? {}, ['name', 'owner']),
        });
    });
};
