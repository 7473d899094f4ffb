export * from './spec.ts';
export * from './backend.ts';
export * from './math.ts';
export * from './init.ts';
export * from './evaluate.ts';
export * from './cpu-backend.ts';
export * from './describe.ts';
export * from './layers/index.ts';
