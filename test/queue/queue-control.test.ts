import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { searchKeys } from '../../src/queue/connection';
import { median, medianStop } from '../../src/tune/median-stop';
import type { TrialRecord } from '../../src/tune/search';
import { layertune, userLines } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { type RedisServer, requireRedis, startRedis } from '../helpers/redis';
import { type Proc, cli } from './procs';

const records = (out: string): TrialRecord[] =>
  fs
    .readdirSync(path.join(out, 'trials'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(out, 'trials', f), 'utf8')) as TrialRecord);

describe('queue control: --detach, --status, --cancel, SIGTERM drain, median stopping across workers (real redis-server)', function () {
  this.timeout(400000);
  let redis: RedisServer;
  let data: string;
  const procs: Proc[] = [];
  const worker = (extra: string[] = []) => {
    const p = cli(['worker', '--queue', redis.url, '--lock-ms', '2000', ...extra]);
    procs.push(p);
    return p;
  };
  const searchArgs = (out: string, search: Record<string, unknown>, job: string[]) => {
    const cfg = `${out}-search.json`;
    fs.writeFileSync(cfg, JSON.stringify(search));
    // flips only: the curves these tests reason about (which rates learn at 64 px in 3 epochs) were read without the
    // random crops the default rule adds below 20 images per class
    const jobFile = `${out}-job.json`;
    fs.writeFileSync(jobFile, JSON.stringify({ data: { augment: { auto: false } } }));
    return ['search', '--data', data, '--batch', '4', '--out', out, '--search-config', cfg, '--config', jobFile, ...job];
  };

  before(async function () {
    requireRedis(this);
    data = path.join(tmpDir(), 'data');
    await writeClassFolder(data, { a: 4, b: 4 });
    redis = await startRedis();
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill9();
  });
  after(async () => {
    await redis?.stop();
  });

  it('--step-ms sizes the lock (30 steps, floor --lock-ms) and the stall check; a bad value is one line, exit 2', async () => {
    const w = cli(['worker', '--queue', redis.url, '--lock-ms', '2000', '--step-ms', '2500']);
    procs.push(w);
    // 30 × 2500 ms = 75 s, above the 2 s floor; the stall check at half of it
    await w.waitFor(/^worker on .*lock 75000 ms, stall check every 37500 ms\)/);
    w.term();
    expect(await w.exited).to.equal(0);
    const bad = layertune(['worker', '--queue', redis.url, '--step-ms', '0'], 60000);
    expect(bad.code).to.equal(2);
    expect(userLines(bad.stderr)).to.deep.equal(['error: --step-ms: must be a positive number of ms, got 0']);
  });

  it('--detach returns once queued; --status and --cancel from other processes; the rerun after cancel resumes', async () => {
    const out = path.join(tmpDir(), 's');
    // each trial runs ~10 s on a loaded 2-core machine: long enough to be "running" while the other commands start
    const args = searchArgs(out, { trials: 3, seed: 5, metric: 'val_loss', medianStop: false }, ['--size', '64', '--epochs', '40']);
    const q = ['--queue', redis.url];

    // no worker is running: a command that waited for the search could not return
    const detached = layertune([...args, ...q, '--detach'], 60000);
    expect(detached.code, detached.stderr).to.equal(0);
    const id = /queued search (search-[0-9a-f]{16}) on .*: 3 trial\(s\) to run, 0 reused/.exec(detached.stdout)?.[1];
    expect(id, detached.stdout).to.be.a('string');
    expect(detached.stdout)
      .to.match(/--status/)
      .and.to.match(/--cancel/);

    const status0 = layertune([...args, ...q, '--status'], 60000);
    expect(status0.code, status0.stderr).to.equal(0);
    expect(status0.stdout.trim()).to.equal(`search ${id}: waiting-children; 0/3 trials: 0 done, 0 running, 0 pruned, 0 diverged, 0 failed, 3 waiting`);

    // a second submitter, on "another machine", follows the queued search instead of queueing it again
    const follower = cli([...args, ...q]);
    procs.push(follower);
    await follower.waitFor(new RegExp(`search ${id} is already queued \\(waiting-children\\): attaching`));
    const w = worker();
    await w.waitFor(/^trial 1\/3: started/);
    const status1 = layertune([...args, ...q, '--status'], 60000);
    expect(status1.stdout.trim()).to.equal(`search ${id}: waiting-children; 0/3 trials: 0 done, 1 running, 0 pruned, 0 diverged, 0 failed, 2 waiting`);

    const cancelled = layertune([...args, ...q, '--cancel'], 60000);
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.match(
      new RegExp(`search ${id}: cancelled: 2 waiting trial\\(s\\) removed; 1 running trial\\(s\\) \\(1\\) finish on their workers .*BullMQ cannot stop`),
    );
    // the follower is told, in one line, and exits 2
    expect(await follower.exited).to.equal(2);
    expect(userLines(follower.err.join('\n'))).to.deep.equal([
      `error: search ${id} was cancelled (--cancel); finished records stay in ${out}; rerun the same command to resume`,
    ]);
    // the running trial finished and kept its record; the workers skipped the rest of the search
    await w.waitFor(/^trial 1\/3 .*: done/);
    await w.waitFor(/^summary: skipped \(search .* was cancelled\)/);
    expect(w.out.filter((l) => /^trial [23]\/3: started/.test(l))).to.deep.equal([]);
    expect(records(out).map((r) => r.id)).to.deep.equal([0]);
    const status2 = layertune([...args, ...q, '--status'], 60000);
    expect(status2.stdout.trim()).to.equal(
      `search ${id}: cancelled (flow failed); 1/3 trials: 1 done, 0 running, 0 pruned, 0 diverged, 0 failed, 0 waiting, 2 not queued`,
    );
    console.log(`      ${detached.stdout.trim().split('\n').join('\n      ')}`);
    for (const r of [status0, status1, cancelled, status2]) console.log(`      ${r.stdout.trim()}`);

    const rerun = layertune([...args, ...q], 300000);
    expect(rerun.code, rerun.stderr).to.equal(0);
    expect(rerun.stdout).to.match(/2 trial\(s\) to run, 1 reused/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).trials).to.have.length(3);
    await new Promise((r) => setTimeout(r, 500));
    // trial 1 ran once: the rerun reused its record
    expect(w.out.filter((l) => /^trial \d\/3: started/.test(l)).map((l) => l.slice(0, 9))).to.deep.equal(['trial 1/3', 'trial 2/3', 'trial 3/3']);
    const status3 = layertune([...args, ...q, '--status'], 60000);
    expect(status3.stdout.trim()).to.equal(`search ${id}: completed; 3/3 trials: 3 done, 0 running, 0 pruned, 0 diverged, 0 failed, 0 waiting`);
  });

  it('a rerun while a cancelled trial is still running waits for it, then queues the rest and reuses its record', async () => {
    const out = path.join(tmpDir(), 's');
    // ~20 s per trial here: the rerun starts while trial 1 still runs
    const args = [...searchArgs(out, { trials: 2, seed: 5, metric: 'val_loss', medianStop: false }, ['--size', '64', '--epochs', '60']), '--queue', redis.url];
    const w = worker();
    await w.waitFor(/^worker on /);
    expect(layertune([...args, '--detach'], 60000).code).to.equal(0);
    await w.waitFor(/^trial 1\/2: started/);
    const cancelled = layertune([...args, '--cancel'], 60000);
    expect(cancelled.stdout).to.match(/cancelled: 1 waiting trial\(s\) removed; 1 running trial\(s\) \(1\)/);
    expect(
      w.out.some((l) => /^trial 1\/2 .*: done/.test(l)),
      'trial 1 ended before the rerun: the test cannot show the wait',
    ).to.equal(false);
    const rerun = cli(args);
    procs.push(rerun);
    await rerun.waitFor(/was cancelled; waiting for its running trial\(s\) to finish before queueing it again/);
    expect(await rerun.exited, rerun.err.join('\n')).to.equal(0);
    expect(rerun.out.join('\n')).to.match(/1 trial\(s\) to run, 1 reused/);
    expect(w.out.filter((l) => /^trial \d\/2: started/.test(l)).map((l) => l.slice(0, 9))).to.deep.equal(['trial 1/2', 'trial 2/2']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).trials.map((t: { id: number }) => t.id)).to.deep.equal([0, 1]);
  });

  it('SIGTERM mid-trial: the worker finishes the trial, takes no new one, exits 0; the trial is in the results once', async () => {
    const out = path.join(tmpDir(), 's');
    const args = [...searchArgs(out, { trials: 2, seed: 5, metric: 'val_loss', medianStop: false }, ['--size', '64', '--epochs', '10']), '--queue', redis.url];
    const a = worker();
    await a.waitFor(/^worker on /);
    const sub = cli(args);
    procs.push(sub);
    await a.waitFor(/^trial 1\/2: started/);
    a.term();
    expect(await a.exited, a.err.join('\n')).to.equal(0);
    const order = a.out.filter((l) => /^SIGTERM|^trial 1\/2/.test(l));
    expect(order[0]).to.match(/^trial 1\/2: started/);
    expect(order[1]).to.match(/^SIGTERM: finishing the running job/);
    expect(order[2]).to.match(/^trial 1\/2 .*: done/);
    expect(a.out.some((l) => /^trial 2\/2: started/.test(l))).to.equal(false);
    expect(records(out).map((r) => r.id)).to.deep.equal([0]);
    const b = worker();
    expect(await sub.exited, sub.err.join('\n')).to.equal(0);
    expect(b.out.some((l) => /^trial 1\/2: started/.test(l))).to.equal(false);
    const r = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(r.trials.map((t: { id: number }) => t.id)).to.deep.equal([0, 1]);
    console.log(`      worker A: ${order.join('\n                ')}\n                (exit 0)`);
  });

  it('median stopping across workers: a trial on worker B is cut against the curves worker A finished (read from Redis)', async () => {
    const out = path.join(tmpDir(), 's');
    // a linear grid of 5 learning rates, run in order; at 64 px and 3 epochs the two lowest learn, 0.05 does not.
    // minTrials 2 and no grace: A's two trials have at most one peer each (never cut); B's first trial, trial 3,
    // has exactly A's two curves as peers.
    const search = {
      trials: 5,
      method: 'grid',
      metric: 'val_loss',
      medianStop: true,
      medianMinTrials: 2,
      medianGraceEpochs: 0,
      space: { lr: { min: 1e-5, max: 0.1, scale: 'linear' }, weightDecay: null, oneMinusMomentum: null, factor: null },
    };
    const args = [...searchArgs(out, search, ['--size', '64', '--epochs', '3']), '--queue', redis.url];
    const a = worker();
    await a.waitFor(/^worker on /);
    const detached = layertune([...args, '--detach'], 60000);
    expect(detached.code, detached.stderr).to.equal(0);
    const id = /queued search (search-[0-9a-f]{16})/.exec(detached.stdout)![1];
    // A (concurrency 1) takes trials in queue order; stopped while on its second, it finishes that one and exits
    await a.waitFor(/^trial 2\/5: started/);
    a.term();
    expect(await a.exited, a.err.join('\n')).to.equal(0);
    const aRan = a.out.filter((l) => /^trial \d\/5: started/.test(l)).map((l) => l.slice(0, 9));
    expect(aRan, a.out.join('\n')).to.deep.equal(['trial 1/5', 'trial 2/5']);
    // what B will read: A's curves in the Redis hash
    const client = new IORedis(redis.url);
    const fromA = await client.hgetall(searchKeys(id).curves);
    client.disconnect();
    expect(Object.keys(fromA).sort()).to.deep.equal(['0', '1']);
    const b = worker();
    await b.waitFor(/^trial 5\/5 .*: (done|pruned)/);
    const recs = records(out);
    expect(recs.map((r) => r.id)).to.deep.equal([0, 1, 2, 3, 4]);
    const bFirst = b.out.find((l) => /^trial \d\/5: started/.test(l))!;
    expect(bFirst).to.match(/^trial 3\/5: started/);
    const t3 = recs[2];
    const peers = [JSON.parse(fromA['0']) as number[], JSON.parse(fromA['1']) as number[]];
    expect(peers).to.deep.equal([recs[0].curve, recs[1].curve]);
    // by hand: at epoch 1 the peers' best scores are their first scores; B's trial is below their median
    const m = median([peers[0][0], peers[1][0]]);
    expect(t3.curve[0]).to.be.below(m);
    expect(medianStop(t3.curve, peers, { minTrials: 2, graceEpochs: 0 })).to.deep.equal({ median: m, best: t3.curve[0] });
    expect(t3.status).to.equal('pruned');
    expect(t3.epochs).to.equal(1);
    expect(t3.message).to.equal(`median stopping: best ${t3.curve[0].toFixed(4)} < median ${m.toFixed(4)} at epoch 1`);
    expect(recs[0].status).to.equal('done');
    expect(recs[1].status).to.equal('done');
    console.log(`      A ran trials 1, 2 (done); B: ${b.out.find((l) => /^trial 3\/5 /.test(l))} — ${t3.message}`);
  });
});
