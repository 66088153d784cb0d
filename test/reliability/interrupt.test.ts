/**
 * Interruption (issue 8, item 3). SIGINT/SIGTERM: the running epoch finishes, its checkpoint is written
 * atomically, the process exits with 130/143 and a one-line resume hint, and `layertune train --resume`
 * continues to the same weights as an uninterrupted run, bit for bit. A second signal stops at the next step
 * keeping the previous checkpoint. kill -9 during a checkpoint write leaves the previous checkpoint readable.
 * (SIGKILL during training + resume is test/cli/resume.test.ts; kill -9 during an export is test/export.)
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, cli, type CliResult } from './cli';
import { nodeChild } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { InterruptOnSignal, InterruptedError, signalExitCode, type SignalHost, type StopSignal } from '../../src/train/signals';
import { latestCheckpoint, loadCheckpoint, peekCheckpoint } from '../../src/train/checkpoint/store';
import { CancelFit, type BatchInfo } from '../../src/train/callbacks';
import { recoverFolder } from '../../src/export/atomic';

class FakeHost implements SignalHost {
  readonly listeners = new Map<StopSignal, Set<() => void>>();
  exited: number | null = null;
  on(s: StopSignal, l: () => void) {
    this.listeners.set(s, (this.listeners.get(s) ?? new Set()).add(l));
  }
  off(s: StopSignal, l: () => void) {
    this.listeners.get(s)?.delete(l);
  }
  exit(code: number) {
    this.exited = code;
  }
  send(s: StopSignal) {
    for (const l of this.listeners.get(s) ?? []) l();
  }
  count(): number {
    return [...this.listeners.values()].reduce((a, s) => a + s.size, 0);
  }
}

const batch = (epoch: number, step: number): BatchInfo => ({ epoch, step, batchInEpoch: 0, batchesPerEpoch: 4, loss: 1, accuracy: 0, examples: 2, lrs: {} });

/** The interrupt child as a process the test signals when a stdout line matches. */
function child(args: string[], onLine: (line: string, send: (s: NodeJS.Signals) => void) => void): Promise<CliResult> {
  return nodeChild(['-r', 'tsx/cjs', path.join(__dirname, 'interrupt-child.ts'), ...args], (l, kill) => onLine(l, (s) => kill(s)));
}

/** The callback ends the fit at this step: it throws CancelFit with this reason. */
async function expectCancelFit(p: Promise<void>, reason: string): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(CancelFit);
  expect((err as CancelFit).reason).to.equal(reason);
}

