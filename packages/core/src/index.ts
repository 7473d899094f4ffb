export * from './model/spec.ts';
export * from './model/backend.ts';
export * from './data/dataset.ts';
export { Rng } from './util/rng.ts';
