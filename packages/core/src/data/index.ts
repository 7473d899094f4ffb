export * from './dataset.ts';
export * from './errors.ts';
export * from './mnist.ts';
export * from './binary.ts';
export * from './clusters.ts';
export * from './idx.ts';
export * from './npy.ts';
export * from './csv.ts';
