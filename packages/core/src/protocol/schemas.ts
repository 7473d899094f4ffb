/**
 * Schemas for every inbound payload on the control plane. The server validates with these
 * before use (types are not validation); the client may use them too.
 */
import { z } from 'zod';
import { ENCODINGS } from '../codec/encoding.ts';
import { JOB_STATES } from './events.ts';
import { identityProofSchema } from './identity.ts';
import { MAX_ACTIVATION, MAX_LAYERS } from '../model/layers/graph.ts';
import type { LayerSpec } from '../model/layers/types.ts';
import {
  MAX_PAYLOAD_BYTES,
  MAX_RELAY_BYTES,
  MAX_REPORTED_LINKS,
  MAX_SIGNAL_BYTES,
  PROTOCOL_VERSION,
} from './limits.ts';

const id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or -');

// Zod 4's number refuses NaN and ±Infinity itself; built-in bounds rather than refinements,
// which cost a closure call each on every statistics report (10,000 a second at scale).
const finite = z.number();
const nonNegative = z.number().nonnegative();
/** A fraction in [0, 1]. */
const unit = z.number().min(0).max(1);
const count = z.number().int().nonnegative();

/** Binary payloads arrive as Buffer (Node) or ArrayBuffer/Uint8Array (browser). */
const bytes = (max: number) =>
  z
    .custom<Uint8Array | ArrayBuffer>(
      (v) => v instanceof Uint8Array || v instanceof ArrayBuffer,
      'must be binary (ArrayBuffer or Uint8Array)',
    )
    .refine((v) => v.byteLength <= max, `must be at most ${max} bytes`);

/** One parameter tensor of a custom model (model/spec.ts CustomSpec). */
export const customTensorSchema = z.object({
  name: z
    .string()
    .max(128)
    .regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be letters, digits, _ and .'),
  shape: z.array(z.number().int().positive()).min(1).max(8),
  /** Standard deviation of the seeded normal initialisation; absent: zeros. */
  initStd: z.number().min(0).optional(),
});

const layerName = z
  .string()
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be letters, digits and _')
  .optional();
const layerSize = z.number().int().positive().max(65_536);

/**
 * One layer of a `layers` model (model/layers/types.ts). Strict, so a misspelt field is an
 * error; shapes are checked afterwards by `validateModelSpec`, which names the layer.
 */
export const layerSpecSchema: z.ZodType<LayerSpec> = z.lazy(() =>
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('dense'), units: layerSize, name: layerName }),
    z.strictObject({
      type: z.literal('conv2d'),
      filters: layerSize,
      kernel: z.number().int().positive().max(64),
      stride: z.number().int().positive().max(64).optional(),
      padding: z.number().int().min(0).max(63).optional(),
      name: layerName,
    }),
    z.strictObject({
      type: z.enum(['maxpool2d', 'avgpool2d']),
      size: z.number().int().positive().max(64),
      stride: z.number().int().positive().max(64).optional(),
      name: layerName,
    }),
    z.strictObject({ type: z.enum(['flatten', 'relu', 'gelu']), name: layerName }),
    z.strictObject({
      type: z.literal('layernorm'),
      epsilon: z.number().positive().max(1).optional(),
      name: layerName,
    }),
    z.strictObject({
      type: z.literal('embedding'),
      vocab: layerSize,
      dim: layerSize,
      name: layerName,
    }),
    z.strictObject({ type: z.literal('attention'), heads: layerSize, name: layerName }),
    z.strictObject({
      type: z.literal('residual'),
      layers: z.array(layerSpecSchema).min(1).max(MAX_LAYERS),
      name: layerName,
    }),
  ]),
);

/** A `layers` model (model/layers/types.ts LayersSpec). */
export const layersModelSchema = z.strictObject({
  kind: z.literal('layers'),
  inputs: z.number().int().positive().max(MAX_ACTIVATION),
  classes: z.number().int().min(2).max(65_536),
  inputShape: z.array(z.number().int().positive()).min(1).max(3).optional(),
  loss: z.enum(['classify', 'next-token']).optional(),
  layers: z.array(layerSpecSchema).min(1).max(MAX_LAYERS),
});

export const modelSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('softmax'),
    inputs: z.number().int().positive(),
    classes: z.number().int().min(2),
  }),
  z.object({
    kind: z.literal('mlp'),
    inputs: z.number().int().positive(),
    hidden: z.array(z.number().int().positive()).max(16),
    classes: z.number().int().min(2),
  }),
  z.object({
    kind: z.literal('kmeans'),
    dims: z.number().int().positive(),
    clusters: z.number().int().positive(),
  }),
  /** A host's WGSL kernel (model/spec.ts CustomSpec); the kernel itself is `JobInfo.kernel`. */
  z.object({
    kind: z.literal('custom'),
    inputs: z.number().int().positive(),
    classes: z.number().int().min(0),
    tensors: z.array(customTensorSchema).min(1).max(256),
  }),
  layersModelSchema,
]);

export const encodingSchema = z.enum(ENCODINGS);
export const jobStateSchema = z.enum(JOB_STATES);

export const deviceInfoSchema = z.object({
  backend: z.enum(['webgpu', 'cpu']),
  /** Why the CPU backend was chosen (no adapter, software adapter, forced by URL). */
  backendReason: z.string().max(256).optional(),
  adapter: z
    .object({
      vendor: z.string().max(128),
      architecture: z.string().max(128),
      description: z.string().max(256),
    })
    .optional(),
  software: z.boolean().optional(),
  userAgent: z.string().max(512),
  /** Samples/s measured by the capability probe's micro-benchmark. */
  benchmarkSamplesPerSec: nonNegative.optional(),
});

