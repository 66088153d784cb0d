/**
 * Determinism (issue 8, item 6): with a seed, two runs on the same backend give identical metrics,
 * step by step, and byte-identical exported weights. Flips and data order come from the seeded
 * data RNG, the head's initial weights from the seed, dropout masks from (seed, step) — see the
 * Trainer's doc comment. A different seed must change the result, or these checks could not fail.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob, type JobResult } from '../../src/job';
import { disposeNetwork } from '../../src/tune/parts';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { cli } from './cli';

interface Run {
  epochs: unknown[];
  steps: unknown[];
  weights: Buffer;
}

function collect(out: string, exportDir: string): Run {
  const lines = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // wall-clock seconds may differ, and numTensors counts the whole process (whatever earlier runs in it
  // left): neither is a result of the run
  const epochs = lines.filter((l) => l.type === 'epoch').map(({ seconds: _s, numTensors: _n, ...rest }) => rest);
  const steps = lines.filter((l) => l.type === 'step');
  return { epochs, steps, weights: fs.readFileSync(path.join(exportDir, 'weights.bin')) };
}

describe('reliability: determinism', function () {
  this.timeout(300000);
  let data: string;
  before(async () => {
    data = tmpDir('lt-det-data-');
    await writeClassFolder(data, { red: 6, green: 6, blue: 6 });
  });

  async function run(backend: 'wasm' | 'cpu', seed: number, epochs: number): Promise<Run> {
    const out = tmpDir(`lt-det-${backend}-`);
    let r: JobResult | undefined;
    try {
      r = await runJob({ data: { dir: data }, model: { size: 32, dropout: 0.5 }, train: { epochs, batch: 4, seed }, backend, out }, { log: () => undefined });
      return collect(out, r.exportDir);
    } finally {
      if (r) disposeNetwork(r.network);
    }
  }

  // the pure-JS cpu backend is ~15x slower: one epoch there
  for (const [backend, epochs] of [
    ['wasm', 3],
    ['cpu', 1],
  ] as const) {
    it(`${backend}: the same seed twice gives identical per-step losses, epoch metrics and exported weights`, async () => {
      const a = await run(backend, 7, epochs);
      const b = await run(backend, 7, epochs);
      expect(a.steps.length).to.equal(epochs * Math.ceil(15 / 4));
      expect(b.steps).to.deep.equal(a.steps);
      expect(b.epochs).to.deep.equal(a.epochs);
      expect(b.weights.equals(a.weights), 'weights.bin byte for byte').to.equal(true);
      const c = await run(backend, 8, epochs);
      expect(c.steps).to.not.deep.equal(a.steps);
      expect(c.weights.equals(a.weights)).to.equal(false);
    });
  }

  it('two separate CLI processes with --seed give byte-identical exports and metrics', () => {
    const runs = [0, 1].map(() => {
      const out = path.join(tmpDir('lt-det-cli-'), 'run');
      const r = cli(['train', '--data', data, '--out', out, '--epochs', '2', '--size', '32', '--batch', '4', '--backend', 'wasm', '--seed', '11']);
      expect(r.code, r.stderr).to.equal(0);
      return collect(out, path.join(out, 'model'));
    });
    expect(runs[1].steps).to.deep.equal(runs[0].steps);
    expect(runs[1].epochs).to.deep.equal(runs[0].epochs);
    expect(runs[1].weights.equals(runs[0].weights)).to.equal(true);
  });
});
