/** Pure learning-rate presets; index 0 is the front of the network. */

/** 10x steps (or any factor): lr_i = top / factor^(n−1−i). stepped(0.1, 10, 3) = [0.001, 0.01, 0.1]. */
export function steppedRates(top: number, factor: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => top / factor ** (n - 1 - i));
}

/** fastai `slice(lo, hi)`: lr_i = lo·(hi/lo)^(i/(n−1)), evenly spaced in log space; one group gets hi. */
export function geometricRates(lo: number, hi: number, n: number): number[] {
  if (n === 1) return [hi];
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? hi : i === 0 ? lo : lo * (hi / lo) ** (i / (n - 1))));
}

/** timm layer decay: lr_i = lr·d^(depth−i) for i = 0..depth (the head is i = depth). */
export function layerDecayRates(lr: number, decay: number, depth: number): number[] {
  return Array.from({ length: depth + 1 }, (_, i) => lr * decay ** (depth - i));
}

/**
 * Splits `s` stages front to back into `n` contiguous groups as evenly as possible, earlier groups
 * taking the remainder (14 stages in 3 → 5, 5, 4). Returns the group index of each stage.
 */
export function splitStages(s: number, n: number): number[] {
  const base = Math.floor(s / n);
  const rem = s % n;
  const out: number[] = [];
  for (let g = 0; g < n; g++) for (let i = 0; i < base + (g < rem ? 1 : 0); i++) out.push(g);
  return out;
}
