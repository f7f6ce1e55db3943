// A front-end-only widget: no backend.js / backend.ts.
Stage.defineWidget({ id: 'no-backend', name: 'No backend', render: () => null });
