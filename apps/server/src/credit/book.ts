/**
 * The credit book (DESIGN §9): per volunteer identity and per job, the samples the server
 * credited and their worth in training FLOPs. Only samples that passed the job's bound on
 * claimed counts (jobs/progress.ts, `Progress.credit`) reach it; a report that claims far more
 * than that bound could ever allow (`INFLATED_CLAIM_SAMPLES`) credits the identity nothing and
 * flags it. Kept in `<dataDir>/credit.json`, written atomically, loaded at start.
 */
import path from 'node:path';
import fs from 'node:fs/promises';
import { z } from 'zod';
import {
  displayNameSchema,
  IDENTITY_ID,
  MAX_ADMIN_CREDIT_ROWS,
  MAX_LEADERBOARD_ENTRIES,
  teamNameSchema,
  type AdminCreditIdentity,
  type AdminCreditReport,
  type CreditBoard,
  type CreditEntry,
  type CreditReport,
} from '@meshgrad/core';
import { InOrder } from '../jobs/in-order.ts';
import { CREDIT_BURST_SEC, MAX_SAMPLES_PER_SEC } from '../jobs/progress.ts';
import type { Logger } from '../logger.ts';
import type { ServerMetrics } from '../metrics.ts';
import { writeFileAtomic, type FileSystem } from '../store.ts';

/**
 * Identities the book keeps. Past it the one with the least credit that no connected worker
 * holds is forgotten, so keys made in a loop cannot grow the server's memory or its file.
 */
export const MAX_IDENTITIES = 10_000;
/** Jobs one identity keeps credit for; older jobs' lines fold into the total only. */
export const MAX_JOBS_PER_IDENTITY = 32;
/** Trust a new identity starts with; spot checks raise or lower it (DESIGN §9). */
export const INITIAL_TRUST = 0.5;
/** The book is written at most this often (ms): a 10,000-identity file is about 3 MB. */
export const CREDIT_FLUSH_INTERVAL_MS = 5_000;
/** A leaderboard is computed at most this often (ms): `/api/credit` is public. */
export const LEADERBOARD_CACHE_MS = 1_000;
/** File name in the data directory. */
export const CREDIT_FILE = 'credit.json';
const FILE_VERSION = 1;

export const FLAG_INFLATED = 'inflated sample count';
export const FLAG_FAILED_CHECK = 'failed a spot check';
/** A passed spot check moves trust this share of the way to 1; a failed one multiplies it. */
export const TRUST_GAIN = 0.1;
export const TRUST_LOSS = 0.5;
/**
 * A claim in one report beyond this is a lie, not a fast tab: ten times the most the job's bound
 * ever credits at once. Why not the bound itself: a tiny model on a fast CPU (K-Means, 8 × 4)
 * trains about 5 million samples/s in a tab, above `MAX_SAMPLES_PER_SEC`; such a tab is cut to
 * the bound, not flagged.
 */
export const INFLATED_CLAIM_SAMPLES = 10 * CREDIT_BURST_SEC * MAX_SAMPLES_PER_SEC;

/** A volunteer as it proved itself in `hello`. */
export interface BoundIdentity {
  readonly id: string;
  readonly name?: string;
  readonly team?: string;
}

interface JobCredit {
  credit: number;
  samples: number;
}

interface IdentityRecord {
  name?: string;
  team?: string;
  credit: number;
  samples: number;
  perJob: Record<string, JobCredit>;
  /** Per job, the credit earned since the identity's last passed spot check there. */
  unverified: Record<string, JobCredit>;
  inflatedReports: number;
  checksPassed: number;
  checksFailed: number;
  trust: number;
  flags: string[];
  firstSeen: number;
  lastSeen: number;
}

const nonNegative = z.number().finite().nonnegative();
const jobCreditSchema = z.object({ credit: nonNegative, samples: nonNegative });
const recordSchema = z.object({
  name: displayNameSchema.optional(),
  team: teamNameSchema.optional(),
  credit: nonNegative,
  samples: nonNegative,
  perJob: z.record(z.string().max(64), jobCreditSchema),
  unverified: z.record(z.string().max(64), jobCreditSchema).default({}),
  inflatedReports: z.number().int().nonnegative(),
  checksPassed: z.number().int().nonnegative(),
  checksFailed: z.number().int().nonnegative(),
  trust: z.number().min(0).max(1),
  flags: z.array(z.string().max(200)).max(8),
  firstSeen: nonNegative,
  lastSeen: nonNegative,
});
const fileSchema = z.object({
  version: z.literal(FILE_VERSION),
  identities: z.record(z.string().regex(IDENTITY_ID), recordSchema),
});

