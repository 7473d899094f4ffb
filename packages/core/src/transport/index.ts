export * from './limits.ts';
export * from './peer-link.ts';
export * from './link-meter.ts';
export * from './ice-stats.ts';
export * from './fit.ts';
