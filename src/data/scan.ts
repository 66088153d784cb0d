import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';

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
}

function listClassDirs(root: string): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && (d.isDirectory() || (d.isSymbolicLink() && isDir(path.join(root, d.name)))))
    .map((d) => d.name)
    .sort();
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listImages(dir: string, warnings: string[]): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (d.name.startsWith('.')) continue; // hidden files (.DS_Store, editor swaps) are never data
    const full = path.join(dir, d.name);
    const ext = path.extname(d.name).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext)) {
      if (d.isFile()) warnings.push(`${full}: not an image extension, ignored`);
      continue;
    }
    if (d.isSymbolicLink() && !fs.existsSync(full)) {
      warnings.push(`${full}: broken symlink, ignored`);
      continue;
    }
    out.push(full);
  }
  return out.sort();
}

function scanClasses(root: string, classes: string[], warnings: string[], allowEmpty = false): LabelledFile[] {
  const files: LabelledFile[] = [];
  classes.forEach((c, label) => {
    const imgs = listImages(path.join(root, c), warnings);
    if (imgs.length === 0 && !allowEmpty) throw new DataError(path.join(root, c), 'class folder holds no images');
    if (imgs.length === 1) warnings.push(`${path.join(root, c)}: class has a single image`);
    for (const f of imgs) files.push({ file: f, label });
  });
  return files;
}

/** Reads an image folder: one sub-folder per class, or train/ val/ (test/) each holding class folders. */
export function scanFolder(root: string): FolderLayout {
  if (!fs.existsSync(root)) throw new DataError(root, 'data folder does not exist');
  if (!isDir(root)) throw new DataError(root, 'data path is not a folder');
  const warnings: string[] = [];
  const top = listClassDirs(root);
  if (top.includes('train') && top.includes('val')) {
    const classes = listClassDirs(path.join(root, 'train'));
    checkClassCount(path.join(root, 'train'), classes);
    for (const split of ['val', 'test']) {
      if (!top.includes(split)) continue;
      const extra = listClassDirs(path.join(root, split)).filter((c) => !classes.includes(c));
      if (extra.length) throw new DataError(path.join(root, split), `classes not present in train/: ${extra.join(', ')}`);
    }
    const scanSplit = (s: string) => scanClasses(path.join(root, s), classes, warnings, s !== 'train');
    return {
      classes,
      presplit: { train: scanSplit('train'), val: scanSplit('val'), test: top.includes('test') ? scanSplit('test') : undefined },
      warnings,
    };
  }
  checkClassCount(root, top);
  return { classes: top, all: scanClasses(root, top, warnings), warnings };
}

function checkClassCount(root: string, classes: string[]): void {
  if (classes.length < 2) {
    throw new DataError(root, `needs at least two class sub-folders, found ${classes.length}${classes.length ? ` (${classes[0]})` : ''}`);
  }
}
