// A TypeScript widget backend. Types are stripped when it loads; `import type` costs
// nothing at run time, and lodash is one of the modules a backend may require.
//
//   GET /console/wb/summary?items=web:3,db:1,web:2   (widget-id: ts-lodash)
import type { Request, Response } from 'express';
import _ from 'lodash';

interface Item {
    name: string;
    count: number;
}

function parseItems(query: unknown): Item[] {
    const text = typeof query === 'string' ? query : '';
    return _.compact(text.split(',')).map((pair) => {
        const [name, count] = pair.split(':');
        return { name, count: Number(count) || 0 };
    });
}

export default function register(r: { register: (...args: any[]) => void }): void {
    r.register('summary', 'GET', (req: Request, res: Response) => {
        const items = parseItems(req.query.items);
        const totals = _.mapValues(_.groupBy(items, 'name'), (group: Item[]) => _.sumBy(group, 'count'));
        res.json({ totals, names: _.sortBy(_.keys(totals)) });
    });
}
