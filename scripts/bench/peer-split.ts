/**
 * What a side-by-side run with the PyTorch peer (../shared/peer/torch_finetune.py) shares: the same train/validation
 * split written as folders of symlinks (the peer reads train/ and val/ class folders), and the peer's layer groups.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder } from '../../src/data/scan';
import { stratifiedSplit } from '../../src/data/split';

/** The peer's groups: early = conv1 + blocks 1-5, middle = blocks 6-11, late = blocks 12-13 + head. */
export const PEER_GROUP_RULES = [
  { match: '^conv_(dw|pw)_([1-5])(_|$)|^conv1', group: 'g0' },
  { match: '^conv_(dw|pw)_([6-9]|1[01])(_|$)', group: 'g1' },
  { match: '^conv_(dw|pw)_(1[23])(_|$)|^lt_head', group: 'g2' },
];

/**
 * `root`'s images split 80/20 per class (seed 42), as train/ and val/ folders of symlinks in a new temporary folder;
 * with `perClass`, only the first that many images of each class (in sorted order) take part.
 */
export function materialiseSplit(root: string, perClass?: number): { dir: string; nTrain: number; nVal: number } {
  const layout = scanFolder(root);
  const taken = new Map<number, number>();
  const all = layout.all!.filter((f) => {
    const n = taken.get(f.label) ?? 0;
    taken.set(f.label, n + 1);
    return perClass === undefined || n < perClass;
  });
  const { train, val } = stratifiedSplit(all, 0.2, 42);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-peer-split-'));
  for (const [name, files] of [
    ['train', train],
    ['val', val],
  ] as const) {
    for (const f of files) {
      const d = path.join(dir, name, layout.classes[f.label]);
      fs.mkdirSync(d, { recursive: true });
      fs.symlinkSync(path.resolve(f.file), path.join(d, path.basename(f.file)));
    }
  }
  return { dir, nTrain: train.length, nVal: val.length };
}
