export * from './encoding.ts';
export * from './message.ts';
export * from './encoded-block.ts';