/** What the job calls for every report it credited (see `Job.onCredit`). */
export interface CreditedReport {
  /** Samples the report claimed beyond the worker's previous report. */
  readonly claimed: number;
  /** Samples the job credited: `claimed` cut to what time allows (`Progress.credit`). */
  readonly credited: number;
}

export class CreditBook {
  private readonly identities = new Map<string, IdentityRecord>();
  /** Connected workers' identities, by worker id. */
  private readonly bound = new Map<string, string>();
  private dirty = false;
  private lastFlushAt = 0;
  private readonly writes = new InOrder();
  private cached: { at: number; job: string | undefined; report: CreditReport } | null = null;
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly files: FileSystem = fs,
  ) {
    this.file = path.join(dataDir, CREDIT_FILE);
  }

  /** Reads the book the server kept before; a file that does not parse is logged and set aside. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await this.files.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let parsed: z.infer<typeof fileSchema>;
    try {
      parsed = fileSchema.parse(JSON.parse(text));
    } catch (err) {
      // Why keep going: a broken book must not keep the jobs from serving; the file stays for
      // the host to look at under another name, and the next write starts a new one.
      const aside = `${this.file}.broken-${Date.now()}`;
      await this.files.rename(this.file, aside).catch(() => undefined);
      this.log.error({ err, file: aside }, 'credit book does not parse; starting a new one');
      return;
    }
    for (const [id, r] of Object.entries(parsed.identities).slice(0, MAX_IDENTITIES)) {
      this.identities.set(id, {
        ...r,
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.team !== undefined ? { team: r.team } : {}),
      } as IdentityRecord);
    }
    this.metrics.creditIdentities.set(this.identities.size);
  }

  /** A worker said hello as `identity`: its credited samples go to it until it leaves. */
  bind(workerId: string, identity: BoundIdentity, now = Date.now()): void {
    this.bound.set(workerId, identity.id);
    let r = this.identities.get(identity.id);
    if (!r) {
      this.makeRoom();
      r = {
        credit: 0,
        samples: 0,
        perJob: {},
        unverified: {},
        inflatedReports: 0,
        checksPassed: 0,
        checksFailed: 0,
        trust: INITIAL_TRUST,
        flags: [],
        firstSeen: now,
        lastSeen: now,
      };
      this.identities.set(identity.id, r);
      this.metrics.creditIdentities.set(this.identities.size);
    }
    // The latest hello's name and team count; leaving them out clears them.
    if (identity.name !== undefined) r.name = identity.name;
    else delete r.name;
    if (identity.team !== undefined) r.team = identity.team;
    else delete r.team;
    r.lastSeen = now;
    this.changed();
  }

  unbind(workerId: string): void {
    this.bound.delete(workerId);
  }

  /** The identity a connected worker proved, if any. */
  identityOf(workerId: string): string | undefined {
    return this.bound.get(workerId);
  }

  /**
   * Credits one report of `workerId` in `jobId`: what passed the job's bound. A claim over
   * `INFLATED_CLAIM_SAMPLES` credits nothing (the whole report is suspect, not just its
   * excess) and flags the identity.
   */
  credit(
    jobId: string,
    workerId: string,
    report: CreditedReport,
    flopsPerSample: number,
    now = Date.now(),
  ): void {
    const id = this.bound.get(workerId);
    const r = id === undefined ? undefined : this.identities.get(id);
    if (!r) return;
    r.lastSeen = now;
    if (report.claimed > INFLATED_CLAIM_SAMPLES) {
      r.inflatedReports++;
      if (!r.flags.includes(FLAG_INFLATED)) r.flags.push(FLAG_INFLATED);
      this.metrics.creditRefusedReports.inc({ job: jobId, reason: 'inflated' });
      this.log.warn(
        { identity: id, worker: workerId, claimed: report.claimed, allowed: report.credited },
        'sample count over the bound: no credit for this report',
      );
      this.changed();
      return;
    }
    if (report.credited <= 0) return;
    const flops = report.credited * flopsPerSample;
    r.samples += report.credited;
    r.credit += flops;
    let line = r.perJob[jobId];
    if (!line) {
      line = { credit: 0, samples: 0 };
      r.perJob[jobId] = line;
      const jobs = Object.keys(r.perJob);
      if (jobs.length > MAX_JOBS_PER_IDENTITY) delete r.perJob[jobs[0] as string];
    }
    line.samples += report.credited;
    line.credit += flops;
    const pending = (r.unverified[jobId] ??= { credit: 0, samples: 0 });
    pending.samples += report.credited;
    pending.credit += flops;
    this.metrics.creditedSamples.inc({ job: jobId }, report.credited);
    this.metrics.creditFlops.inc({ job: jobId }, flops);
    this.changed();
  }

  /** An identity's trust; new identities' for one the book does not hold. */
  trustOf(identity: string): number {
    return this.identities.get(identity)?.trust ?? INITIAL_TRUST;
  }

  /**
   * A spot check's verdict for `identity` in `jobId` (credit/spot-checks.ts). A pass verifies
   * the credit earned there since the last pass and raises trust; a failure takes that credit
   * back, lowers trust and flags the identity.
   */
  spotCheck(identity: string, jobId: string, passed: boolean): void {
    const r = this.identities.get(identity);
    if (!r) return;
    const pending = r.unverified[jobId];
    delete r.unverified[jobId];
    if (passed) {
      r.checksPassed++;
      r.trust += (1 - r.trust) * TRUST_GAIN;
    } else {
      r.checksFailed++;
      r.trust *= TRUST_LOSS;
      if (!r.flags.includes(FLAG_FAILED_CHECK)) r.flags.push(FLAG_FAILED_CHECK);
      if (pending) {
        r.credit = Math.max(0, r.credit - pending.credit);
        r.samples = Math.max(0, r.samples - pending.samples);
        const line = r.perJob[jobId];
        if (line) {
          line.credit = Math.max(0, line.credit - pending.credit);
          line.samples = Math.max(0, line.samples - pending.samples);
        }
        this.metrics.creditVoidedFlops.inc({ job: jobId }, pending.credit);
      }
    }
    this.metrics.spotChecks.inc({ job: jobId, outcome: passed ? 'passed' : 'failed' });
    this.changed();
  }

  private changed(): void {
    this.dirty = true;
    this.cached = null;
  }

  /** Forgets the identity with the least credit that no connected worker holds, at the cap. */
  private makeRoom(): void {
    if (this.identities.size < MAX_IDENTITIES) return;
    const held = new Set(this.bound.values());
    let victim: string | undefined;
    let least = Infinity;
    for (const [id, r] of this.identities) {
      if (held.has(id)) continue;
      if (r.credit < least || (r.credit === least && victim === undefined)) {
        least = r.credit;
        victim = id;
      }
    }
    if (victim !== undefined) this.identities.delete(victim);
  }

  /** Writes the book when it changed and the last write is `CREDIT_FLUSH_INTERVAL_MS` old. */
  flushIfDue(now = Date.now()): Promise<void> {
    if (!this.dirty || now - this.lastFlushAt < CREDIT_FLUSH_INTERVAL_MS) return Promise.resolve();
    return this.flush(now);
  }

  /** Writes the book now when it changed; resolves once it is on disk. */
  flush(now = Date.now()): Promise<void> {
    return this.writes.run(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      this.lastFlushAt = now;
      const body = { version: FILE_VERSION, identities: Object.fromEntries(this.identities) };
      try {
        await writeFileAtomic(this.file, JSON.stringify(body), this.files);
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    });
  }

  /** The public leaderboards: overall and per job, or only `job`'s; `you` for `identity`. */
  report(options: { job?: string; identity?: string } = {}, now = Date.now()): CreditReport {
    const c = this.cached;
    const base =
      c && c.job === options.job && now - c.at < LEADERBOARD_CACHE_MS
        ? c.report
        : this.computeReport(options.job);
    if (base !== c?.report) this.cached = { at: now, job: options.job, report: base };
    const you = options.identity === undefined ? undefined : this.standing(options.identity);
    return you ? { ...base, you } : base;
  }

  private computeReport(job: string | undefined): CreditReport {
    const all = [...this.identities.entries()];
    const jobs = new Set<string>();
    for (const [, r] of all) for (const j of Object.keys(r.perJob)) jobs.add(j);
    const boards: Record<string, CreditBoard> = {};
    for (const j of jobs) {
      if (job !== undefined && j !== job) continue;
      boards[j] = board(all, (r) => r.perJob[j]);
    }
    return {
      overall: board(all, (r) => r),
      jobs: boards,
      identities: all.filter(([, r]) => r.credit > 0).length,
    };
  }

  /** One identity's line with its overall rank; undefined when it holds no credit. */
  standing(identity: string): CreditEntry | undefined {
    const r = this.identities.get(identity);
    if (!r || r.credit <= 0) return undefined;
    let rank = 1;
    for (const [id, o] of this.identities) {
      if (o.credit > r.credit || (o.credit === r.credit && id < identity)) rank++;
    }
    return entry(rank, identity, r, r);
  }

  /** Every identity for the admin console: the `MAX_ADMIN_CREDIT_ROWS` with most credit. */
  adminReport(): AdminCreditReport {
    const rows = [...this.identities.entries()]
      .sort(([a, x], [b, y]) => y.credit - x.credit || (a < b ? -1 : 1))
      .slice(0, MAX_ADMIN_CREDIT_ROWS)
      .map(([id, r]): AdminCreditIdentity => ({
        id,
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.team !== undefined ? { team: r.team } : {}),
        credit: r.credit,
        samples: r.samples,
        perJob: Object.fromEntries(Object.entries(r.perJob).map(([j, l]) => [j, { ...l }])),
        inflatedReports: r.inflatedReports,
        checksPassed: r.checksPassed,
        checksFailed: r.checksFailed,
        trust: r.trust,
        flags: [...r.flags],
        firstSeen: new Date(r.firstSeen).toISOString(),
        lastSeen: new Date(r.lastSeen).toISOString(),
      }));
    return { identities: rows, total: this.identities.size };
  }
}

