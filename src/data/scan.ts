import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';
import { refuseInvalidUtf8Names } from '../io/path-kind';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export interface LabelledFile {
  file: string;
  label: number;
}

export interface FolderLayout {
  classes: string[];
  /** Present when the folder has explicit train/ val/ (test/) sub-folders. */
  presplit?: { train: LabelledFile[]; val: LabelledFile[]; test?: LabelledFile[] };
  /** All files when the folder is one sub-folder per class. */
  all?: LabelledFile[];
  warnings: string[];
  /** Files with an image extension that cannot be data (broken or looping symlinks, folders, FIFOs). */
  skipped: Array<{ file: string; reason: string }>;
  /** Each listed file's size when it was scanned: a file that vanishes or changes later is told apart from a corrupt one. */
  sizes: Map<string, number>;
}

export interface ScanOptions {
  /** Hash files of equal size and warn when the same bytes sit in two classes or splits (default on). */
  checkDuplicates?: boolean;
}

/** Warnings listed one by one before the rest is summarised in one line, so a messy folder cannot flood the log. */
const MAX_LISTED_DUPLICATES = 20;

/**
 * Class name → its folder names on disk. Names are compared and recorded in NFC: macOS writes NFD, so the same
 * folder copied from a Mac and from Linux must be the same class with the same label. Two folders whose names
 * differ only in normalisation are read as one class, said once.
 */
type ClassDirs = Map<string, string[]>;

function listClassDirs(root: string, warnings: string[]): ClassDirs {
  const out: ClassDirs = new Map();
  for (const name of listClassFolderNames(root, warnings)) {
    const key = name.normalize('NFC');
    out.set(key, [...(out.get(key) ?? []), name]);
  }
  const form = (n: string) => (n === n.normalize('NFC') ? 'NFC' : n === n.normalize('NFD') ? 'NFD' : 'mixed');
  for (const [key, names] of out) {
    names.sort();
    if (names.length > 1) {
      const spelled = names.map((n) => `${JSON.stringify(n)} (${form(n)})`).join(' and ');
      warnings.push(`${root}: class folders ${spelled} differ only in Unicode normalisation; read as one class ${JSON.stringify(key)}`);
    }
  }
  return new Map([...out.keys()].sort().map((k) => [k, out.get(k)!]));
}

function listClassFolderNames(root: string, warnings: string[]): string[] {
  const realRoot = fs.realpathSync(root);
  const out: string[] = [];
  const entries = fs.readdirSync(root, { withFileTypes: true });
  refuseInvalidUtf8Names(
    root,
    entries.map((d) => d.name),
  );
  for (const d of entries) {
    if (d.name.startsWith('.')) continue;
    const full = path.join(root, d.name);
    if (d.isDirectory()) {
      out.push(d.name);
      continue;
    }
    if (!d.isSymbolicLink()) continue;
    let real: string;
    try {
      real = fs.realpathSync(full);
    } catch (e) {
      warnings.push(`${full}: ${symlinkProblem(e)}, ignored`);
      continue;
    }
    if (!isDir(real)) continue;
    // a class folder linking back to the data folder (or above it) is a cycle, never a class
    const up = path.relative(real, realRoot);
    if (up === '' || (up !== '..' && !up.startsWith(`..${path.sep}`) && !path.isAbsolute(up))) {
      warnings.push(`${full}: symlink to ${real} loops back over the data folder, ignored`);
      continue;
    }
    out.push(d.name);
  }
  return out;
}

function symlinkProblem(e: unknown): string {
  return (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'symlink loop' : 'broken symlink';
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listImages(dir: string, warnings: string[], skipped: FolderLayout['skipped'], sizes: FolderLayout['sizes']): string[] {
  const out: string[] = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  refuseInvalidUtf8Names(
    dir,
    entries.map((d) => d.name),
  );
  for (const d of entries) {
    if (d.name.startsWith('.')) continue; // hidden files (.DS_Store, editor swaps) are never data
    const full = path.join(dir, d.name);
    const ext = path.extname(d.name).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext)) {
      if (d.isFile()) warnings.push(`${full}: not an image extension, ignored`);
      continue;
    }
    // stat follows links: only regular files are read, so a FIFO named x.jpg cannot block a decode
    let st: fs.Stats;
    try {
      st = fs.statSync(full);
    } catch (e) {
      skip(full, symlinkProblem(e), warnings, skipped);
      continue;
    }
    if (!st.isFile()) {
      skip(full, 'not a regular file', warnings, skipped);
      continue;
    }
    sizes.set(full, st.size);
    out.push(full);
  }
  return out.sort();
}

function skip(file: string, reason: string, warnings: string[], skipped: FolderLayout['skipped']): void {
  warnings.push(`${file}: ${reason}, ignored`);
  skipped.push({ file, reason: `${file}: ${reason}` });
}

