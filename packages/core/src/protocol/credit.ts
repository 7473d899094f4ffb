/**
 * What the server says about credit (DESIGN §9): `/api/credit` (public) and
 * `/api/admin/credit` (behind the admin token). Credit is in FLOPs: verified samples × the
 * model's training FLOPs per sample (`trainingFlopsPerSample`).
 */

/** Most volunteers and teams one leaderboard lists, overall and per job. */
export const MAX_LEADERBOARD_ENTRIES = 50;
/** Most identities `/api/admin/credit` lists (the ones with the most credit). */
export const MAX_ADMIN_CREDIT_ROWS = 500;

/** One line of a leaderboard. */
export interface CreditEntry {
  /** 1 for the most credit. */
  readonly rank: number;
  /** An identity id (`v-…`) for volunteers, the team's name for teams. */
  readonly id: string;
  /** The volunteer's display name, shown as text; absent when it chose none. */
  readonly name?: string;
  readonly team?: string;
  /** Credit in FLOPs. */
  readonly credit: number;
  readonly samples: number;
  /** Teams: how many volunteers carry the team's name. */
  readonly members?: number;
}

export interface CreditBoard {
  readonly volunteers: readonly CreditEntry[];
  readonly teams: readonly CreditEntry[];
}

/** `/api/credit`: top volunteers and teams overall and per job; `you` with `?identity=`. */
export interface CreditReport {
  readonly overall: CreditBoard;
  readonly jobs: Readonly<Record<string, CreditBoard>>;
  /** How many identities hold credit (the boards list at most `MAX_LEADERBOARD_ENTRIES`). */
  readonly identities: number;
  /** The asked-for identity's own line, with its rank among all, when it holds any credit. */
  readonly you?: CreditEntry;
}

/** One identity as the admin console shows it. */
export interface AdminCreditIdentity {
  readonly id: string;
  readonly name?: string;
  readonly team?: string;
  readonly credit: number;
  readonly samples: number;
  readonly perJob: Readonly<Record<string, { readonly credit: number; readonly samples: number }>>;
  /** Reports whose sample count exceeded what time allows: credited nothing. */
  readonly inflatedReports: number;
  readonly checksPassed: number;
  readonly checksFailed: number;
  /** In [0, 1]; new identities start at `INITIAL_TRUST`. */
  readonly trust: number;
  /** Why the identity is flagged (inflated counts, a failed spot check); empty when it is not. */
  readonly flags: readonly string[];
  readonly firstSeen: string;
  readonly lastSeen: string;
}

export interface AdminCreditReport {
  readonly identities: readonly AdminCreditIdentity[];
  /** Identities the book holds; the list shows the `MAX_ADMIN_CREDIT_ROWS` with most credit. */
  readonly total: number;
}

const FLOP_UNITS = ['FLOP', 'kFLOP', 'MFLOP', 'GFLOP', 'TFLOP', 'PFLOP', 'EFLOP'] as const;

/** Credit for people: `12.3 GFLOP`, three significant digits, SI prefixes. */
export function formatFlops(flops: number): string {
  let v = Math.max(0, flops);
  let unit = 0;
  while (v >= 1000 && unit < FLOP_UNITS.length - 1) {
    v /= 1000;
    unit++;
  }
  const digits = v >= 100 || unit === 0 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${FLOP_UNITS[unit]}`;
}
