export * from './attacks.ts';
export * from './guarded-merge.ts';
export * from './run.ts';
