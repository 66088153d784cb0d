import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { readRunMetrics, reportCharts, thin, writeReport } from '../../src/report/report';
import { runJob } from '../../src/job';
import { DataError } from '../../src/errors';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob, withData } from '../tune/memory-source';

const step = (s: number, loss: number, lr = 0.01) => ({
  type: 'step',
  epoch: Math.floor(s / 4),
  step: s,
  loss,
  accuracy: 0.5,
  lrs: { a: lr, b: lr / 10 },
  updateRatios: { a: 1e-3, b: 0 },
});
const epoch = (e: number, val: number) => ({
  type: 'epoch',
  epoch: e,
  step: 4 * (e + 1),
  train: { loss: 1, accuracy: 0.5 },
  val: { loss: val, accuracy: 0.6 },
  seconds: 2,
  numTensors: 10,
  lrs: {},
});
const jsonl = (recs: unknown[]) => `${recs.map((r) => JSON.stringify(r)).join('\n')}\n`;

describe('training report', function () {
  this.timeout(120000);

  it('merges a resumed run: the interrupted part first, later records of a step replace earlier ones', () => {
    const dir = tmpDir();
    fs.writeFileSync(
      path.join(dir, 'metrics.until-step-6.jsonl'),
      jsonl([step(0, 2), step(1, 1.9), step(2, 1.8), step(3, 1.7), epoch(0, 1.5), step(4, 1.6), step(5, 1.5)]),
    );
    // resumed from the checkpoint after epoch 0: steps 4.. again, with other values
    fs.writeFileSync(
      path.join(dir, 'metrics.jsonl'),
      `${jsonl([step(4, 1.4), step(5, 1.3), step(6, 1.2), step(7, 1.1), epoch(1, 1.0), { type: 'end', epochs: 2 }])}{"type":"st`,
    );
    const m = readRunMetrics(dir);
    expect(m.steps.map((s) => s.step)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(m.steps.map((s) => s.loss)).to.deep.equal([2, 1.9, 1.8, 1.7, 1.4, 1.3, 1.2, 1.1]);
    expect(m.epochs.map((e) => e.val!.loss)).to.deep.equal([1.5, 1.0]);
    expect(m.end).to.deep.equal({ type: 'end', epochs: 2 });
  });

  it('damaged metrics or a missing folder are DataErrors naming the file', () => {
    expect(() => readRunMetrics('/nonexistent/run')).to.throw(DataError, /no such run folder/);
    const dir = tmpDir();
    expect(() => readRunMetrics(dir)).to.throw(DataError, /no metrics\.jsonl/);
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `oops\n${jsonl([step(0, 1), step(1, 1), step(2, 1)])}`);
    expect(() => readRunMetrics(dir)).to.throw(DataError, /metrics\.jsonl: line 1 is not JSON/);
  });

  it('charts: confusion counts and class names written in, groups on one rate flagged, zero ratios left off the log axis', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), jsonl([step(0, 2), step(1, 1.5), step(2, 1.2), step(3, 1), epoch(0, 1.1)]));
    fs.writeFileSync(
      path.join(dir, 'summary.json'),
      JSON.stringify({
        val: {
          loss: 1.1,
          accuracy: 0.6,
          confusion: [
            [7, 3],
            [1, 9],
          ],
        },
        export: path.join(dir, 'model'),
      }),
    );
    fs.mkdirSync(path.join(dir, 'model'));
    fs.writeFileSync(path.join(dir, 'model', 'metadata.json'), JSON.stringify({ labels: ['cat', 'dog'] }));
    const c = reportCharts(readRunMetrics(dir));
    expect(Object.keys(c).sort()).to.deep.equal(['accuracy', 'confusion', 'loss', 'lr', 'ratio']);
    for (const [v, label] of [
      [7, 'cat'],
      [3, 'dog'],
      [1, 'cat'],
      [9, 'dog'],
    ] as const)
      expect(c.confusion).to.contain(`>${v}</text>`).and.contain(`>${label}</text>`);
    expect(c.lr).to.contain('>a</text>').and.contain('>b</text>');
    // group b has ratio 0 everywhere: its legend entry exists, but no path for it
    expect(c.ratio).to.contain('>b</text>');
    expect((c.ratio.match(/<path /g) ?? []).length).to.equal(3); // a, and the two band lines
    expect(
      thin(
        Array.from({ length: 10 }, (_, i) => i),
        4,
      ),
    ).to.deep.equal([0, 3, 6, 9]);
  });

  it('a real run (2 epochs, in-memory data): report.html and five PNGs that open', async () => {
    const out = tmpDir();
    await runJob(tinyJob(out, { train: { epochs: 2 } }), withData(new MemorySource({ classes: 3, perClass: 4, valPerClass: 2 })));
    const r = await writeReport(out);
    expect(Object.keys(r.charts).sort()).to.deep.equal(['accuracy', 'confusion', 'loss', 'lr', 'ratio']);
    for (const f of Object.values(r.charts)) {
      const meta = await sharp(f).metadata();
      expect(meta.format).to.equal('png');
      expect(meta.width).to.be.greaterThan(300);
    }
    const html = fs.readFileSync(r.html, 'utf8');
    for (const f of Object.values(r.charts)) expect(html).to.contain(`src="${path.basename(f)}"`);
    expect(html).to.match(/validation loss \/ accuracy<\/th><td>\d\.\d{4} \/ \d\.\d{4}/);
    expect(html).to.contain('c0, c1, c2');
  });
});
