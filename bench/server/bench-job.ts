/** The job every simulated volunteer of `npm run bench:server` joins: small, so shards are cheap. */
export const benchJob = {
  id: 'bench',
  name: 'Server load benchmark',
  model: { kind: 'kmeans', dims: 4, clusters: 4 },
  dataset: { kind: 'clusters', clusters: 4, dims: 4, count: 6_400, testCount: 400 },
  shards: 64,
  batchSize: 16,
};

/** Only for the throwaway server the benchmark starts on 127.0.0.1. */
export const BENCH_ADMIN_TOKEN = 'bench-server-admin-token';
