export * from './spec.ts';
export * from './backend.ts';
