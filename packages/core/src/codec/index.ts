export * from './encoding.ts';
export * from './message.ts';
