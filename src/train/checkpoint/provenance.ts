/**
 * What a run was trained on, recorded in every checkpoint and compared on `--resume`. Labels are positions in the
 * class list, so a renamed, added, removed or reordered class folder silently shifts every label after it; a
 * resumed run must see the same classes in the same order, the same files and the same model, or say why not.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../errors';

const count = z.number().int().nonnegative();

export const ClassFilesSchema = z.object({ files: count, bytes: count, digest: z.string() });

export const ProvenanceSchema = z.object({
  /** Class names in label order (label i is classes[i]), NFC. */
  classes: z.array(z.string()),
  data: z.object({
    /** The data folder as an absolute path, so a resume from another working directory reads the same folder. */
    dir: z.string(),
    files: count,
    bytes: count,
    /** SHA-256 over every example's split, class, path (relative to `dir`) and size. */
    digest: z.string(),
    perClass: z.record(z.string(), ClassFilesSchema),
  }),
  model: z.object({
    source: z.string(),
    size: count,
    /** SHA-256 over the model's weight names and shapes: another architecture or head never matches. */
    weights: z.string(),
    count,
  }),
  layertuneVersion: z.string(),
});

export type RunProvenance = z.infer<typeof ProvenanceSchema>;
export type ClassFiles = z.infer<typeof ClassFilesSchema>;

