import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';

import { BACKENDS, type BackendName } from './backend-names';

export { BACKENDS, type BackendName };

export interface BackendChoice {
  chosen: Exclude<BackendName, 'auto'>;
  /** tfjs's own backend name after setBackend ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string;
  /** Why each better candidate was passed over, in preference order. */
  skipped: Array<{ name: string; reason: string }>;
}

type Loader = () => Promise<string>;

/**
 * Native bindings come first because they are 10-100x faster; they are optionalDependencies
 * that fail to install wherever libtensorflow cannot be downloaded, so a missing module is the
 * normal case here and is reported, not thrown.
 */
const LOADERS: Record<Exclude<BackendName, 'auto'>, Loader> = {
  'tensorflow-gpu': async () => {
    require('@tensorflow/tfjs-node-gpu');
    return 'tensorflow';
  },
  tensorflow: async () => {
    require('@tensorflow/tfjs-node');
    return 'tensorflow';
  },
  wasm: async () => {
    require('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm module failed to initialise');
    const { registerTrainingKernels } = require('./training-kernels') as typeof import('./training-kernels');
    await registerTrainingKernels();
    return 'wasm';
  },
  cpu: async () => 'cpu',
};

const ORDER: Array<Exclude<BackendName, 'auto'>> = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/** tfjs's own "install the node backend" banner: our backend line already says why it was passed over. */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}

export async function selectBackend(name: string): Promise<BackendChoice> {
  silenceCpuBanner();
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new ConfigError('backend', `unknown backend "${name}" (expected one of ${BACKENDS.join(', ')})`);
  }
  const candidates = name === 'auto' ? ORDER : [name as Exclude<BackendName, 'auto'>];
  const skipped: BackendChoice['skipped'] = [];
  for (const c of candidates) {
    try {
      const tfName = await LOADERS[c]();
      const ok = await tf.setBackend(tfName);
      if (!ok) throw new Error(`tf.setBackend('${tfName}') failed to initialise`);
      await tf.ready();
      return { chosen: c, tfBackend: tf.getBackend(), skipped };
    } catch (e) {
      skipped.push({ name: c, reason: firstLine(e) });
    }
  }
  const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new ConfigError('backend', `backend "${name}" is not available (${why})`);
}

export function describeChoice(c: BackendChoice): string {
  const lines = [`backend: ${c.chosen}`];
  for (const s of c.skipped) lines.push(`  passed over ${s.name}: ${s.reason}`);
  return lines.join('\n');
}