function scanClasses(
  root: string,
  classes: string[],
  dirs: ClassDirs,
  warnings: string[],
  skipped: FolderLayout['skipped'],
  sizes: FolderLayout['sizes'],
  allowEmpty = false,
): LabelledFile[] {
  const files: LabelledFile[] = [];
  classes.forEach((c, label) => {
    const folders = (dirs.get(c) ?? []).map((d) => path.join(root, d));
    const imgs = folders.flatMap((f) => listImages(f, warnings, skipped, sizes)).sort();
    const where = folders[0] ?? path.join(root, c);
    if (imgs.length === 0 && !allowEmpty) throw new DataError(where, 'class folder holds no images');
    if (imgs.length === 1) warnings.push(`${where}: class has a single image`);
    for (const f of imgs) files.push({ file: f, label });
  });
  return files;
}

/**
 * Reads an image folder: one sub-folder per class, or train/ val/ (test/) each holding class folders.
 * Only two levels are read and symlinked class folders that loop back are refused, so no link
 * structure can make the scan recurse.
 */
export function scanFolder(root: string, opts: ScanOptions = {}): FolderLayout {
  if (!fs.existsSync(root)) throw new DataError(root, 'data folder does not exist');
  if (!isDir(root)) throw new DataError(root, 'data path is not a folder');
  const warnings: string[] = [];
  const skipped: FolderLayout['skipped'] = [];
  const sizes: FolderLayout['sizes'] = new Map();
  const topDirs = listClassDirs(root, warnings);
  const top = [...topDirs.keys()];
  let layout: FolderLayout;
  if (top.includes('train') && top.includes('val')) {
    const splitDirs = new Map<string, ClassDirs>();
    for (const split of ['train', 'val', 'test']) if (top.includes(split)) splitDirs.set(split, listClassDirs(path.join(root, split), warnings));
    const classes = [...splitDirs.get('train')!.keys()];
    checkClassCount(path.join(root, 'train'), classes);
    for (const split of ['val', 'test']) {
      if (!splitDirs.has(split)) continue;
      const extra = [...splitDirs.get(split)!.keys()].filter((c) => !classes.includes(c));
      if (extra.length) throw new DataError(path.join(root, split), `classes not present in train/: ${extra.join(', ')}`);
    }
    const scanSplit = (s: string) => scanClasses(path.join(root, s), classes, splitDirs.get(s)!, warnings, skipped, sizes, s !== 'train');
    layout = {
      classes,
      presplit: { train: scanSplit('train'), val: scanSplit('val'), test: top.includes('test') ? scanSplit('test') : undefined },
      warnings,
      skipped,
      sizes,
    };
  } else {
    checkClassCount(root, top);
    layout = { classes: top, all: scanClasses(root, top, topDirs, warnings, skipped, sizes), warnings, skipped, sizes };
  }
  if (opts.checkDuplicates ?? true) warnings.push(...duplicateWarnings(layout));
  return layout;
}

/**
 * Same bytes under two labels (or in train and val) is label noise or leakage. Only files whose
 * sizes collide are hashed, so a clean folder costs one stat per file.
 */
export function duplicateWarnings(layout: FolderLayout): string[] {
  const tagged: Array<{ file: string; where: string }> = [];
  const add = (files: LabelledFile[] | undefined, split: string) => {
    for (const f of files ?? []) tagged.push({ file: f.file, where: `${split}${layout.classes[f.label]}` });
  };
  if (layout.presplit) {
    add(layout.presplit.train, 'train/');
    add(layout.presplit.val, 'val/');
    add(layout.presplit.test, 'test/');
  } else add(layout.all, '');
  const bySize = new Map<number, typeof tagged>();
  for (const t of tagged) {
    const size = fs.statSync(t.file).size;
    bySize.set(size, [...(bySize.get(size) ?? []), t]);
  }
  const groups: Array<typeof tagged> = [];
  for (const same of bySize.values()) {
    if (same.length < 2 || new Set(same.map((t) => t.where)).size < 2) continue;
    const byHash = new Map<string, typeof tagged>();
    for (const t of same) {
      const h = hashFile(t.file);
      byHash.set(h, [...(byHash.get(h) ?? []), t]);
    }
    for (const g of byHash.values()) if (new Set(g.map((t) => t.where)).size > 1) groups.push(g);
  }
  const lines = groups.map((g) => `duplicate content in ${[...new Set(g.map((t) => t.where))].join(' and ')}: ${g.map((t) => t.file).join(', ')}`);
  if (lines.length > MAX_LISTED_DUPLICATES) {
    const rest = lines.length - MAX_LISTED_DUPLICATES;
    return [...lines.slice(0, MAX_LISTED_DUPLICATES), `... and ${rest} more group(s) of identical files across classes or splits`];
  }
  return lines;
}

/** SHA-256 of a file, read in chunks so a large file never sits in memory whole. */
function hashFile(file: string): string {
  const h = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function checkClassCount(root: string, classes: string[]): void {
  if (classes.length < 2) {
    throw new DataError(root, `needs at least two class sub-folders, found ${classes.length}${classes.length ? ` (${classes[0]})` : ''}`);
  }
}