/** One example as the manifest sees it: which split, which label, which file, how many bytes (-1: not a file). */
export interface ManifestEntry {
  split: string;
  label: number;
  key: string;
  size: number;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The size of a file, -1 when it is not one (in-memory sources have keys that are not paths). */
export function fileSize(key: string): number {
  try {
    const st = fs.statSync(key);
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

/**
 * The data manifest: pure over its entries. Paths are taken relative to the data folder, so a moved data folder
 * with the same contents has the same digest; entries are sorted, so the order the scan found them in is no change.
 */
export function dataManifest(dir: string, classes: readonly string[], entries: readonly ManifestEntry[]): RunProvenance['data'] {
  const absDir = path.resolve(dir);
  const line = (e: ManifestEntry) => {
    const rel = isInside(path.resolve(e.key), absDir) ? path.relative(absDir, path.resolve(e.key)) : e.key;
    // forward slashes and NFC: the same folder read on Windows or macOS gives the same digest
    return `${e.split}\t${rel.split(path.sep).join('/').normalize('NFC')}\t${e.size}`;
  };
  const all = crypto.createHash('sha256');
  const perClass: Record<string, ClassFiles> = {};
  let bytes = 0;
  classes.forEach((name, label) => {
    const mine = entries.filter((e) => e.label === label);
    const lines = mine.map(line).sort();
    const h = crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
    const b = mine.reduce((a, e) => a + Math.max(0, e.size), 0);
    perClass[name] = { files: mine.length, bytes: b, digest: h };
    bytes += b;
    all.update(`${name}\n${h}\n`);
  });
  return { dir: absDir, files: entries.length, bytes, digest: all.digest('hex'), perClass };
}

/** SHA-256 over `name:shape` of every weight, in model order. */
export function weightsDigest(weights: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | null> }>): string {
  return crypto
    .createHash('sha256')
    .update(weights.map((w) => `${w.name}:${w.shape.join('x')}`).join('\n'))
    .digest('hex');
}

export interface ProvenanceCheck {
  /** Refusals that no flag overrides: resuming would train on shifted labels or load weights into another model. */
  refuse: string[];
  /** The file set changed with the same classes: refused unless `--force`. */
  filesChanged: string | null;
  /** Said and carried on. */
  warnings: string[];
}

const list = (xs: readonly string[]) => xs.map((x) => JSON.stringify(x)).join(', ');

/** The class-list difference in words, or null when the lists are identical. */
export function describeClassChange(before: readonly string[], after: readonly string[]): string | null {
  if (before.length === after.length && before.every((c, i) => c === after[i])) return null;
  const removed = before.filter((c) => !after.includes(c));
  const added = after.filter((c) => !before.includes(c));
  const parts: string[] = [];
  if (removed.length === 1 && added.length === 1) parts.push(`class ${list(removed)} is now ${list(added)} (renamed?)`);
  else {
    if (removed.length) parts.push(`removed ${list(removed)}`);
    if (added.length) parts.push(`added ${list(added)}`);
  }
  if (!removed.length && !added.length) parts.push(`same classes in another label order (${list(before)} → ${list(after)})`);
  else if (removed.length === 1 && added.length === 1 && before.length === after.length) {
    // a rename that sorts elsewhere also moves the labels of the classes between the two names
    const moved = before.filter((c, i) => c !== removed[0] && after.indexOf(c) !== i);
    if (moved.length) parts.push(`which moves the labels of ${list(moved)}`);
  }
  return parts.join('; ');
}

/** The file-set difference per class, e.g. `"tulips": 16 → 12 files; "roses": same count, contents differ`. */
export function describeFileChange(before: RunProvenance['data'], after: RunProvenance['data']): string | null {
  if (before.digest === after.digest) return null;
  const parts: string[] = [];
  for (const [name, b] of Object.entries(before.perClass)) {
    const a = after.perClass[name];
    if (!a || a.digest === b.digest) continue;
    parts.push(
      a.files !== b.files
        ? `${JSON.stringify(name)}: ${b.files} → ${a.files} files`
        : `${JSON.stringify(name)}: ${a.files} files, names or sizes differ (${b.bytes} → ${a.bytes} bytes)`,
    );
  }
  // same classes, same per-class files: only the split assignment moved (data.valFraction or a train/ val/ move)
  return parts.length ? parts.join('; ') : 'the train/val split of the files differs';
}

/** Compares what a checkpoint was trained on with what the resumed run would train on: pure. */
export function compareProvenance(saved: RunProvenance, now: RunProvenance): ProvenanceCheck {
  const refuse: string[] = [];
  const warnings: string[] = [];
  const classes = describeClassChange(saved.classes, now.classes);
  if (classes) refuse.push(`the data's classes differ from the checkpoint's: ${classes}; labels would shift`);
  else if (saved.model.weights !== now.model.weights) {
    refuse.push(
      `the model differs from the checkpoint's (${saved.model.source} at size ${saved.model.size}, ${saved.model.count} weights; now ${now.model.source} at size ${now.model.size}, ${now.model.count} weights)`,
    );
  }
  const filesChanged = classes ? null : describeFileChange(saved.data, now.data);
  if (saved.layertuneVersion !== now.layertuneVersion) {
    warnings.push(`the checkpoint was written by layertune ${saved.layertuneVersion}, this is ${now.layertuneVersion}`);
  }
  return { refuse, filesChanged, warnings };
}

/**
 * Throws the one-line refusal for a resume whose data or model differs from the checkpoint's; logs the warnings.
 * A changed file set (same classes) is refused unless `force`: the continued run would not see the data the first
 * epochs saw, and a deleted image would otherwise just make the run smaller without a word.
 */
export function checkProvenance(saved: RunProvenance | null, now: RunProvenance, force: boolean, log: (line: string) => void): void {
  if (!saved) {
    log('warning: this checkpoint records no class list or data manifest (written by an older layertune); the data is not checked');
    return;
  }
  const c = compareProvenance(saved, now);
  if (c.refuse.length) throw new ConfigError('resume', `${c.refuse.join('; ')} — resume with the data and model the run started with, or start a new run`);
  if (c.filesChanged && !force) {
    throw new ConfigError(
      'resume',
      `the training files differ from the checkpoint's (${c.filesChanged}) in ${now.data.dir}; pass --force to resume on the changed files anyway`,
    );
  }
  if (c.filesChanged) log(`warning: resuming on changed training files (--force): ${c.filesChanged}`);
  for (const w of c.warnings) log(`warning: ${w}`);
}

/** Reads the provenance out of a parsed state.json; null for checkpoints written before it existed. */
export function readProvenance(state: { provenance?: unknown }, file: string): RunProvenance | null {
  if (state.provenance === undefined) return null;
  const r = ProvenanceSchema.safeParse(state.provenance);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError('resume', `${file}: bad checkpoint provenance: ${['provenance', ...i.path].join('.')}: ${i.message}`);
  }
  return r.data;
}

export interface ProvenanceInputs {
  dataDir: string;
  classes: readonly string[];
  /** Every example by split; the keys of an image folder are file paths. */
  splits: Record<string, ReadonlyArray<{ key: string; label: number }>>;
  model: { source: string; size: number; weights: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | null> }> };
  layertuneVersion: string;
}

/** The provenance of the run about to train: one stat per file, no file is read. */
export function runProvenance(p: ProvenanceInputs): RunProvenance {
  const entries = Object.entries(p.splits).flatMap(([split, xs]) => xs.map((x) => ({ split, label: x.label, key: x.key, size: fileSize(x.key) })));
  return {
    classes: [...p.classes],
    data: dataManifest(p.dataDir, p.classes, entries),
    model: { source: p.model.source, size: p.model.size, weights: weightsDigest(p.model.weights), count: p.model.weights.length },
    layertuneVersion: p.layertuneVersion,
  };
}
