import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { lockSettings } from '../../src/queue/lock';
import { STEP_TIMES_KEPT, STEP_TIMES_KEY, recordStepTime } from '../../src/queue/step-time';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { type RedisServer, requireRedis, startRedis } from '../helpers/redis';
import { type Proc, cli } from './procs';

/** The median of numbers, computed here from scratch (the reference the worker's printed numbers are checked against). */
const medianOf = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

describe('the worker lock sized from measured step times (real redis-server)', function () {
  this.timeout(400000);
  let redis: RedisServer;
  let client: IORedis;
  let data: string;
  const procs: Proc[] = [];
  const start = (args: string[]) => {
    const p = cli(args);
    procs.push(p);
    return p;
  };

  before(async function () {
    requireRedis(this);
    data = path.join(tmpDir(), 'data');
    await writeClassFolder(data, { a: 8, b: 8 });
    redis = await startRedis();
    client = new IORedis(redis.url);
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill9();
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('jobs record their step times; a running worker raises its lock between jobs; a new worker starts from the median', async () => {
    expect(await client.llen(STEP_TIMES_KEY)).to.equal(0);
    // --lock-ms 1000: any step over 33.4 ms (30 steps > 1 s) calls for a longer lock than the floor; steps of 8 images
    // at 160 px took about 200 ms on a loaded 2-core machine, so a machine several times faster still raises it
    const w1 = start(['worker', '--queue', redis.url, '--lock-ms', '1000']);
    await w1.waitFor(/^worker on /);
    expect(w1.out[0]).to.equal('lock 1000 ms (floor; no step time measured yet)');
    expect(w1.out[1]).to.match(/^worker on .*lock 1000 ms, stall check every 1000 ms\)$/);

    const out = path.join(tmpDir(), 's');
    const cfg = `${out}-search.json`;
    fs.writeFileSync(cfg, JSON.stringify({ trials: 2, seed: 5, metric: 'val_loss', medianStop: false }));
    const search = start([
      'search',
      '--data',
      data,
      '--size',
      '160',
      '--epochs',
      '2',
      '--batch',
      '8',
      '--out',
      out,
      '--search-config',
      cfg,
      '--queue',
      redis.url,
    ]);
    // the second trial's claim in Redis: BullMQ's lock key expires after the lockDuration of the Worker that took it
    const second = await w1.waitFor(/^trial 2\/2: started \(job /);
    const secondId = /\(job (\S+),/.exec(second)![1];
    const ttl = await client.pttl(`bull:layertune:${secondId}:lock`);
    expect(await search.exited, search.err.join('\n')).to.equal(0);
    await new Promise((r) => setTimeout(r, 500));

    // one value per trial (the summary job trains nothing), newest first
    const values = (await client.lrange(STEP_TIMES_KEY, 0, -1)).map(Number);
    expect(values, w1.out.join('\n')).to.have.length(2);
    for (const v of values) expect(v).to.be.greaterThan(0);
    const firstMs = values[1];
    expect(firstMs, 'this test needs training steps over 33.4 ms to raise a 1 s lock').to.be.greaterThan(1000 / 30);

    // the first trial's step time raised w1's lock before the second trial was taken: it ran on the new Worker
    const raised = lockSettings(firstMs, 1000);
    const iRaised = w1.out.findIndex((l) => l.startsWith('lock raised'));
    expect(iRaised, w1.out.join('\n')).to.be.greaterThan(-1);
    expect(w1.out[iRaised]).to.match(
      new RegExp(
        `^lock raised to ${raised.lockDuration} ms \\(stall check every ${raised.stalledInterval} ms\\): job \\S+ measured a step time of ${firstMs} ms; the worker was re-created between jobs$`,
      ),
    );
    expect(w1.out[iRaised + 1]).to.match(new RegExp(`^worker on .*lock ${raised.lockDuration} ms, stall check every ${raised.stalledInterval} ms\\)$`));
    const started = w1.out.map((l, i) => [l, i] as const).filter(([l]) => /^trial \d\/2: started/.test(l));
    expect(started, w1.out.join('\n')).to.have.length(2);
    expect(started[0][1]).to.be.lessThan(iRaised);
    expect(started[1][1]).to.be.greaterThan(iRaised + 1);
    // renewed every half lock, so between half the raised lock and all of it: far over the old 1 s
    expect(ttl).to.be.greaterThan(raised.lockDuration / 2 - 500);
    expect(ttl).to.be.at.most(raised.lockDuration);

    // a worker started now sizes its lock from the median of what was recorded
    const m = medianOf(values);
    const want = lockSettings(m, 1000);
    const w2 = start(['worker', '--queue', redis.url, '--lock-ms', '1000']);
    await w2.waitFor(/^worker on /);
    expect(w2.out[0]).to.equal(`lock ${want.lockDuration} ms from a measured step time of ${Math.round(m * 10) / 10} ms (median of 2 finished jobs)`);
    expect(w2.out[1]).to.match(new RegExp(`^worker on .*lock ${want.lockDuration} ms, stall check every ${want.stalledInterval} ms\\)$`));
    w2.term();
    expect(await w2.exited).to.equal(0);

    // --step-ms overrides what was recorded
    const w3 = start(['worker', '--queue', redis.url, '--lock-ms', '1000', '--step-ms', '2500']);
    await w3.waitFor(/^worker on /);
    expect(w3.out[0]).to.equal('lock 75000 ms from --step-ms 2500');
    w3.term();
    expect(await w3.exited).to.equal(0);
    console.log(`      recorded step times ${values.join(', ')} ms; ${w1.out[iRaised]}; trial 2's lock TTL ${ttl} ms; then ${w2.out[0]}`);
  });

  it('the list keeps the newest 50 values', async () => {
    await client.del(STEP_TIMES_KEY);
    for (let i = 1; i <= 55; i++) await recordStepTime(client, i);
    expect(STEP_TIMES_KEPT).to.equal(50);
    const kept = (await client.lrange(STEP_TIMES_KEY, 0, -1)).map(Number);
    // newest first: 55 down to 6; 1..5 aged out
    expect(kept).to.deep.equal(Array.from({ length: 50 }, (_, i) => 55 - i));
  });

  it('a starting worker ignores recorded values that are not positive numbers', async () => {
    await client.del(STEP_TIMES_KEY);
    // 3 usable values (100, 300, 200: median 200) and 3 that must not shorten or break the lock
    await client.rpush(STEP_TIMES_KEY, '100', 'abc', '300', '-5', '200', '0');
    const w = start(['worker', '--queue', redis.url, '--lock-ms', '1000']);
    await w.waitFor(/^worker on /);
    // 30 × 200 ms = 6000 ms
    expect(w.out[0]).to.equal('lock 6000 ms from a measured step time of 200 ms (median of 3 finished jobs)');
    w.term();
    expect(await w.exited).to.equal(0);
  });
});
