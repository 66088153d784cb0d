import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scanFolder } from '../../src/data/scan';
import { stratifiedSplit } from '../../src/data/split';
import { DataError } from '../../src/errors';
import { tmpDir, writeClassFolder, writeImage } from '../helpers/images';

describe('image folder scan and split', () => {
  it('reads one sub-folder per class, sorted, ignoring hidden files and non-images', async () => {
    const root = tmpDir();
    await writeClassFolder(root, { zebra: 3, apple: 2 });
    fs.writeFileSync(path.join(root, 'apple', '.DS_Store'), 'x');
    fs.writeFileSync(path.join(root, 'apple', 'notes.txt'), 'x');
    fs.mkdirSync(path.join(root, '.hidden'));
    const l = scanFolder(root);
    expect(l.classes).to.deep.equal(['apple', 'zebra']);
    expect(l.all!.map((f) => f.label)).to.deep.equal([0, 0, 1, 1, 1]);
    expect(l.warnings.some((w) => w.includes('notes.txt'))).to.equal(true);
  });

  it('accepts explicit train/ val/ test/ folders', async () => {
    const root = tmpDir();
    await writeClassFolder(path.join(root, 'train'), { a: 3, b: 3 });
    await writeClassFolder(path.join(root, 'val'), { a: 1, b: 1 });
    await writeClassFolder(path.join(root, 'test'), { a: 1, b: 2 });
    const l = scanFolder(root);
    expect(l.classes).to.deep.equal(['a', 'b']);
    expect(l.presplit!.train).to.have.length(6);
    expect(l.presplit!.val).to.have.length(2);
    expect(l.presplit!.test).to.have.length(3);
  });

  it('gives a clear error for a missing folder, fewer than two classes, and an empty class', async () => {
    expect(() => scanFolder('/nonexistent/photos')).to.throw(DataError, /does not exist/);
    const one = tmpDir();
    await writeClassFolder(one, { only: 2 });
    expect(() => scanFolder(one)).to.throw(DataError, /at least two class/);
    const empty = tmpDir();
    await writeClassFolder(empty, { a: 2 });
    fs.mkdirSync(path.join(empty, 'b'));
    expect(() => scanFolder(empty)).to.throw(DataError, /b: class folder holds no images/);
  });

  it('splits each class by the validation fraction, deterministically per seed', () => {
    const files = [...Array(50)].map((_, i) => ({ file: `f${String(i).padStart(2, '0')}`, label: i < 30 ? 0 : 1 }));
    const a = stratifiedSplit(files, 0.2, 7);
    const b = stratifiedSplit(files, 0.2, 7);
    const c = stratifiedSplit(files, 0.2, 8);
    expect(a).to.deep.equal(b);
    expect(a.val.map((f) => f.file)).to.not.deep.equal(c.val.map((f) => f.file));
    expect(a.val.filter((f) => f.label === 0)).to.have.length(6); // 30·0.2
    expect(a.val.filter((f) => f.label === 1)).to.have.length(4); // 20·0.2
    expect(new Set([...a.train, ...a.val].map((f) => f.file)).size).to.equal(50);
  });

  it('keeps at least one training and one validation image per class when it can', () => {
    const files = [
      { file: 'a1', label: 0 },
      { file: 'a2', label: 0 },
      { file: 'b1', label: 1 },
      { file: 'b2', label: 1 },
      { file: 'b3', label: 1 },
    ];
    const s = stratifiedSplit(files, 0.2, 1);
    expect(s.val.filter((f) => f.label === 0)).to.have.length(1);
    expect(s.train.filter((f) => f.label === 0)).to.have.length(1);
  });

  it('handles names with spaces and unicode', async () => {
    const root = tmpDir();
    await writeImage(path.join(root, 'fleur rouge', 'été 1.png'));
    await writeImage(path.join(root, 'blå', 'x y.png'));
    expect(scanFolder(root).classes).to.deep.equal(['blå', 'fleur rouge']);
  });
});