function entry(
  rank: number,
  id: string,
  r: IdentityRecord,
  line: JobCredit,
  members?: number,
): CreditEntry {
  return {
    rank,
    id,
    ...(r.name !== undefined ? { name: r.name } : {}),
    ...(r.team !== undefined ? { team: r.team } : {}),
    credit: line.credit,
    samples: line.samples,
    ...(members !== undefined ? { members } : {}),
  };
}

/** The top volunteers and teams by the credit `line` picks from each identity. */
function board(
  all: ReadonlyArray<readonly [string, IdentityRecord]>,
  line: (r: IdentityRecord) => JobCredit | undefined,
): CreditBoard {
  const held = all
    .map(([id, r]) => ({ id, r, l: line(r) }))
    .filter((x): x is { id: string; r: IdentityRecord; l: JobCredit } => (x.l?.credit ?? 0) > 0)
    .sort((a, b) => b.l.credit - a.l.credit || (a.id < b.id ? -1 : 1));
  const volunteers = held
    .slice(0, MAX_LEADERBOARD_ENTRIES)
    .map((x, i) => entry(i + 1, x.id, x.r, x.l));
  const teams = new Map<string, { credit: number; samples: number; members: number }>();
  for (const x of held) {
    if (x.r.team === undefined) continue;
    const t = teams.get(x.r.team) ?? { credit: 0, samples: 0, members: 0 };
    t.credit += x.l.credit;
    t.samples += x.l.samples;
    t.members++;
    teams.set(x.r.team, t);
  }
  const teamLines = [...teams.entries()]
    .sort(([a, x], [b, y]) => y.credit - x.credit || (a < b ? -1 : 1))
    .slice(0, MAX_LEADERBOARD_ENTRIES)
    .map(([name, t], i) => ({
      rank: i + 1,
      id: name,
      team: name,
      credit: t.credit,
      samples: t.samples,
      members: t.members,
    }));
  return { volunteers, teams: teamLines };
}
