export * from './limits.ts';
export * from './errors.ts';
export * from './schemas.ts';
export * from './events.ts';
export * from './admin.ts';
export * from './identity.ts';
export * from './credit.ts';
