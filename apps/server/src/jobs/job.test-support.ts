/** Test support for `Job`: a worker's `stats` report with only the sample count set. */
export const stats = (samples: number) => ({
  jobId: 'blobs',
  samples,
  samplesPerSec: 10,
  offered: 0,
  accepted: 0,
  paused: false,
  links: [],
});
