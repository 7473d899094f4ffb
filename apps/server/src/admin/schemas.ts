/**
 * Schemas for every inbound admin payload (HTTP bodies and `/admin` socket events). Types are
 * not validation: the console is trusted only as far as its token, and a bug there must come back
 * as an error naming the field, not as a job in a strange state.
 */
import { z } from 'zod';
import { encodingSchema } from '@meshgrad/core';
import type { AdminBalancerRequest, AdminControlRequest } from '@meshgrad/core';

/** Longest admin token we bother hashing; generated tokens are 32 characters. */
export const MAX_TOKEN_LENGTH = 1024;

export const adminAuthSchema = z.object({
  token: z.string().min(1).max(MAX_TOKEN_LENGTH),
});

const jobId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, _ or -');

export const watchSchema = z.strictObject({ jobId });

/** Same bounds as a job spec's learning rate (jobs/job-spec.ts). */
export const learningRateSchema = z
  .number()
  .refine(Number.isFinite, 'must be a finite number')
  .refine((v) => v > 0 && v <= 100, 'must be > 0 and at most 100');

export const controlSchema: z.ZodType<AdminControlRequest> = z
  .strictObject({
    state: z.enum(['running', 'paused', 'stopped']).optional(),
    learningRate: learningRateSchema.optional(),
  })
  .refine((v) => v.state !== undefined || v.learningRate !== undefined, {
    message: 'give state, learningRate or both',
  })
  .transform((v) => ({
    ...(v.state !== undefined ? { state: v.state } : {}),
    ...(v.learningRate !== undefined ? { learningRate: v.learningRate } : {}),
  }));

export const balancerSchema: z.ZodType<AdminBalancerRequest> = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('automatic') }),
  z.strictObject({
    mode: z.literal('fixed'),
    /** Samples between two sends (b); the job spec's bounds. */
    communicationPeriod: z.number().int().min(1).max(1_000_000),
    /** Blocks per send (m); checked against the model's block count by the handler. */
    blocksPerMessage: z.number().int().min(1).max(1024),
    encoding: encodingSchema,
  }),
]);
