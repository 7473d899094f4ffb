import { runAsgd } from './asgd-run.ts';
import type { SimulationConfig, SimulationResult } from './simulation.ts';
import { runSync } from './sync-run.ts';

/** Runs one simulation in the configured mode (default 'asgd'). */
export function simulate(config: SimulationConfig): Promise<SimulationResult> {
  return (config.mode ?? 'asgd') === 'sync' ? runSync(config) : runAsgd(config);
}
