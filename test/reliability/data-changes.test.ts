import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { DataError, UserError } from '../../src/errors';
import { checkEveryClassDecodes } from '../../src/data/class-probe';
import { DataChangedError, ImageFolderSource } from '../../src/data/image-folder';
import { scanFolder } from '../../src/data/scan';
import { dataManifest, fileSize } from '../../src/train/checkpoint/provenance';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { createContainer, type DataSourceFactory, TOKENS } from '../../src/container';

const quiet = { log: () => undefined };
const source = (root: string) => new ImageFolderSource({ root, valFraction: 0, seed: 1 });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('a class with no decodable image, and images that change after the scan', function () {
  this.timeout(120000);

  it('a class whose every file is corrupt is refused before training, naming the class folder and its files', async () => {
    const root = tmpDir('lt-probe-');
    await writeClassFolder(root, { good: 3, broken: 4 });
    for (const f of fs.readdirSync(path.join(root, 'broken'))) fs.writeFileSync(path.join(root, 'broken', f), 'not an image');
    const e = await rejection(checkEveryClassDecodes(source(root), 32));
    expect(e).to.be.instanceOf(DataError);
    const b = path.join(root, 'broken');
    expect(e.message).to.match(
      new RegExp(
        `^${b}: class "broken" has no decodable training image \\(${b}/img_0\\.png: not a readable image \\(.*\\); ${b}/img_1\\.png: .*; and 1 more\\); fix or remove its files, or remove the class$`,
      ),
    );
    const out = tmpDir('lt-probe-out-');
    const job = { data: { dir: root, valFraction: 0 }, model: { size: 32 }, train: { epochs: 1, batch: 4 }, backend: 'wasm', out } as JobInput;
    const r = await rejection(runJob(job, { ...quiet, report: false }));
    expect(r.message).to.equal(e.message);
    expect(fs.existsSync(path.join(out, 'model'))).to.equal(false);
    expect(fs.existsSync(path.join(out, 'checkpoints'))).to.equal(false);
  });

  it('a corrupt first file of a class is only skipped (recorded once) when another file of the class decodes', async () => {
    const root = tmpDir('lt-probe-ok-');
    await writeClassFolder(root, { a: 2, b: 2 });
    fs.writeFileSync(path.join(root, 'b', 'img_0.png'), 'junk');
    const s = source(root);
    await checkEveryClassDecodes(s, 32);
    expect(s.skipped.map((x) => x.file)).to.deep.equal([path.join(root, 'b', 'img_0.png')]);
  });

  it('a file deleted or rewritten after the scan fails with one line naming it, not a skip', async () => {
    const root = tmpDir('lt-vanish-');
    await writeClassFolder(root, { a: 2, b: 2 });
    const s = source(root);
    const gone = path.join(root, 'a', 'img_1.png');
    const grown = path.join(root, 'b', 'img_1.png');
    const size = fs.statSync(grown).size;
    fs.rmSync(gone);
    fs.appendFileSync(grown, Buffer.alloc(5));
    const ex = (key: string) => s.train.find((e) => e.key === key)!;
    const e1 = await rejection(s.pixels(ex(gone), 32));
    expect(e1).to.be.instanceOf(DataChangedError).and.not.instanceOf(DataError);
    expect(e1.message).to.equal(`${gone}: vanished since the data folder was scanned (ENOENT); the data changed during the run`);
    const e2 = await rejection(s.pixels(ex(grown), 32));
    expect(e2.message).to.equal(`${grown}: changed since the data folder was scanned (${size} → ${size + 5} bytes); the data changed during the run`);
  });

  it('through training: an image deleted between the scan and its first decode stops the run with that line', async () => {
    const root = tmpDir('lt-vanish-run-');
    await writeClassFolder(root, { a: 3, b: 3 });
    const gone = path.join(root, 'b', 'img_2.png'); // not the first of its class: the start-of-run check passes
    const out = tmpDir('lt-vanish-out-');
    const job = { data: { dir: root, valFraction: 0 }, model: { size: 32 }, train: { epochs: 1, batch: 2 }, backend: 'wasm', out } as JobInput;
    const create = () => {
      const s = source(root);
      fs.rmSync(gone);
      return s;
    };
    const container = createContainer();
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create });
    const e = await rejection(runJob(job, { ...quiet, report: false, container }));
    expect(e).to.be.instanceOf(UserError);
    expect(e.message).to.equal(`${gone}: vanished since the data folder was scanned (ENOENT); the data changed during the run`);
  });
});

describe('Unicode normalisation of class folder names', () => {
  const nfc = 'caf\u00e9';
  const nfd = 'cafe\u0301';

  it('an NFD folder (as macOS writes it) is the class in NFC, and its files are still read', async () => {
    const root = tmpDir('lt-nfd-');
    await writeClassFolder(root, { [nfd]: 2, tea: 2 });
    const l = scanFolder(root);
    expect(l.classes).to.deep.equal([nfc, 'tea']);
    expect(l.classes[0]).to.not.equal(nfd);
    expect(l.all!.filter((f) => f.label === 0).every((f) => f.file.includes(nfd) && fs.existsSync(f.file))).to.equal(true);
  });

  it('both spellings in one data folder are one class, said once; the data manifest matches the NFC-only folder', async () => {
    const both = tmpDir('lt-nfc-nfd-');
    await writeClassFolder(both, { [nfc]: 2, tea: 2 });
    fs.mkdirSync(path.join(both, nfd));
    fs.copyFileSync(path.join(both, nfc, 'img_0.png'), path.join(both, nfd, 'extra.png'));
    const l = scanFolder(both, { checkDuplicates: false });
    expect(l.classes).to.deep.equal([nfc, 'tea']);
    expect(l.all!.filter((f) => f.label === 0)).to.have.length(3);
    expect(l.warnings.filter((w) => /Unicode normalisation/.test(w))).to.deep.equal([
      // NFD sorts first: "e" + U+0301 before U+00E9
      `${both}: class folders "${nfd}" (NFD) and "${nfc}" (NFC) differ only in Unicode normalisation; read as one class "${nfc}"`,
    ]);

    // the same images under an NFD folder name give the same manifest as under the NFC name
    const a = tmpDir('lt-nfc-');
    await writeClassFolder(a, { [nfc]: 2, tea: 2 });
    const b = tmpDir('lt-nfd2-');
    fs.cpSync(a, b, { recursive: true });
    fs.renameSync(path.join(b, nfc), path.join(b, nfd));
    const manifest = (root: string) => {
      const s = scanFolder(root);
      return dataManifest(
        root,
        s.classes,
        s.all!.map((f) => ({ split: 'train', label: f.label, key: f.file, size: fileSize(f.file) })),
      );
    };
    const ma = manifest(a);
    const mb = manifest(b);
    expect(mb.digest).to.equal(ma.digest);
    expect(Object.keys(mb.perClass)).to.deep.equal([nfc, 'tea']);
  });
});
