// A TypeScript backend: type-only imports, interfaces, annotations, lodash, export default.
import type { Request, Response, NextFunction } from 'express';
import _ from 'lodash';

interface Item {
    id: string;
    size: number;
}

declare module 'express' {
    interface Request {
        user?: unknown;
    }
}

const items: Item[] = [
    { id: 'b', size: 2 },
    { id: 'a', size: 1 },
    { id: 'c', size: 3 }
];

function fail(message: string): never {
    throw new Error(message); // THROW-LINE: the stack trace must point here
}

export default function backend(r: { register: (...args: any[]) => void }) {
    r.register('sorted', 'GET', (req: Request, res: Response) => {
        const sorted: Item[] = _.sortBy(items, 'id');
        res.json({ ids: _.map(sorted, 'id'), total: _.sumBy(items, 'size') });
    });
    r.register('fail', 'GET', (req: Request, res: Response, next: NextFunction) => {
        fail('TypeScript handler failed');
    });
}
