/**
 * What the console sees of a job: plain JSON built from the live `Job`, never the job itself.
 */
import { MAX_SNAPSHOT_WORKERS, STATS_INTERVAL_MS } from '@meshgrad/core';
import type { Job, WorkerEntry } from '../jobs/job.ts';
import { suspicions } from '../jobs/suspects.ts';
import type { CheckpointManifest } from '../store.ts';
import type {
  AdminCheckpoint,
  AdminJobSnapshot,
  AdminJobSummary,
  AdminSuspicion,
  AdminWorker,
  AdminWorkerState,
} from '@meshgrad/core';

/** A worker silent for this many report intervals shows as `silent` (it is dropped later). */
const SILENT_AFTER_INTERVALS = 3;

export function checkpointView(jobId: string, m: CheckpointManifest): AdminCheckpoint {
  const base = `/api/admin/jobs/${jobId}/checkpoints/${m.seq}`;
  return {
    seq: m.seq,
    samples: m.samples,
    createdAt: m.createdAt,
    worker: m.worker,
    parameters: m.parameters,
    testLoss: m.testLoss,
    ...(m.testAccuracy !== undefined ? { testAccuracy: m.testAccuracy } : {}),
    ...(m.testObjective !== undefined ? { testObjective: m.testObjective } : {}),
    ...(m.averagedOver !== undefined ? { averagedOver: m.averagedOver } : {}),
    downloads: { safetensors: `${base}.safetensors`, binary: `${base}.bin` },
  };
}

export function jobSummary(job: Job): AdminJobSummary {
  const info = job.info();
  const { samplesPerSec, trainLoss } = job.throughput();
  return {
    id: info.id,
    name: info.name,
    host: info.host,
    description: info.description,
    state: job.state,
    learningRate: job.learningRate,
    model: info.model,
    dataset: info.dataset,
    batchSize: info.batchSize,
    blockSize: job.layout.blockSize,
    blockCount: job.layout.blockCount,
    parameters: job.layout.size,
    samples: job.samples,
    workers: job.workers.size,
    samplesPerSec,
    training: job.training.summary(),
    ...(trainLoss !== undefined ? { trainLoss } : {}),
    balancer: job.balancer,
    defaultSettings: { ...job.spec.communication },
    latestCheckpoint: job.latest ? checkpointView(job.id, job.latest) : null,
  };
}

function workerState(w: WorkerEntry, now: number): AdminWorkerState {
  if (now - w.lastSeen > SILENT_AFTER_INTERVALS * STATS_INTERVAL_MS) return 'silent';
  if (w.paused) return 'paused';
  return w.samplesPerSec > 0 ? 'training' : 'idle';
}

export function workerView(
  job: Job,
  w: WorkerEntry,
  now: number,
  suspicion?: AdminSuspicion,
): AdminWorker {
  return {
    id: w.id,
    shard: w.shard,
    joinedAt: new Date(w.joinedAt).toISOString(),
    lastSeenMsAgo: Math.max(0, now - w.lastSeen),
    device: w.device,
    state: workerState(w, now),
    samplesPerSec: w.samplesPerSec,
    ...(w.loss !== undefined ? { loss: w.loss } : {}),
    contributed: w.contributed,
    share: job.samples > 0 ? w.contributed / job.samples : 0,
    offered: w.offered,
    accepted: w.accepted,
    neighbours: [...w.neighbours],
    settings: { ...w.settings },
    ...(w.plan ? { balance: { ...w.plan } } : {}),
    links: w.links,
    ...(suspicion ? { suspicion } : {}),
  };
}

/** Which workers a snapshot lists: `limit` of them from `offset` (see `MAX_SNAPSHOT_WORKERS`). */
export interface SnapshotPage {
  readonly offset: number;
  readonly limit: number;
}

/**
 * The job as the console shows it: its summary and one page of its workers, suspects first (the
 * ones a host must see to ban), then the others oldest first, so a page keeps its rows between
 * pushes. The suspicion tally reads every worker's links; only the page's workers get a view.
 */
export function jobSnapshot(
  job: Job,
  now = Date.now(),
  page: SnapshotPage = { offset: 0, limit: MAX_SNAPSHOT_WORKERS },
): AdminJobSnapshot {
  const evidence = suspicions(job.workers.values());
  const all = [...job.workers.values()].sort(
    (a, b) => a.joinedAt - b.joinedAt || (a.id < b.id ? -1 : 1),
  );
  const suspected = all.filter((w) => isSuspect(evidence, w));
  const ordered =
    suspected.length > 0 ? [...suspected, ...all.filter((w) => !isSuspect(evidence, w))] : all;
  const limit = Math.min(page.limit, MAX_SNAPSHOT_WORKERS);
  return {
    time: new Date(now).toISOString(),
    job: jobSummary(job),
    workerCount: all.length,
    offset: page.offset,
    workers: ordered
      .slice(page.offset, page.offset + limit)
      .map((w) => workerView(job, w, now, evidence.get(w.id))),
    suspectCount: suspected.length,
    suspects: suspected.slice(0, MAX_SNAPSHOT_WORKERS).map((w) => w.id),
  };
}

function isSuspect(evidence: ReadonlyMap<string, AdminSuspicion>, w: WorkerEntry): boolean {
  return evidence.get(w.id)?.suspected === true;
}
