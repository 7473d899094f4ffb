export * from './encoding.ts';
