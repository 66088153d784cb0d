/**
 * The soak run (issue 8, item 5), in its own process so RSS means something: started by
 * soak.test.ts as `node --expose-gc -r tsx/cjs soak-child.ts <workdir> <epochs> <lrFinds> <trials>`.
 * Prints one JSON line per sample: after each training epoch, after each LR range test, after each
 * search trial; every sample is taken after two full GCs.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { runJob } from '../../src/job';
import { lrFind } from '../../src/tune/lr-find';
import { search } from '../../src/tune/search';
import { disposeNetwork } from '../../src/tune/parts';
import { writeClassFolder } from '../helpers/images';

const [work, epochsArg, lrFindsArg, trialsArg] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;

function sample(phase: string, i: number): void {
  gc!();
  gc!();
  const m = process.memoryUsage();
  console.log(JSON.stringify({ phase, i, numTensors: tf.memory().numTensors, rss: m.rss, heapUsed: m.heapUsed, external: m.external }));
}

// `mocha test/reliability` loads every .ts in the folder: run only when started as a script
if (require.main === module) {
  if (!gc) throw new Error('run with --expose-gc');
  soak().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

async function soak(): Promise<void> {
  const data = path.join(work, 'data');
  await writeClassFolder(data, { red: 6, blue: 6 });
  // flips only: on 6 images per class the default rule would add random crops and jitter, whose hard views at a
  // near-zero loss read as divergence spikes by epoch 40; this soak is about memory, not augmentation
  const job = { data: { dir: data, valFraction: 0.2, augment: { auto: false } }, model: { size: 32 }, train: { batch: 4 }, backend: 'wasm' as const };
  const quiet = { log: () => undefined };
  sample('start', 0);
  const r = await runJob(
    // default job: the divergence guard's snapshots and rollbacks are part of what must not leak
    { ...job, train: { ...job.train, epochs: Number(epochsArg) }, out: path.join(work, 'train') },
    { ...quiet, callbacks: [{ afterEpoch: (e) => sample('epoch', e.epoch + 1) }] },
  );
  console.log(JSON.stringify({ phase: 'guard', i: r.fit.guardEvents.length, numTensors: 0, rss: 0, heapUsed: 0, external: 0 }));
  disposeNetwork(r.network);
  sample('after-train', 0);
  for (let i = 1; i <= Number(lrFindsArg); i++) {
    await lrFind({ ...job, out: path.join(work, `lr-find-${i}`) }, { ...quiet, lrFind: { steps: 30 } });
    sample('lr-find', i);
  }
  let trial = 0;
  await search(
    { ...job, train: { ...job.train, epochs: 1 } },
    {
      out: path.join(work, 'search'),
      search: { trials: Number(trialsArg), seed: 1 },
      log: (s) => {
        if (s.startsWith('trial ')) sample('trial', ++trial);
      },
    },
  );
  sample('end', 0);
}