describe('reliability: interruption', function () {
  this.timeout(600000);

  describe('InterruptOnSignal (fake signals)', () => {
    it('listens only during training; first signal: stop one step after the next epoch commit', async () => {
      const host = new FakeHost();
      const notes: string[] = [];
      const cb = new InterruptOnSignal({ runDir: tmpDir(), host, notify: (l) => notes.push(l) });
      expect(host.count()).to.equal(0);
      cb.beforeFit({ startEpoch: 0 });
      expect(host.count()).to.equal(2);
      cb.beforeEpoch(0);
      expect(await cb.afterStep(batch(0, 0))).to.equal(undefined);
      host.send('SIGTERM');
      expect(notes[0]).to.match(/^SIGTERM: finishing epoch 1 to checkpoint it/);
      expect(await cb.afterStep(batch(0, 1)), 'the epoch goes on').to.equal(undefined);
      cb.afterEpoch();
      cb.beforeEpoch(1);
      await expectCancelFit(cb.afterStep(batch(1, 4)), 'interrupted by SIGTERM');
      let err: unknown;
      try {
        cb.afterFit();
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(InterruptedError);
      expect((err as InterruptedError).exitCode).to.equal(143);
      expect(host.count(), 'listeners removed').to.equal(0);
    });

    it('second signal: stop at the next step; third: exit at once with 128+signo', async () => {
      const host = new FakeHost();
      const cb = new InterruptOnSignal({ runDir: tmpDir(), host, notify: () => undefined });
      cb.beforeFit({ startEpoch: 2 });
      host.send('SIGINT');
      expect(await cb.afterStep(batch(2, 0))).to.equal(undefined);
      host.send('SIGINT');
      await expectCancelFit(cb.afterStep(batch(2, 1)), 'interrupted by SIGINT');
      host.send('SIGINT');
      expect(host.exited).to.equal(130);
      expect(signalExitCode('SIGTERM')).to.equal(143);
    });

    it('a signal in the last epoch lets the run finish normally (no error: the export is written)', () => {
      const host = new FakeHost();
      const cb = new InterruptOnSignal({ runDir: tmpDir(), host, notify: () => undefined });
      cb.beforeFit({ startEpoch: 0 });
      host.send('SIGINT');
      cb.afterEpoch(); // the last epoch: no further batch
      expect(() => cb.afterFit()).to.not.throw();
    });
  });

  it('SIGINT mid-run: the epoch finishes and is checkpointed, exit 130 with the resume command; --resume ends bit-identical to an uninterrupted run', async () => {
    const data = tmpDir('lt-int-data-');
    await writeClassFolder(data, { a: 8, b: 8 });
    const ref = path.join(tmpDir('lt-int-ref-'), 'run');
    const full = await child([data, ref, '4'], () => undefined);
    expect(full.code, full.stderr).to.equal(0);

    const out = path.join(tmpDir('lt-int-'), 'run');
    let sent = false;
    const r = await child([data, out, '4'], (line, send) => {
      if (!sent && /^epoch 1\/4:/.test(line)) {
        sent = true;
        send('SIGINT');
      }
    });
    expect(r.signal).to.equal(null);
    expect(r.code, r.stderr).to.equal(130);
    expect(r.stderr).to.match(/SIGINT: finishing epoch \d to checkpoint it, then stopping/);
    const err = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(err).to.have.length(1);
    const m = /^error: interrupted by SIGINT; checkpoint (\S+) holds (\d) finished epoch\(s\); continue with: layertune train --resume (\S+)$/.exec(err[0]);
    expect(m, err[0]).to.not.equal(null);
    const epochs = Number(m![2]);
    expect(epochs).to.be.within(1, 3); // the epoch running when the signal landed, finished
    expect(m![3]).to.equal(out);
    expect(peekCheckpoint(path.join(out, 'checkpoints', 'last')).trainer.epoch).to.equal(epochs);
    expect(peekCheckpoint(path.join(out, 'checkpoints', 'last')).trainer.stoppedEarly).to.equal(null);
    expect(fs.existsSync(path.join(out, 'model')), 'nothing exported from the interrupted state').to.equal(false);
    expect(fs.readdirSync(path.join(out, 'checkpoints')).filter((n) => n.includes('.tmp-'))).to.deep.equal([]);

    const resumed = cli(['train', '--resume', out]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    expect(resumed.stdout).to.match(new RegExp(`resuming .*: ${epochs} epoch\\(s\\)`));
    expect(resumed.stdout).to.match(/^epoch 4\/4:/m);
    const a = fs.readFileSync(path.join(ref, 'model', 'weights.bin'));
    const b = fs.readFileSync(path.join(out, 'model', 'weights.bin'));
    expect(b.equals(a), 'weights after interrupt + resume equal the uninterrupted run').to.equal(true);
  });

  it('SIGTERM twice: stops at the next step, keeps the previous checkpoint, exit 143', async () => {
    const data = tmpDir('lt-int2-data-');
    await writeClassFolder(data, { a: 8, b: 8 });
    const out = path.join(tmpDir('lt-int2-'), 'run');
    let sent = 0;
    const r = await child([data, out, '6'], (line, send) => {
      if (sent === 0 && /^epoch 1\/6:/.test(line)) {
        sent = 2;
        send('SIGTERM');
        setTimeout(() => send('SIGTERM'), 50);
      }
    });
    expect(r.code, r.stderr).to.equal(143);
    expect(r.stderr).to.match(/SIGTERM: stopping at the next step/);
    const held = peekCheckpoint(latestCheckpoint(out)).trainer.epoch;
    expect(held).to.be.within(1, 2);
    expect(r.stderr).to.match(new RegExp(`holds ${held} finished epoch\\(s\\); continue with: layertune train --resume`));
  });

  // a kill between replaceFolderAtomic's two renames leaves `.last.old`; latestCheckpoint puts it back
  it('a kill between the two renames of a checkpoint write still resumes from it', () => {
    const run = tmpDir('lt-ck-rename-');
    const root = path.join(run, 'checkpoints');
    fs.mkdirSync(path.join(root, '.last.old'), { recursive: true });
    fs.writeFileSync(
      path.join(root, '.last.old', 'state.json'),
      JSON.stringify({
        format: 'layertune-checkpoint',
        version: 1,
        input: {},
        job: {},
        trainer: { epoch: 2, step: 8, rng: 1, guard: null, history: [], stoppedEarly: null },
        schedule: {},
        earlyStopping: null,
        best: null,
        weights: [],
        earlyStoppingBest: null,
        optimizer: { algorithm: 'sgd', step: 8, vars: {} },
      }),
    );
    expect(latestCheckpoint(run)).to.equal(path.join(root, 'last'));
  });

  it('kill -9 while a checkpoint is being written leaves the previous checkpoint intact and loadable', async () => {
    const dir = path.join(tmpDir('lt-ck-kill-'), 'last');
    // a child that writes a small checkpoint, then keeps overwriting it with 64 MB ones until it is killed
    const script = `
      const { saveCheckpoint } = require(${JSON.stringify(path.join(ROOT, 'src', 'train', 'checkpoint', 'store.ts'))});
      const mk = (v, n) => ({ job: { v }, input: { v }, trainer: { epoch: v, step: v, rng: v, guard: null, history: [], stoppedEarly: null },
        schedule: {}, earlyStopping: null, best: null, weights: [{ name: 'w', shape: [n], dtype: 'float32', values: new Float32Array(n).fill(v) }],
        optimizer: { algorithm: 'sgd', step: v, vars: {} } });
      (async () => {
        await saveCheckpoint(${JSON.stringify(dir)}, mk(1, 1000));
        console.log('first');
        for (let v = 2; ; v++) await saveCheckpoint(${JSON.stringify(dir)}, mk(v, 16 << 20));
      })();`;
    const c = spawn(process.execPath, ['-r', 'tsx/cjs', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 300));
    c.kill('SIGKILL');
    await new Promise((r) => c.once('exit', r));
    recoverFolder(dir); // what the next write does first; covers a kill between its two renames
    const ck = loadCheckpoint(dir);
    const v = ck.trainer.epoch;
    expect(ck.weights[0].values.length).to.equal(v === 1 ? 1000 : 16 << 20);
    expect(Array.from(ck.weights[0].values.subarray(0, 3))).to.deep.equal([v, v, v]);
    expect(ck.weights[0].values[ck.weights[0].values.length - 1]).to.equal(v);
  });
});
