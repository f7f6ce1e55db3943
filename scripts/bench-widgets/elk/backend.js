// Benchmark widget (scripts/bench, scenario 8): a CPU-heavy handler, an elkjs layered
// layout of a 200-node graph (the kind of work a topology widget does).
module.exports = (r) => {
    r.register('layout', 'GET', async (req, res) => {
        const ELK = require('elkjs');
        const elk = new ELK();
        const count = Number(req.query.nodes) || 200;
        const children = [];
        const edges = [];
        let seed = 42;
        const random = () => {
            seed = (seed * 1103515245 + 12345) & 0x7fffffff;
            return seed / 0x7fffffff;
        };
        for (let i = 0; i < count; i += 1) {
            children.push({ id: `n${i}`, width: 40 + Math.floor(random() * 60), height: 30 });
            if (i > 0) edges.push({ id: `t${i}`, sources: [`n${Math.floor(random() * i)}`], targets: [`n${i}`] });
            if (i > 10 && random() < 0.3) {
                edges.push({ id: `x${i}`, sources: [`n${Math.floor(random() * (i - 1))}`], targets: [`n${i}`] });
            }
        }
        const graph = await elk.layout({
            id: 'root',
            layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'DOWN' },
            children,
            edges,
        });
        res.json({ nodes: graph.children.length, width: graph.width, height: graph.height });
    });
};
