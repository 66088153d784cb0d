/**
 * The README's "write your own callback" example, run as written: the block below between the markers must
 * equal the README's (imports aside), so the documentation cannot drift from code that works.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CALLBACK_ORDER,
  CancelBatch,
  createContainer,
  resolveJob,
  runJob,
  TOKENS,
  type BackwardInfo,
  type BatchInfo,
  type Callback,
  type DataSourceFactory,
  type JobInput,
} from '../../src/index';
import { MemorySource } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

async function example(input: JobInput, data: DataSourceFactory) {
  // README example start
  class LossLog implements Callback {
    readonly name = 'loss log';
    readonly order = CALLBACK_ORDER.DEFAULT; // after the monitors and early stopping, before the signal handler
    readonly losses: number[] = [];
    skipped = 0;
    afterBackward(b: BackwardInfo): void {
      // a veto: a batch whose loss is far above chance level does not go into the step
      if (b.loss > 50) {
        this.skipped++;
        throw new CancelBatch(`loss ${b.loss} on one batch`);
      }
    }
    afterStep(b: BatchInfo): void {
      this.losses.push(b.loss);
    }
  }
  const lossLog = new LossLog();
  const container = createContainer(resolveJob(input));
  container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue(data); // any stage, the same way
  container.bind<Callback>(TOKENS.Callback).toConstantValue(lossLog);
  const result = await runJob(input, { container });
  // README example end
  return { lossLog, result };
}

describe('README: write your own callback', function () {
  this.timeout(300000);

  it('the example in the README is this one, and it runs: the callback sees every step, the data stage is replaced', async () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const block = /<!-- example: test\/container\/readme-example\.test\.ts -->\n```ts\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README example block').to.not.equal(null);
    const own = fs.readFileSync(__filename, 'utf8');
    const body = /\/\/ README example start\n([\s\S]*?)\n\s*\/\/ README example end/.exec(own)![1];
    const norm = (s: string) =>
      s
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('import '))
        .join('\n');
    expect(norm(block![1])).to.equal(norm(body));

    const input = { model: { size: 32 }, train: { epochs: 2, batch: 4 }, backend: 'wasm', out: tmpDir('lt-readme-') } as JobInput;
    const source = new MemorySource(['a', 'b'], 4, 1);
    const { lossLog, result } = await example(input, { create: () => source });
    // 8 images at batch 4 for 2 epochs: 4 steps, each loss the trainer's own
    expect(lossLog.losses).to.have.length(4);
    expect(lossLog.skipped, 'no batch of this tiny run is anywhere near the veto').to.equal(0);
    const logged = fs
      .readFileSync(path.join(input.out!, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === 'step')
      .map((l) => l.loss);
    expect(lossLog.losses).to.deep.equal(logged);
    expect(result.network.classes).to.deep.equal(['a', 'b']);
  });
});
