export * from './controller.ts';
export * from './neighbours.ts';
export * from './settings.ts';
export * from './valve.ts';
