import { Rng } from './rng';
import type { LabelledFile } from './scan';

/**
 * Stratified split: each class contributes round(n·valFraction) files to validation (at least one
 * when it has two or more), chosen by a seeded shuffle of that class alone, so adding files to one
 * class never reshuffles another.
 */
export function stratifiedSplit(files: LabelledFile[], valFraction: number, seed: number): { train: LabelledFile[]; val: LabelledFile[] } {
  const byClass = new Map<number, LabelledFile[]>();
  for (const f of files) byClass.set(f.label, [...(byClass.get(f.label) ?? []), f]);
  const train: LabelledFile[] = [];
  const val: LabelledFile[] = [];
  for (const [label, items] of [...byClass].sort((a, b) => a[0] - b[0])) {
    const shuffled = new Rng(seed * 1000003 + label).shuffle(items);
    let nVal = Math.round(items.length * valFraction);
    if (valFraction > 0 && items.length >= 2) nVal = Math.max(1, nVal);
    nVal = Math.min(nVal, items.length - 1);
    val.push(...shuffled.slice(0, Math.max(0, nVal)));
    train.push(...shuffled.slice(Math.max(0, nVal)));
  }
  const byName = (a: LabelledFile, b: LabelledFile) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  return { train: train.sort(byName), val: val.sort(byName) };
}

/** Stratified k folds (for cross-validation): fold i is every k-th file of each class after a seeded shuffle. */
export function stratifiedFolds(files: LabelledFile[], k: number, seed: number): LabelledFile[][] {
  const folds: LabelledFile[][] = Array.from({ length: k }, () => []);
  const byClass = new Map<number, LabelledFile[]>();
  for (const f of files) byClass.set(f.label, [...(byClass.get(f.label) ?? []), f]);
  let offset = 0;
  for (const [label, items] of [...byClass].sort((a, b) => a[0] - b[0])) {
    new Rng(seed * 1000003 + label).shuffle(items).forEach((f, i) => folds[(i + offset) % k].push(f));
    offset += items.length; // keeps fold sizes balanced across classes
  }
  return folds;
}
