export {
  createServer,
  defaultClientDir,
  type MeshgradServer,
  type ServerOptions,
} from './server.ts';
export { DEFAULT_JOB, jobSpecSchema, parseJobSpec, type JobSpec } from './jobs/job-spec.ts';
