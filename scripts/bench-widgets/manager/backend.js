// Benchmark widget (scripts/bench, scenario 4): one helper.Manager.doGet per request
// against the bench's fake manager, then a small transformation of its answer.
module.exports = (r) => {
    r.register('blueprints', 'GET', async (req, res, next, helper) => {
        const data = await helper.Manager.doGet('/blueprints', {
            params: { _include: 'id,created_at,state', _size: 20 },
            headers: req.headers,
        });
        res.json({ total: data.metadata.pagination.total, ids: data.items.map((b) => b.id) });
    });
};
