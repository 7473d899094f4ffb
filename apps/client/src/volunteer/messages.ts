/** Messages between the volunteer page (main thread) and its training Web Worker. */
import type { JobInfo, WorkerSettings } from '@meshgrad/core';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export type ToWorker =
  | {
      readonly type: 'start';
      readonly job: JobInfo;
      readonly workerId: string;
      /** Decided by the page's capability probe; the worker falls back to CPU if WebGPU fails. */
      readonly backend: 'webgpu' | 'cpu';
      readonly backendReason: string | undefined;
      /** Shard in the binary dataset format. */
      readonly shard: ArrayBuffer;
      /** float32 parameters to start from. */
      readonly params: ArrayBuffer;
      readonly settings: WorkerSettings;
      readonly neighbours: readonly string[];
      readonly dutyCycle: number;
      readonly paused: boolean;
    }
  | { readonly type: 'receive'; readonly from: string; readonly data: ArrayBuffer }
  | { readonly type: 'settings'; readonly settings: WorkerSettings }
  | { readonly type: 'neighbours'; readonly neighbours: readonly string[] }
  | { readonly type: 'control'; readonly paused: boolean; readonly learningRate: number }
  | { readonly type: 'duty'; readonly dutyCycle: number }
  | { readonly type: 'readState'; readonly requestId: string };

export interface WorkerStats {
  readonly samples: number;
  readonly samplesPerSec: number;
  readonly loss: number | undefined;
  readonly offered: number;
  readonly accepted: number;
  readonly blocksSent: number;
  readonly blocksReceived: number;
  readonly rejected: number;
  readonly overwritten: number;
  readonly sendsSkipped: number;
  readonly paused: boolean;
}

export type FromWorker =
  | {
      readonly type: 'ready';
      readonly backend: 'webgpu' | 'cpu';
      readonly reason: string | undefined;
    }
  | { readonly type: 'stats'; readonly stats: WorkerStats }
  | { readonly type: 'send'; readonly peer: string; readonly data: ArrayBuffer }
  | {
      readonly type: 'state';
      readonly requestId: string;
      readonly samples: number;
      readonly params: ArrayBuffer;
    }
  | { readonly type: 'error'; readonly message: string };
