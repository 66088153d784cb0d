import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lrAuto } from '../../src/tune/lr-auto';
import { resolveJob } from '../../src/config/load';
import { ConfigError, TrainingError } from '../../src/errors';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob, withData } from './memory-source';

describe('train --lr auto (lrAuto)', function () {
  this.timeout(60000);

  it('sets the top group to the suggestion in config units and leaves the plot in the run folder', async () => {
    const out = tmpDir();
    const lines: string[] = [];
    const job = await lrAuto(tinyJob(out), {
      ...withData(new MemorySource({ perClass: 8 })),
      log: (s) => lines.push(s),
      lrFind: { start: 1e-5, end: 100, steps: 40 },
    });
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'lr_find.json'), 'utf8'));
    const resolved = resolveJob(job);
    expect(resolved.groups.strategy === 'stepped' && resolved.groups.top).to.equal(saved.configLr);
    expect(resolved.lr.base).to.equal(saved.configLr);
    expect(saved.configLr * (6 / 256)).to.be.closeTo(saved.suggestion.lr, 1e-15);
    expect(lines.join('\n')).to.match(/--lr auto: training with --lr /);
  });

  it('refuses to train when the finder cannot decrease the loss, and with --resume', async () => {
    let err: unknown;
    try {
      // one thread: on two, BatchNorm's per-shard statistics follow the shuffle and the loss moves
      await lrAuto(tinyJob(tmpDir(), { model: { dropout: 0 }, data: { flip: false }, train: { batch: 18, threads: 1 } }), {
        ...withData(new MemorySource({ noise: 0 })),
        lrFind: { start: 1e-12, end: 1e-10, steps: 20 },
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TrainingError);
    expect((err as Error).message).to.match(/could not decrease the loss.*give --lr explicitly/);
    let err2: unknown;
    try {
      await lrAuto(tinyJob(tmpDir()), { resume: 'runs/x' });
    } catch (e) {
      err2 = e;
    }
    expect(err2).to.be.instanceOf(ConfigError);
  });
});
