/**
 * Small SVG charts (line, scatter, heatmap) as plain strings, rasterised by sharp (librsvg). No canvas or
 * browser: the same file renders in report.html and as a PNG in CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** `line` joins points in order; `scatter` draws dots. */
  kind?: 'line' | 'scatter';
  color?: string;
  dashed?: boolean;
}

export interface Marker {
  x: number;
  label: string;
  color?: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xLog?: boolean;
  yLog?: boolean;
  /** Vertical lines with a label (e.g. the LR finder's suggestion). */
  markers?: Marker[];
  width?: number;
  height?: number;
  /** Clip the y range (a loss that explodes at the end would flatten everything else). */
  yMin?: number;
  yMax?: number;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Tick label: short, and in exponent form where a fixed form would be long. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) {
    const e = Math.floor(Math.log10(a) + 1e-9);
    const m = v / 10 ** e;
    return Math.abs(Math.abs(m) - 1) < 1e-9 ? `${m < 0 ? '-' : ''}1e${e}` : `${+m.toFixed(1)}e${e}`;
  }
  return String(+v.toPrecision(3));
}

/** About `n` round tick values covering [lo, hi] (1, 2, 5 × 10^k steps). */
export function linearTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** Powers of ten within [lo, hi] (both > 0), thinned to at most ~8 labels. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.ceil(Math.log10(hi) - 1e-9);
  const every = Math.max(1, Math.ceil((b - a + 1) / 8));
  const out: number[] = [];
  const inside = (v: number) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9);
  for (let e = a; e <= b; e++) if ((e - a) % every === 0 && inside(10 ** e)) out.push(10 ** e);
  if (out.length < 3) {
    // a range of a decade or two: label 2x and 5x as well, or the axis says almost nothing
    const fine: number[] = [];
    for (let e = a - 1; e <= b; e++) for (const m of [1, 2, 5]) if (inside(+(m * 10 ** e).toPrecision(12))) fine.push(+(m * 10 ** e).toPrecision(12));
    if (fine.length >= 2) return fine;
  }
  return out.length ? out : [lo, hi];
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  map(v: number): number;
  ticks: number[];
}

