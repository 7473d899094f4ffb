export * from './model/index.ts';
export * from './data/index.ts';
export * from './codec/index.ts';
export { Rng } from './util/rng.ts';
export * from './protocol/index.ts';
export * from './asgd/index.ts';
export * from './export/index.ts';
export * from './balancer/index.ts';
export * from './sim/index.ts';
