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
      /** Stop stepping once this many samples are processed (the `stopAfter` URL parameter). */
      readonly stopAfterSamples: number | undefined;
    }
  | { readonly type: 'receive'; readonly from: string; readonly data: ArrayBuffer }
  | { readonly type: 'settings'; readonly settings: WorkerSettings }
  | { readonly type: 'neighbours'; readonly neighbours: readonly string[] }
  | { readonly type: 'control'; readonly paused: boolean; readonly learningRate: number }
  | { readonly type: 'duty'; readonly dutyCycle: number }
  | { readonly type: 'readState'; readonly requestId: string }
  /** Which peers take messages now; sent on every change and a few times a second. */
  | { readonly type: 'links'; readonly links: readonly LinkReadiness[] }
  /** Parameters for the page's debugging hook (`window.meshgrad.readParameters()`). */
  | { readonly type: 'readParameters'; readonly requestId: string }
  /** Sync mode: a round's parameters; the worker answers with `syncContribution`. */
  | {
      readonly type: 'syncRound';
      readonly round: number;
      readonly learningRate: number;
      readonly params: ArrayBuffer;
    }
  /** The server's spot check (DESIGN §9); the worker answers with `spotCheckAnswer`. */
  | {
      readonly type: 'spotCheck';
      readonly checkId: string;
      readonly learningRate: number;
      readonly params: ArrayBuffer;
      readonly size: number;
      readonly x: ArrayBuffer;
      readonly labels: ArrayBuffer | null;
    };

export interface LinkReadiness {
  readonly peer: string;
  readonly ready: boolean;
  readonly maxMessageBytes: number;
}

/** The training loop's counters for one peer, cumulative. */
export interface PeerCountersReport {
  readonly peer: string;
  readonly blocksSent: number;
  readonly blocksReceived: number;
  readonly rejected: number;
  readonly overwritten: number;
  readonly sendsSkipped: number;
}

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
  readonly peers: readonly PeerCountersReport[];
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
  | {
      readonly type: 'parameters';
      readonly requestId: string;
      readonly samples: number;
      readonly params: ArrayBuffer;
    }
  /** Sync mode: the parameters after one SGD step from a round's parameters. */
  | {
      readonly type: 'syncContribution';
      readonly round: number;
      readonly samples: number;
      readonly loss: number | undefined;
      readonly params: ArrayBuffer;
    }
  /** The parameters after the spot check's one step. */
  | { readonly type: 'spotCheckAnswer'; readonly checkId: string; readonly params: ArrayBuffer }
  | { readonly type: 'error'; readonly message: string };
