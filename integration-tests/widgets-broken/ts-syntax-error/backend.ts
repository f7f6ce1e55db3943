interface Broken {
    id: string;
}

export default (r: any) => {
    const x: Broken = { id: 'x' ;
};
