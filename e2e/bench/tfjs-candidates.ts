/** TF.js backends as benchmark candidates, for the browser and for Node. */
import { workloadId } from './suite.ts';
import type { BenchModel, Candidate } from './suite.ts';
import { hasConvGradients, tfjsCnnSession } from './tfjs-cnn.ts';
import { tfjsSession } from './tfjs-mlp.ts';
import type { TfModule } from './tfjs-sgd.ts';

/**
 * A TF.js backend by its registry name (`webgpu`, `webgl`, `wasm`, `cpu`). `describe` adds
 * backend-specific detail to the note (e.g. which WASM variant loaded).
 */
export function tfjsCandidate(
  tf: TfModule,
  name: string,
  model: BenchModel,
  learningRate: number,
  describe: () => Promise<string> = async () => '',
): Candidate {
  const id = workloadId(model.workload, `tfjs-${name}`);
  const activate = async (): Promise<void> => {
    if (!tf.findBackendFactory(name)) throw new Error(`TF.js backend "${name}" is not registered`);
    // setBackend resolves false (and logs) rather than throwing when initialisation fails.
    if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend("${name}") failed`);
    await tf.ready();
  };
  return {
    id,
    async prepare(): Promise<string> {
      await activate();
      const im2col = model.workload === 'cnn' && !hasConvGradients(tf);
      const extra = [
        await describe(),
        im2col ? 'conv2d as im2col + matMul (no conv gradients)' : '',
      ]
        .filter(Boolean)
        .join(', ');
      return `TF.js ${tf.version_core} ${tf.getBackend()}${extra ? `, ${extra}` : ''}`;
    },
    async open() {
      await activate();
      const session = model.workload === 'cnn' ? tfjsCnnSession : tfjsSession;
      return session(tf, model.layout, model.params, model.batches, learningRate);
    },
  };
}
