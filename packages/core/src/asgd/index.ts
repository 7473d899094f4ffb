export * from './mailbox.ts';
export * from './worker.ts';
export * from './robust.ts';