function axis(values: number[], log: boolean, from: number, to: number, clampLo?: number, clampHi?: number): Axis {
  let vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (clampLo !== undefined) vs = vs.map((v) => Math.max(v, clampLo));
  if (clampHi !== undefined) vs = vs.map((v) => Math.min(v, clampHi));
  let lo = vs.length ? Math.min(...vs) : log ? 1 : 0;
  let hi = vs.length ? Math.max(...vs) : log ? 10 : 1;
  if (hi === lo) {
    if (log) [lo, hi] = [lo / 2, hi * 2];
    else [lo, hi] = [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  } else if (!log) {
    const pad = (hi - lo) * 0.04;
    [lo, hi] = [lo - pad, hi + pad];
  } else {
    // lines at the extremes (a constant rate) must not sit on the frame
    const pad = 10 ** (Math.max(0.1, Math.log10(hi / lo)) * 0.05);
    [lo, hi] = [lo / pad, hi * pad];
  }
  const t = (v: number) => (log ? Math.log10(v) : v);
  const map = (v: number) => from + ((t(v) - t(lo)) / (t(hi) - t(lo))) * (to - from);
  return { lo, hi, log, map, ticks: log ? logTicks(lo, hi) : linearTicks(lo, hi) };
}

/** A line or scatter chart as an SVG document. Non-finite points (and ≤ 0 on a log axis) are skipped. */
export function chartSvg(spec: ChartSpec): string {
  const W = spec.width ?? 720;
  const H = spec.height ?? 420;
  const m = { left: 72, right: 20, top: 40, bottom: 56 };
  // legend columns by the longest name, so long names never run into the next entry
  const longest = Math.max(0, ...spec.series.map((s) => s.name.length));
  const legendCols = longest > 30 ? 2 : longest > 18 ? 3 : 4;
  const legendRows = spec.series.length > 1 ? Math.ceil(spec.series.length / legendCols) : 0;
  const plotBottom = H - m.bottom - legendRows * 18;
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0])).concat((spec.markers ?? []).map((mk) => mk.x));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
  const X = axis(xs, !!spec.xLog, m.left, W - m.right);
  const Y = axis(ys, !!spec.yLog, plotBottom, m.top, spec.yMin, spec.yMax);
  const inX = (v: number) => Number.isFinite(v) && (!X.log || v > 0);
  const inY = (v: number) => Number.isFinite(v) && (!Y.log || v > 0);
  const clampY = (v: number) => Math.min(Math.max(v, Y.lo), Y.hi);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(spec.title)}</text>`);
  // grid + ticks
  for (const t of X.ticks) {
    const x = X.map(t);
    out.push(`<line x1="${x.toFixed(1)}" y1="${m.top}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${plotBottom + 16}" text-anchor="middle" font-size="11">${formatTick(t)}</text>`);
  }
  for (const t of Y.ticks) {
    const y = Y.map(t);
    out.push(`<line x1="${m.left}" y1="${y.toFixed(1)}" x2="${W - m.right}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${formatTick(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${plotBottom - m.top}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${plotBottom + 36}" text-anchor="middle" font-size="13">${esc(spec.xLabel)}</text>`);
  out.push(
    `<text x="16" y="${(m.top + plotBottom) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 16 ${(m.top + plotBottom) / 2})">${esc(spec.yLabel)}</text>`,
  );
  spec.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.points.filter(([x, y]) => inX(x) && inY(y));
    if (s.kind === 'scatter') {
      for (const [x, y] of pts) out.push(`<circle cx="${X.map(x).toFixed(1)}" cy="${Y.map(clampY(y)).toFixed(1)}" r="4" fill="${color}" fill-opacity="0.75"/>`);
    } else if (pts.length) {
      const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${X.map(x).toFixed(1)},${Y.map(clampY(y)).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      if (pts.length === 1) out.push(`<circle cx="${X.map(pts[0][0]).toFixed(1)}" cy="${Y.map(clampY(pts[0][1])).toFixed(1)}" r="3" fill="${color}"/>`);
    }
  });
  (spec.markers ?? []).forEach((mk, i) => {
    if (!inX(mk.x)) return;
    const x = X.map(mk.x);
    const color = mk.color ?? '#d62728';
    out.push(`<line x1="${x.toFixed(1)}" y1="${m.top}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="${color}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    const right = x > (m.left + W - m.right) / 2;
    out.push(
      `<text x="${(x + (right ? -4 : 4)).toFixed(1)}" y="${m.top + 14 + i * 14}" text-anchor="${right ? 'end' : 'start'}" font-size="11" fill="${color}" stroke="white" stroke-width="3" paint-order="stroke">${esc(mk.label)}</text>`,
    );
  });
  if (legendRows) {
    const colW = (W - m.left - m.right) / legendCols;
    spec.series.forEach((s, i) => {
      const color = s.color ?? PALETTE[i % PALETTE.length];
      const x = m.left + (i % legendCols) * colW;
      const y = H - 14 - (legendRows - 1 - Math.floor(i / legendCols)) * 18;
      out.push(`<rect x="${x}" y="${y - 9}" width="14" height="4" fill="${color}"/>`);
      out.push(`<text x="${x + 20}" y="${y - 4}" font-size="11">${esc(s.name)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Rows = true class, columns = predicted: cell shade by the row-normalised share, with the count written in. */
export function confusionSvg(matrix: number[][], classes: string[], title = 'Confusion matrix (validation)'): string {
  const k = classes.length;
  const cell = Math.max(28, Math.min(64, Math.floor(480 / Math.max(k, 1))));
  const left = 120;
  const top = 60;
  const W = left + k * cell + 30;
  const H = top + k * cell + 90;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i < k; i++) {
    const rowSum = matrix[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      const v = matrix[i][j];
      const share = rowSum > 0 ? v / rowSum : 0;
      const shade = Math.round(255 - share * 200);
      const fill = i === j ? `rgb(${shade},${Math.round(255 - share * 120)},${shade})` : `rgb(255,${shade},${shade})`;
      const x = left + j * cell;
      const y = top + i * cell;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#999"/>`);
      out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="12">${v}</text>`);
    }
    out.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${esc(classes[i])}</text>`);
  }
  for (let j = 0; j < k; j++) {
    const x = left + j * cell + cell / 2;
    const y = top + k * cell + 8;
    out.push(`<text x="${x}" y="${y}" text-anchor="end" font-size="11" transform="rotate(-45 ${x} ${y})">${esc(classes[j])}</text>`);
  }
  out.push(`<text x="${left + (k * cell) / 2}" y="${H - 8}" text-anchor="middle" font-size="13">predicted</text>`);
  out.push(`<text x="14" y="${top + (k * cell) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 14 ${top + (k * cell) / 2})">true class</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** SVG → PNG via sharp, written to a temporary name and renamed (no half-written charts). */
export async function writePng(svg: string, file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await sharp(Buffer.from(svg)).png().toFile(tmp);
  fs.renameSync(tmp, file);
}

/** Text written atomically (temporary name, then rename). */
export function writeTextAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
