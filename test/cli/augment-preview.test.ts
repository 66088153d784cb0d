import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import { noisePng, tmpDir } from '../helpers/images';
import { layertune, userLines } from './run';

/** RandomResizedCrop and colour jitter: every view of an image differs from the others in crop and colour. */
const AUG = { randomResizedCrop: { scale: [0.35, 1] }, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } };
/** conv1 and blocks 1-5 frozen, so the prefix up to them is cached (and with AUG, cached as K views). */
const FROZEN = { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_[1-5])(_bn)?$', freeze: true }] };

describe('layertune augment-preview', function () {
  this.timeout(300000);
  let data: string;
  let dir: string;
  before(async () => {
    dir = tmpDir('lt-preview-');
    data = path.join(dir, 'data');
    for (const c of ['a', 'b']) {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      for (let i = 0; i < 3; i++) await noisePng(path.join(data, c, `${i}.png`), 48, 40, 10 * i + c.charCodeAt(0));
    }
  });

  const jobFile = (name: string, job: Record<string, unknown>) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, YAML.stringify({ model: { size: 32 }, data: { dir: data }, train: { batch: 4, seed: 3 }, ...job }));
    return f;
  };
  const preview = (config: string, png: string, extra: string[] = []) =>
    layertune(['augment-preview', '--config', config, '--backend', 'cpu', '--png', png, ...extra]);
  const raw = async (png: string) => (await sharp(png).raw().toBuffer({ resolveWithObject: true })).data;

  it('with cached views, --view k shows view k of the first batch’s images: a 2×2 grid of 32 px images with 2 px gaps, each view its own', async () => {
    const f = jobFile('views.yaml', { data: { dir: data, augment: { ...AUG, cachedViews: 2 } }, groups: FROZEN });
    const files = ['default', '0', '1'].map((v) => path.join(dir, `view-${v}.png`));
    const runs = [preview(f, files[0]), preview(f, files[1], ['--view', '0']), preview(f, files[2], ['--view', '1'])];
    runs.forEach((r) => expect(r.code, r.stderr).to.equal(0));
    expect(runs[1].stdout).to.contain('4 images of 32px, view 0 of 2 (epoch e trains on view e mod 2)');
    expect(runs[2].stdout).to.contain('view 1 of 2');
    // the same four images (their classes in the same order) in both views
    const classes = runs.map((r) => /\(([ab, ]+)\)\s*$/.exec(r.stdout)?.[1]);
    expect(classes[1]).to.match(/^[ab](, [ab]){3}$/);
    expect(classes[2]).to.equal(classes[1]);
    // cols = ⌈√4⌉ = 2: 2·32 + 3·2 = 70 pixels each way
    const meta = await sharp(files[2]).metadata();
    expect([meta.width, meta.height]).to.deep.equal([70, 70]);
    const [d, v0, v1] = await Promise.all(files.map(raw));
    expect(d.equals(v0)).to.equal(true);
    expect(v0.equals(v1)).to.equal(false);
  });

  it('refuses a view out of range, or a view where nothing is cached, in one line naming --view, writing nothing', () => {
    const withViews = jobFile('views2.yaml', { data: { dir: data, augment: { ...AUG, cachedViews: 2 } }, groups: FROZEN });
    const noPrefix = jobFile('nofreeze.yaml', { data: { dir: data, augment: AUG } });
    const cases: Array<[string, string[], RegExp]> = [
      [withViews, ['--view', '2'], /^error: --view: expected an integer from 0 to 1, got 2$/],
      [noPrefix, ['--view', '0'], /^error: --view: this job has no cached views: /],
    ];
    for (const [f, extra, want] of cases) {
      const png = path.join(dir, `refused-${path.basename(f)}.png`);
      const r = preview(f, png, extra);
      expect(r.code, r.stderr).to.equal(2);
      const errors = userLines(r.stderr).filter((l) => l.startsWith('error'));
      expect(errors).to.have.length(1);
      expect(errors[0]).to.match(want);
      expect(fs.existsSync(png)).to.equal(false);
    }
  });
});
