export * from './event-queue.ts';
export * from './schedule.ts';
export * from './network.ts';
export * from './simulation.ts';
export * from './run.ts';
export * from './workloads.ts';
export * from './profiles.ts';
export * from './scale/index.ts';
