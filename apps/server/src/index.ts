export {
  createServer,
  defaultClientDir,
  type MeshgradServer,
  type ServerOptions,
} from './server.ts';
export {
  DEFAULT_JOB,
  JobSpecError,
  jobSpecJsonSchema,
  jobSpecSchema,
  parseJobSpec,
  type JobSpec,
  type JobSpecInput,
  type ParseJobSpecOptions,
} from './jobs/job-spec.ts';
export { loadJobData, type JobData } from './jobs/data.ts';
