export * from './mailbox.ts';
export * from './worker.ts';
