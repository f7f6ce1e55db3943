export default (r: any) => r.register('which', (req: any, res: any) => res.send('backend.ts'));
this is not TypeScript at all (
