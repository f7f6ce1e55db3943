export default (r: { register: Function }): void => {
    r.register('form', 'GET', (req: unknown, res: { send: (s: string) => void }) => res.send('export default'));
};
