import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, layertune, userLines } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { type RedisServer, requireRedis, startRedis } from '../helpers/redis';
import { type Proc, cli } from './procs';

/** Every file under `dir` (relative path → contents as hex), to compare two states of a search folder byte for byte. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else files[path.relative(dir, f)] = fs.readFileSync(f).toString('hex');
    }
  };
  walk(dir);
  return files;
}

describe('queue mode (BullMQ on a real redis-server)', function () {
  this.timeout(400000);
  let redis: RedisServer;
  let data: string;
  const procs: Proc[] = [];
  const worker = (url: string, extra: string[] = []) => {
    const p = cli(['worker', '--queue', url, '--lock-ms', '2000', ...extra]);
    procs.push(p);
    return p;
  };
  const searchArgs = (out: string, trials: number) => {
    const cfg = path.join(out, '..', `${path.basename(out)}-search.json`);
    fs.mkdirSync(path.dirname(cfg), { recursive: true });
    // val_loss separates trials that tie on accuracy over a handful of images
    fs.writeFileSync(cfg, JSON.stringify({ trials, seed: 5, metric: 'val_loss', medianStop: false }));
    return ['search', '--data', data, '--size', '32', '--epochs', '1', '--batch', '4', '--out', out, '--search-config', cfg];
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

  it('without --queue, bullmq and ioredis are never loaded', () => {
    const out = tmpDir();
    const script = `const m=require(${JSON.stringify(path.join(ROOT, 'dist/cli/main.js'))});
      m.main(['node','layertune',...${JSON.stringify(searchArgs(path.join(out, 's'), 1))}]).then((code)=>{
        const loaded=Object.keys(require.cache).filter((k)=>/node_modules[\\\\/](bullmq|ioredis)[\\\\/]/.test(k));
        console.log('CODE '+code+' LOADED '+loaded.length);});`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
    expect(r.stdout, r.stderr).to.match(/CODE 0 LOADED 0/);
    expect(fs.existsSync(path.join(out, 's', 'results.csv'))).to.equal(true);
  });

  it('a bad URL, Redis not running, or a wrong password: one line naming the URL, exit 2', async () => {
    const secured = await startRedis(['--requirepass', 'right']);
    try {
      const cases: Array<[string, RegExp]> = [
        ['http://127.0.0.1:1/0', /--queue http:\/\/127\.0\.0\.1:1\/0: the scheme must be redis/],
        ['redis://127.0.0.1:1/0', /--queue redis:\/\/127\.0\.0\.1:1\/0: nothing is listening/],
        [
          `redis://:wrong@127.0.0.1:${secured.port}/0`,
          new RegExp(`--queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${secured.port}/0: Redis refused the credentials`),
        ],
        // no password at all, to a server that wants one
        [secured.url, new RegExp(`--queue redis://127\\.0\\.0\\.1:${secured.port}/0: Redis refused the credentials`)],
      ];
      for (const [url, re] of cases) {
        for (const args of [
          ['worker', '--queue', url],
          [...searchArgs(path.join(tmpDir(), 's'), 1), '--queue', url],
        ]) {
          const r = layertune(args, 60000);
          expect(r.code, `${args.join(' ')}\n${r.stderr}`).to.equal(2);
          const lines = userLines(r.stderr);
          expect(lines, r.stderr).to.have.length(1);
          expect(lines[0], r.stderr).to.match(re);
        }
      }
    } finally {
      await secured.stop();
    }
  });

  it('3 workers give the in-process ranking; a rerun reuses every trial', async () => {
    const root = tmpDir();
    const t0 = Date.now();
    const local = layertune(searchArgs(path.join(root, 'local'), 6), 300000);
    const localS = (Date.now() - t0) / 1000;
    expect(local.code, local.stderr).to.equal(0);
    const ws = [worker(redis.url), worker(redis.url), worker(redis.url)];
    await Promise.all(ws.map((w) => w.waitFor(/^worker on /)));
    const t1 = Date.now();
    const queued = layertune([...searchArgs(path.join(root, 'queued'), 6), '--queue', redis.url], 300000);
    const queuedS = (Date.now() - t1) / 1000;
    expect(queued.code, queued.stderr + queued.stdout).to.equal(0);
    const rank = (dir: string) => JSON.parse(fs.readFileSync(path.join(root, dir, 'results.json'), 'utf8')).ranking as number[];
    console.log(`      in-process ${localS.toFixed(1)} s, 3 queue workers ${queuedS.toFixed(1)} s; ranking ${rank('local').join(',')}`);
    expect(rank('queued')).to.have.length(6);
    expect(rank('queued')).to.deep.equal(rank('local'));
    // the trials ran on more than one worker (spawnSync held this event loop: let the workers' output arrive)
    await new Promise((r) => setTimeout(r, 1000));
    const busy = ws.filter((w) => w.out.some((l) => /: done,/.test(l))).length;
    expect(busy, queued.stdout + ws.map((w) => w.out.join('\n') + w.err.join('\n')).join('\n---\n')).to.be.greaterThan(1);
    const before = snapshot(path.join(root, 'queued'));
    const again = layertune([...searchArgs(path.join(root, 'queued'), 6), '--queue', redis.url], 120000);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/0 trial\(s\) to run, 6 reused/);
    expect(again.stdout).to.match(/6 reused from an earlier run/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(ws.flatMap((w) => w.out).filter((l) => /: started/.test(l))).to.have.length(6);
    // the rerun's summary rewrote every file from the same records: byte for byte what the first run wrote
    const after = snapshot(path.join(root, 'queued'));
    expect(Object.keys(after)).to.include.members(['results.json', 'results.csv', 'best.yaml', 'trials/trial-0000.json']);
    expect(after).to.deep.equal(before);
  });

  it('kill -9 of a worker mid-trial: another worker runs it again and it is in the results once', async () => {
    const out = path.join(tmpDir(), 's');
    const victim = worker(redis.url);
    await victim.waitFor(/^worker on /);
    const sub = cli([...searchArgs(out, 2), '--queue', redis.url]);
    procs.push(sub);
    const started = await victim.waitFor(/^trial 1\/2: started/);
    victim.kill9();
    await victim.exited;
    const rescuer = worker(redis.url);
    // the takeover is BullMQ's stall recovery: still attempt 1, with the stall counted
    await rescuer.waitFor(/^trial 1\/2: started .*attempt 1, taken over after 1 stall\(s\) of its worker/);
    expect(await sub.exited, sub.err.join('\n')).to.equal(0);
    console.log(`      killed: ${started}\n      then:   ${rescuer.out.filter((l) => /trial 1\/2|stalled/.test(l)).join('\n              ')}`);
    const r = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(r.trials.map((t: { id: number }) => t.id)).to.deep.equal([0, 1]);
    expect(fs.readdirSync(path.join(out, 'trials'))).to.have.length(2);
  });

  it('Redis stopped mid-search: one line each, non-zero exits, finished records kept; the rerun continues', async () => {
    const out = path.join(tmpDir(), 's');
    const w = worker(redis.url);
    await w.waitFor(/^worker on /);
    const sub = cli([...searchArgs(out, 3), '--queue', redis.url]);
    procs.push(sub);
    await w.waitFor(/^trial 1\/3 .*: done/);
    await redis.stop();
    const [wCode, sCode] = await Promise.all([w.exited, sub.exited]);
    const wLines = userLines(w.err.join('\n'));
    const sLines = userLines(sub.err.join('\n'));
    console.log(`      worker (exit ${wCode}): ${wLines.join(' | ')}\n      search (exit ${sCode}): ${sLines.join(' | ')}`);
    expect(wCode).to.not.equal(0);
    expect(sCode).to.not.equal(0);
    expect(wLines).to.have.length(1);
    expect(sLines).to.have.length(1);
    expect(wLines[0]).to.match(/lost the queue at redis:\/\/127\.0\.0\.1/);
    expect(sLines[0]).to.match(/lost the queue at redis:\/\/127\.0\.0\.1/);
    const kept = fs.readdirSync(path.join(out, 'trials'));
    expect(kept.length).to.be.greaterThan(0);
    await redis.restart();
    worker(redis.url);
    const again = layertune([...searchArgs(out, 3), '--queue', redis.url], 300000);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(new RegExp(`${3 - kept.length} trial\\(s\\) to run, ${kept.length} reused`));
    expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).trials).to.have.length(3);
  });

  it('a worker killed during a submitted job: the next worker resumes from its checkpoint; the export is byte-identical', async () => {
    const root = tmpDir();
    const job = (out: string) => ({ data: { dir: data }, out, backend: 'wasm', model: { size: 32 }, train: { batch: 4, epochs: 6, seed: 9 } });
    const file = path.join(root, 'job.json');
    fs.writeFileSync(file, JSON.stringify(job(path.join(root, 'queued'))));
    const plain = path.join(root, 'plain.json');
    fs.writeFileSync(plain, JSON.stringify(job(path.join(root, 'plain'))));
    const full = layertune(['train', '--config', plain], 300000);
    expect(full.code, full.stderr).to.equal(0);
    const victim = worker(redis.url);
    await victim.waitFor(/^worker on /);
    const sub = cli(['submit', file, '--queue', redis.url]);
    procs.push(sub);
    await victim.waitFor(/^epoch 2\/6:/);
    victim.kill9();
    await victim.exited;
    const rescuer = worker(redis.url);
    expect(await sub.exited, sub.err.join('\n')).to.equal(0);
    await new Promise((r) => setTimeout(r, 500));
    console.log(`      killed after: ${victim.out.filter((l) => /^epoch \d\/6:/.test(l)).pop()}\n      then: ${rescuer.out.find((l) => /resuming/.test(l))}`);
    expect(
      rescuer.out.some((l) => /\] started \(attempt 1, taken over after 1 stall\(s\) of its worker\)/.test(l)),
      rescuer.out.join('\n'),
    ).to.equal(true);
    expect(rescuer.out.some((l) => /resuming .*checkpoints/.test(l))).to.equal(true);
    expect(rescuer.out.some((l) => /^epoch 1\/6:/.test(l))).to.equal(false);
    expect(rescuer.out.some((l) => /^epoch 6\/6:/.test(l))).to.equal(true);
    expect(sub.out.join('\n')).to.match(/exported to .*queued.*resumed from/);
    const a = fs.readFileSync(path.join(root, 'plain', 'model', 'weights.bin'));
    const b = fs.readFileSync(path.join(root, 'queued', 'model', 'weights.bin'));
    expect(b.equals(a)).to.equal(true);
  });
});
