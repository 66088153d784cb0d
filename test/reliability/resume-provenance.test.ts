import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { ConfigError } from '../../src/errors';
import { scanFolder } from '../../src/data/scan';
import { planResume } from '../../src/train/checkpoint/resume';
import { checkProvenance, compareProvenance, dataManifest, describeClassChange, type RunProvenance } from '../../src/train/checkpoint/provenance';
import { tmpDir, writeClassFolder } from '../helpers/images';

const quiet = { log: () => undefined };

/** Every file under `dir` with its bytes, to show a refused resume changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const full = path.join(dir, f);
    if (fs.statSync(full).isFile()) out[f] = fs.readFileSync(full).toString('base64');
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('checkpoints record what the run was trained on; --resume checks it', function () {
  this.timeout(300000);
  let data: string;
  let run: string;
  const job = (out: string, dataDir: string): JobInput =>
    ({ data: { dir: dataDir, valFraction: 0.25 }, model: { size: 32 }, train: { epochs: 1, batch: 4, seed: 3 }, backend: 'wasm', out }) as JobInput;

  before(async () => {
    data = tmpDir('lt-prov-data-');
    await writeClassFolder(data, { apple: 4, banana: 4, cherry: 4 });
    run = tmpDir('lt-prov-run-');
    await runJob(job(run, data), { ...quiet, report: false });
  });

  /** A fresh copy of the trained run and its data, so each case changes its own. */
  function copies(): { d: string; r: string } {
    const d = tmpDir('lt-prov-d-');
    const r = tmpDir('lt-prov-r-');
    fs.cpSync(data, d, { recursive: true });
    fs.cpSync(run, r, { recursive: true });
    // the copied checkpoint names the original data folder: point the copy at its own data
    return { d, r: retarget(r, d) };
  }

  /** Points every checkpoint of run `r` at data folder `d` (dropping the checksum list the edit invalidates). */
  function retarget(r: string, d: string): string {
    for (const name of fs.readdirSync(path.join(r, 'checkpoints'))) {
      const f = path.join(r, 'checkpoints', name, 'state.json');
      if (!fs.existsSync(f)) continue;
      const s = JSON.parse(fs.readFileSync(f, 'utf8'));
      s.input.data.dir = d;
      s.provenance.data.dir = d;
      fs.writeFileSync(f, JSON.stringify(s));
      fs.rmSync(path.join(r, 'checkpoints', name, 'checksums.sha256'), { force: true });
    }
    return r;
  }

  it('state.json records the class list in label order, the data manifest, the absolute data path, the model and the version', () => {
    const s = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'last', 'state.json'), 'utf8'));
    const p = s.provenance as RunProvenance;
    expect(p.classes).to.deep.equal(['apple', 'banana', 'cherry']);
    expect(p.data.dir).to.equal(path.resolve(data));
    expect(p.data.files).to.equal(12);
    expect(Object.fromEntries(Object.entries(p.data.perClass).map(([k, v]) => [k, v.files]))).to.deep.equal({ apple: 4, banana: 4, cherry: 4 });
    const bytes = fs.readdirSync(path.join(data, 'banana')).reduce((a, f) => a + fs.statSync(path.join(data, 'banana', f)).size, 0);
    expect(p.data.perClass.banana.bytes).to.equal(bytes);
    expect(p.model.source).to.be.a('string').and.not.equal('');
    expect(p.model.count).to.be.greaterThan(10);
    expect(p.layertuneVersion).to.equal(JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
  });

  it('the original bug: a class folder renamed between runs would shift labels; resume is refused and nothing is written', async () => {
    const { d, r } = copies();
    // banana → zucchini sorts after cherry: cherry's images would be trained as label 1, banana's old label
    fs.renameSync(path.join(d, 'banana'), path.join(d, 'zucchini'));
    const after = scanFolder(d);
    expect(after.classes).to.deep.equal(['apple', 'cherry', 'zucchini']);
    expect(after.all!.find((f) => f.file.includes(`${path.sep}cherry${path.sep}`))!.label).to.equal(1); // was 2
    const before = snapshot(r);
    const e = await rejection(runJob({}, { ...quiet, resume: r, report: false }));
    expect(e).to.be.instanceOf(ConfigError);
    expect(e.message.split('\n')).to.have.length(1);
    expect(e.message).to.match(
      /^resume: the data's classes differ from the checkpoint's: class "banana" is now "zucchini" \(renamed\?\); which moves the labels of "cherry"; labels would shift/,
    );
    expect(snapshot(r)).to.deep.equal(before);
  });

  it('an added or a removed class is refused, naming it; --force does not get past it', async () => {
    const added = copies();
    await writeClassFolder(added.d, { date: 3 });
    const e1 = await rejection(runJob({}, { ...quiet, resume: added.r, force: true, report: false }));
    expect(e1.message).to.match(/^resume: the data's classes differ from the checkpoint's: added "date"; labels would shift/);
    const removed = copies();
    fs.rmSync(path.join(removed.d, 'apple'), { recursive: true });
    const e2 = await rejection(runJob({}, { ...quiet, resume: removed.r, report: false }));
    expect(e2.message).to.match(/^resume: the data's classes differ from the checkpoint's: removed "apple"; labels would shift/);
  });

  it('another model is refused even with --force (which only gets past the config change)', async () => {
    const { r } = copies();
    const before = snapshot(r);
    const e = await rejection(runJob({ model: { source: 'arch:resnet18' } }, { ...quiet, resume: r, force: true, report: false }));
    expect(e.message).to.match(/^resume: the model differs from the checkpoint's \(.+ at size 32, \d+ weights; now arch:resnet18 at size 32, \d+ weights\)/);
    expect(snapshot(r)).to.deep.equal(before);
  });

  it('a deleted image (same classes) is refused unless --force, which resumes with a warning', async () => {
    const { d, r } = copies();
    fs.rmSync(path.join(d, 'cherry', 'img_3.png'));
    const before = snapshot(r);
    const e = await rejection(runJob({}, { ...quiet, resume: r, report: false }));
    expect(e.message).to.equal(
      `resume: the training files differ from the checkpoint's ("cherry": 4 → 3 files) in ${d}; pass --force to resume on the changed files anyway`,
    );
    expect(snapshot(r)).to.deep.equal(before);
    const lines: string[] = [];
    await runJob({}, { log: (l) => lines.push(l), resume: r, force: true, report: false });
    expect(lines).to.include('warning: resuming on changed training files (--force): "cherry": 4 → 3 files');
  });

  it('the unchanged data resumes without a word about provenance', async () => {
    const { r } = copies();
    const lines: string[] = [];
    await runJob({}, { log: (l) => lines.push(l), resume: r, report: false });
    expect(lines.filter((l) => /provenance|differ|manifest/.test(l))).to.deep.equal([]);
  });

  it('a resume from another working directory reads the recorded absolute data folder, not a same-named one there', () => {
    const { d, r } = copies();
    const st = path.join(r, 'checkpoints', 'last', 'state.json');
    const s = JSON.parse(fs.readFileSync(st, 'utf8'));
    s.input.data.dir = path.basename(d); // as if the run was started with a relative --data
    fs.writeFileSync(st, JSON.stringify(s));
    const elsewhere = tmpDir('lt-prov-cwd-');
    fs.mkdirSync(path.join(elsewhere, path.basename(d))); // the decoy
    const cwd = process.cwd();
    process.chdir(elsewhere);
    try {
      expect(planResume(r, {}, undefined, false).job.data.dir).to.equal(d);
      // --data naming the same folder relatively is no change; naming the decoy is
      process.chdir(path.dirname(d));
      expect(planResume(r, { data: { dir: path.basename(d) } }, undefined, false).changes).to.deep.equal([]);
      process.chdir(elsewhere);
      expect(() => planResume(r, { data: { dir: path.basename(d) } }, undefined, false)).to.throw(ConfigError, /data\.dir/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('leaks no tensors across a refused resume', async () => {
    const { d, r } = copies();
    fs.renameSync(path.join(d, 'apple'), path.join(d, 'avocado'));
    await rejection(runJob({}, { ...quiet, resume: r, report: false })); // warm-up: backend and model caches
    const n = tf.memory().numTensors;
    await rejection(runJob({}, { ...quiet, resume: r, report: false }));
    expect(tf.memory().numTensors).to.equal(n);
  });
});

describe('provenance comparison (pure)', () => {
  const prov = (classes: string[], weights = 'w1', files = 'f1'): RunProvenance => ({
    classes,
    data: { dir: '/d', files: 2, bytes: 2, digest: files, perClass: Object.fromEntries(classes.map((c) => [c, { files: 1, bytes: 1, digest: files }])) },
    model: { source: 'm', size: 32, weights, count: 3 },
    layertuneVersion: '1.0.0',
  });

  it('names reordered classes, a renamed class that moves others, and additions/removals', () => {
    expect(describeClassChange(['a', 'b'], ['a', 'b'])).to.equal(null);
    expect(describeClassChange(['a', 'b'], ['b', 'a'])).to.equal('same classes in another label order ("a", "b" → "b", "a")');
    expect(describeClassChange(['a', 'b', 'c'], ['a', 'c', 'd'])).to.equal('class "b" is now "d" (renamed?); which moves the labels of "c"');
    expect(describeClassChange(['a', 'b', 'c'], ['a', 'b', 'z'])).to.equal('class "c" is now "z" (renamed?)');
    expect(describeClassChange(['a', 'b'], ['a', 'b', 'c', 'd'])).to.equal('added "c", "d"');
    expect(describeClassChange(['a', 'b', 'c'], ['a'])).to.equal('removed "b", "c"');
  });

  it('another model is refused; a changed file set is reported separately (refused unless --force); a version change only warns', () => {
    const a = prov(['x', 'y']);
    expect(compareProvenance(a, a)).to.deep.equal({ refuse: [], filesChanged: null, warnings: [] });
    expect(compareProvenance(a, prov(['x', 'y'], 'w2')).refuse[0]).to.match(/^the model differs from the checkpoint's/);
    expect(compareProvenance(a, prov(['x', 'y'], 'w1', 'f2')).filesChanged).to.equal(
      '"x": 1 files, names or sizes differ (1 → 1 bytes); "y": 1 files, names or sizes differ (1 → 1 bytes)',
    );
    expect(compareProvenance(a, { ...a, layertuneVersion: '1.1.0' }).warnings).to.deep.equal(['the checkpoint was written by layertune 1.0.0, this is 1.1.0']);
  });

  it('checkProvenance: an old checkpoint without the record warns; a refusal is one ConfigError line; a version change warns', () => {
    const lines: string[] = [];
    checkProvenance(null, prov(['x']), false, (l) => lines.push(l));
    expect(lines).to.deep.equal(['warning: this checkpoint records no class list or data manifest (written by an older layertune); the data is not checked']);
    expect(() => checkProvenance(prov(['x', 'y']), prov(['y', 'x']), true, () => undefined)).to.throw(
      ConfigError,
      /^resume: the data's classes differ from the checkpoint's: same classes in another label order \("x", "y" → "y", "x"\); labels would shift — [^\n]*$/,
    );
    lines.length = 0;
    checkProvenance(prov(['x']), { ...prov(['x']), layertuneVersion: '2.0.0' }, false, (l) => lines.push(l));
    expect(lines).to.deep.equal(['warning: the checkpoint was written by layertune 1.0.0, this is 2.0.0']);
  });

  it('the manifest digest: order-free, relative to the data folder, sensitive to a size, a name and the split', () => {
    const e = [
      { split: 'train', label: 0, key: '/d/a/1.png', size: 10 },
      { split: 'val', label: 1, key: '/d/b/2.png', size: 20 },
    ];
    const m = dataManifest('/d', ['a', 'b'], e);
    expect(m).to.include({ dir: '/d', files: 2, bytes: 30 });
    expect(dataManifest('/d', ['a', 'b'], [...e].reverse()).digest).to.equal(m.digest);
    expect(
      dataManifest(
        '/moved',
        ['a', 'b'],
        e.map((x) => ({ ...x, key: x.key.replace('/d/', '/moved/') })),
      ).digest,
    ).to.equal(m.digest);
    const changed = [
      [{ ...e[0], size: 11 }, e[1]],
      [{ ...e[0], key: '/d/a/9.png' }, e[1]],
      [{ ...e[0], split: 'val' }, e[1]],
    ];
    for (const c of changed) expect(dataManifest('/d', ['a', 'b'], c).digest).to.not.equal(m.digest);
    expect(dataManifest('/d', ['a', 'b'], [e[0], { ...e[1], size: 21 }]).perClass.a.digest).to.equal(m.perClass.a.digest);
  });
});