export const helloSchema = z.object({
  protocolVersion: z.literal(PROTOCOL_VERSION, {
    error: `protocolVersion must be ${PROTOCOL_VERSION}`,
  }),
  /** Present when a tab reconnects and wants its old identity back. */
  workerId: id.optional(),
  device: deviceInfoSchema,
  /**
   * The volunteer's key and its signature over this connection's challenge (DESIGN §9). Absent:
   * an anonymous worker, which trains but earns no credit on the leaderboard.
   */
  identity: identityProofSchema.optional(),
});

export const linkStatsSchema = z.object({
  peer: id,
  /** True when the link's bytes pass through a relay: a TURN server or the job server. */
  relayed: z.boolean(),
  /** `direct`, `turn` (WebRTC through a TURN relay) or `server` (the socket.io relay fallback). */
  route: z.enum(['direct', 'turn', 'server']).optional(),
  goodputBytesPerSec: nonNegative,
  rttMs: nonNegative.optional(),
  backlogBytes: nonNegative,
  blocksSent: count,
  blocksReceived: count,
  overwritten: count,
  rejected: count,
  acceptanceRate: unit.optional(),
  skippedSends: count,
});

export const statsSchema = z.object({
  jobId: id,
  /** Samples this worker processed since it joined (monotonic). */
  samples: count,
  samplesPerSec: nonNegative,
  /** Mean training loss over the last interval, when any step ran. */
  loss: finite.optional(),
  offered: count,
  accepted: count,
  paused: z.boolean(),
  links: z.array(linkStatsSchema).max(MAX_REPORTED_LINKS),
  /**
   * Fraction of the interval during which any of the worker's data channels had bytes buffered
   * (`bufferedAmount` > 0). Goodput divided by it is what the uplink carries when pushed, a
   * capacity sample for the balancer (balancer/controller.ts, rule 1). Optional: older clients
   * and workers without direct links leave it out.
   */
  sendBusyFraction: unit.optional(),
});

export const stateUploadSchema = z.object({
  requestId: id,
  jobId: id,
  /** Samples the worker had processed when it read its parameters. */
  samples: count,
  /** float32 little-endian parameter vector. */
  params: bytes(MAX_PAYLOAD_BYTES),
});

/**
 * A worker's contribution to a synchronous round (training mode `sync`): its parameters after
 * one SGD step from the round's parameters, w − η·g_i. The server averages them, which equals
 * w − η·mean(g_i) (apps/server/src/jobs/sync-rounds.ts).
 */
export const syncContributionSchema = z.object({
  jobId: id,
  round: count,
  /** Samples in the minibatch behind this contribution. */
  samples: count,
  /** That minibatch's training loss. */
  loss: finite.optional(),
  /** float32 little-endian parameter vector. */
  params: bytes(MAX_PAYLOAD_BYTES),
});

/**
 * A volunteer's answer to a spot check (DESIGN §9): its parameters after one step from the
 * check's parameters on the check's minibatch, float32 little-endian.
 */
export const spotCheckAnswerSchema = z.object({
  checkId: id,
  params: bytes(MAX_PAYLOAD_BYTES),
});

export const relaySchema = z.object({
  to: id,
  data: bytes(MAX_RELAY_BYTES),
});

/**
 * WebRTC signaling between two volunteers of one job, relayed by the server: a session
 * description (offer or answer) or one trickled ICE candidate. Only what a data channel needs;
 * renegotiation and media requests are refused.
 */
const signalText = z.string().max(MAX_SIGNAL_BYTES);
export const signalDataSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.enum(['offer', 'answer']), sdp: signalText }),
  z.strictObject({
    type: z.literal('candidate'),
    candidate: z.strictObject({
      candidate: z.string().max(1024),
      sdpMid: z.string().max(64).nullable().optional(),
      sdpMLineIndex: z.number().int().min(0).max(255).nullable().optional(),
      usernameFragment: z.string().max(256).nullable().optional(),
    }),
  }),
]);

export const signalSchema = z.object({
  to: id,
  data: signalDataSchema,
});

export type ModelSpecPayload = z.infer<typeof modelSpecSchema>;
export type DeviceInfo = z.infer<typeof deviceInfoSchema>;
export type Hello = z.infer<typeof helloSchema>;
export type LinkStats = z.infer<typeof linkStatsSchema>;
export type Stats = z.infer<typeof statsSchema>;
export type StateUpload = z.infer<typeof stateUploadSchema>;
export type RelayOut = z.infer<typeof relaySchema>;
export type SyncContribution = z.infer<typeof syncContributionSchema>;
export type SpotCheckAnswer = z.infer<typeof spotCheckAnswerSchema>;
export type SignalData = z.infer<typeof signalDataSchema>;
export type SignalOut = z.infer<typeof signalSchema>;

/**
 * Validates `value` against `schema`; returns the parsed value or a one-line message that names
 * the first offending field, e.g. `device.backend: Invalid option`.
 */
export function validate<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; message: string } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const path = issue && issue.path.length ? issue.path.map(String).join('.') : '(payload)';
  return { ok: false, message: `${path}: ${issue?.message ?? 'invalid'}` };
}
