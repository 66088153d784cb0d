import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { layertune, layertuneKillable, userLines } from './run';

describe('layertune train --resume', function () {
  this.timeout(600000);

  it('a run killed with SIGKILL during epoch 2+ and resumed in a new process exports the same weights, bit for bit', async () => {
    const data = tmpDir('lt-cli-resume-data-');
    await writeClassFolder(data, { a: 16, b: 16, c: 16 });
    const common = ['--data', data, '--size', '32', '--batch', '4', '--epochs', '4', '--backend', 'wasm', '--seed', '9'];

    const a = tmpDir('lt-cli-resume-a-');
    const full = layertune(['train', ...common, '--out', a]);
    expect(full.code, full.stderr).to.equal(0);

    const b = tmpDir('lt-cli-resume-b-');
    const killed = await layertuneKillable(['train', ...common, '--out', b], (line, kill) => {
      if (/^epoch 2\/4:/.test(line)) kill();
    });
    expect(killed.signal).to.equal('SIGKILL');
    expect(fs.existsSync(path.join(b, 'model'))).to.equal(false);
    const state = JSON.parse(fs.readFileSync(path.join(b, 'checkpoints', 'last', 'state.json'), 'utf8'));
    expect(state.trainer.epoch).to.be.within(1, 2);
    // no half-written checkpoint folder is left visible
    expect(fs.readdirSync(path.join(b, 'checkpoints')).filter((n) => !n.startsWith('.'))).to.include('last');

    // changing the config is refused, naming the field
    const changed = layertune(['train', '--resume', b, '--epochs', '6']);
    expect(changed.code).to.equal(2);
    expect(userLines(changed.stderr).pop()).to.match(/^error: resume: the config differs from the checkpoint's \(train\.epochs: 4 → 6\)/);

    const resumed = layertune(['train', '--resume', b]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    expect(resumed.stdout).to.match(new RegExp(`resuming .*checkpoints/last: ${state.trainer.epoch} epoch\\(s\\), ${state.trainer.step} step\\(s\\) done`));
    // only the remaining epochs ran
    expect(resumed.stdout).to.not.match(/^epoch 1\/4:/m);
    expect(resumed.stdout).to.match(/^epoch 4\/4:/m);
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f))), f).to.equal(true);
    }
    // one metrics file covering the whole run: every step once, in order, every epoch once
    const metrics = fs
      .readFileSync(path.join(b, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = metrics.filter((m) => m.type === 'step').map((m) => m.step);
    expect(steps).to.deep.equal(Array.from({ length: 4 * 10 }, (_, i) => i));
    expect(metrics.filter((m) => m.type === 'epoch').map((m) => m.epoch)).to.deep.equal([0, 1, 2, 3]);
    expect(fs.existsSync(path.join(b, 'metrics.jsonl.before-resume'))).to.equal(false);
  });
});
