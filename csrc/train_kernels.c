/*
 * Training kernels that tfjs-backend-wasm 4.22 lacks, compiled to a tiny standalone wasm module that
 * IMPORTS the tfjs-wasm module's own linear memory. Every pointer argument is a byte offset into that
 * memory (backend.dataIdMap.get(dataId).memoryOffset), so tensors are read and written in place.
 *
 * Rules this file must keep, because it shares memory with emscripten's heap:
 *  - no static data and no shadow-stack use (no local arrays, no address-taken locals): the module has
 *    no memory of its own to put them in; scripts/build-wasm-kernels.sh checks the binary for both;
 *  - no libc: memset/memcpy come from -mbulk-memory (memory.fill / memory.copy instructions);
 *  - scratch space is malloc'ed by the caller with tfjs's own allocator and passed in.
 * Layout is NHWC everywhere; filters are [KH, KW, CI, CO] (depthwise: [KH, KW, C, CM]).
 */
#include <wasm_simd128.h>
#include "gemm4x8.h"

#define EXPORT(name) __attribute__((export_name(#name)))
typedef float f32;

static inline void zero(f32 *p, int n) { __builtin_memset(p, 0, (unsigned)n * sizeof(f32)); }

/* acc[i] += u[i] * v[i], i < n. */
static inline void fma_vv(f32 *restrict acc, const f32 *restrict u, const f32 *restrict v, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t s = wasm_v128_load(acc + i);
    s = MADD(s, wasm_v128_load(u + i), wasm_v128_load(v + i));
    wasm_v128_store(acc + i, s);
  }
  for (; i < n; i++) acc[i] += u[i] * v[i];
}

/* dW[kh,kw,c,q] = sum_{n,oh,ow} x[n,ih,iw,c] * dy[n,oh,ow,c*CM+q] */
EXPORT(dw_bp_filter)
void dw_bp_filter(const f32 *x, const f32 *dy, f32 *dw, int N, int H, int W, int C, int OH, int OW, int CM,
                  int KH, int KW, int SH, int SW, int PT, int PL) {
  int OC = C * CM;
  zero(dw, KH * KW * OC);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const f32 *dyp = dy + ((n * OH + oh) * OW + ow) * OC;
        for (int kh = 0; kh < KH; kh++) {
          int ih = oh * SH + kh - PT;
          if (ih < 0 || ih >= H) continue;
          for (int kw = 0; kw < KW; kw++) {
            int iw = ow * SW + kw - PL;
            if (iw < 0 || iw >= W) continue;
            const f32 *xp = x + ((n * H + ih) * W + iw) * C;
            f32 *dwp = dw + (kh * KW + kw) * OC;
            if (CM == 1) {
              fma_vv(dwp, xp, dyp, C);
            } else {
              for (int c = 0; c < C; c++)
                for (int q = 0; q < CM; q++) dwp[c * CM + q] += xp[c] * dyp[c * CM + q];
            }
          }
        }
      }
}

/* dX[n,ih,iw,c] = sum over taps hitting (ih,iw) of sum_q dy[n,oh,ow,c*CM+q] * f[kh,kw,c,q] */
EXPORT(dw_bp_input)
void dw_bp_input(const f32 *dy, const f32 *f, f32 *dx, int N, int H, int W, int C, int OH, int OW, int CM,
                 int KH, int KW, int SH, int SW, int PT, int PL) {
  int OC = C * CM;
  zero(dx, N * H * W * C);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const f32 *dyp = dy + ((n * OH + oh) * OW + ow) * OC;
        for (int kh = 0; kh < KH; kh++) {
          int ih = oh * SH + kh - PT;
          if (ih < 0 || ih >= H) continue;
          for (int kw = 0; kw < KW; kw++) {
            int iw = ow * SW + kw - PL;
            if (iw < 0 || iw >= W) continue;
            f32 *dxp = dx + ((n * H + ih) * W + iw) * C;
            const f32 *fp = f + (kh * KW + kw) * OC;
            if (CM == 1) {
              fma_vv(dxp, dyp, fp, C);
            } else {
              for (int c = 0; c < C; c++) {
                f32 s = 0;
                for (int q = 0; q < CM; q++) s += dyp[c * CM + q] * fp[c * CM + q];
                dxp[c] += s;
              }
            }
          }
        }
      }
}

/* ------------------------------------------------------------------------------------------------
 * BatchNorm in training mode over x viewed as [P, C] (P = N*H*W), and ReLU/ReLU6, fused.
 * Sums run in f32 over blocks of BLOCK rows and are folded into f64 totals, so a 200k-row
 * reduction keeps ~1e-7 relative accuracy without a slower f64 inner loop.
 * ------------------------------------------------------------------------------------------------ */
#define BLOCK 64

/*
 * Per-channel sums of d = x - K and d*d in one pass, K = the first row (a shift that keeps
 * E[d^2] - E[d]^2 from cancelling when |mean| >> std). s, q: C doubles each; ps, pq: C floats scratch.
 */
static void shifted_sums(const f32 *x, const f32 *K, double *s, double *q, f32 *ps, f32 *pq, int P, int C) {
  for (int c = 0; c < C; c++) s[c] = q[c] = 0;
  for (int p0 = 0; p0 < P; p0 += BLOCK) {
    int p1 = p0 + BLOCK < P ? p0 + BLOCK : P;
    zero(ps, C); zero(pq, C);
    for (int p = p0; p < p1; p++) {
      const f32 *r = x + (long)p * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(K + c));
        wasm_v128_store(ps + c, wasm_f32x4_add(wasm_v128_load(ps + c), d));
        wasm_v128_store(pq + c, wasm_f32x4_add(wasm_v128_load(pq + c), wasm_f32x4_mul(d, d)));
      }
      for (; c < C; c++) { f32 d = r[c] - K[c]; ps[c] += d; pq[c] += d * d; }
    }
    for (int c = 0; c < C; c++) { s[c] += ps[c]; q[c] += pq[c]; }
  }
}

/*
 * A ReLU fused into a BatchNorm's output: act 0 none; 1 z = min(max(y, 0), hi) with gradient where 0 < y < hi
 * (relu, and the relu6 activation); 2 the same clamp with gradient where 0 < y <= hi (tf.layers.reLU's clip).
 * The backward passes recompute y from x with the forward's own operations, so the mask is the one the
 * separate clamp_bwd would take from the saved y, bit for bit, and y itself is never stored.
 */
static inline v128_t act_clamp(v128_t y, v128_t h) { return wasm_f32x4_pmin(h, wasm_f32x4_pmax(wasm_f32x4_splat(0), y)); }
static inline f32 act_clamp1(f32 y, f32 hi) { f32 v = y > 0 ? y : 0; return v < hi ? v : hi; }
static inline v128_t act_mask(v128_t y, v128_t h, int act) {
  return wasm_v128_and(wasm_f32x4_gt(y, wasm_f32x4_splat(0)), act == 2 ? wasm_f32x4_le(y, h) : wasm_f32x4_lt(y, h));
}
static inline f32 act_mask1(f32 g, f32 y, f32 hi, int act) { return (y > 0 && (act == 2 ? y <= hi : y < hi)) ? g : 0; }

/*
 * y = (x - mean) * k + b over [P, C] rows, clamped when act != 0: the BatchNorm forward passes (batch statistics,
 * stored statistics, inference) all store through this one loop, and the backward passes recompute y with the same
 * operations for a fused ReLU's mask.
 */
static void normalize_rows(const f32 *x, const f32 *mean, const f32 *k, const f32 *b, f32 *y, int P, int C, f32 hi,
                           int act) {
  v128_t h = wasm_f32x4_splat(hi);
  for (int p = 0; p < P; p++) {
    const f32 *r = x + (long)p * C;
    f32 *o = y + (long)p * C;
    int c = 0;
    if (act) {
      for (; c + 4 <= C; c += 4) {
        v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
        wasm_v128_store(o + c, act_clamp(wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(k + c)), wasm_v128_load(b + c)), h));
      }
      for (; c < C; c++) o[c] = act_clamp1((r[c] - mean[c]) * k[c] + b[c], hi);
      continue;
    }
    for (; c + 4 <= C; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
      wasm_v128_store(o + c, wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(k + c)), wasm_v128_load(b + c)));
    }
    for (; c < C; c++) o[c] = (r[c] - mean[c]) * k[c] + b[c];
  }
}

/*
 * y = (x - mean) * invstd * gamma + beta with batch statistics; also returns mean, biased variance
 * (what tf.moments gives, and what Keras feeds the moving averages) and invstd = 1/sqrt(var + eps).
 * Two passes over x: statistics, then y (clamped when act != 0). scratch: 24*C bytes.
 */
EXPORT(bn_train_fwd)
void bn_train_fwd(const f32 *x, const f32 *gamma, const f32 *beta, f32 *y, f32 *mean, f32 *var, f32 *invstd,
                  void *scratch, int P, int C, f32 eps, f32 hi, int act) {
  double *s = (double *)scratch, *q = s + C;
  f32 *ps = (f32 *)(q + C), *pq = ps + C;
  shifted_sums(x, x, s, q, ps, pq, P, C);
  f32 *scale = ps; /* block partials are spent; reuse them */
  for (int c = 0; c < C; c++) {
    double m = s[c] / P;
    double v = q[c] / P - m * m;
    mean[c] = (f32)(x[c] + m);
    var[c] = (f32)(v > 0 ? v : 0);
    invstd[c] = 1.0f / __builtin_sqrtf(var[c] + eps);
    scale[c] = invstd[c] * gamma[c];
  }
  /* (x - mean) * scale + beta, not x * scale + (beta - mean * scale): no cancellation when |mean| >> std */
  normalize_rows(x, mean, scale, beta, y, P, C, hi, act);
}

/*
 * Full gradient of batch-statistics BatchNorm (through mean and variance):
 *   dbeta = sum dy, dgamma = sum dy*xhat,
 *   dx = gamma*invstd/P * (P*dy - dbeta - xhat*dgamma),  xhat = (x-mean)*invstd.
 * With act != 0, dy is the gradient of the clamped output: pass 1 masks it (act_mask) and keeps the masked
 * values in dx, which pass 2 reads and overwrites. scratch: 32*C bytes.
 */
EXPORT(bn_train_bwd)
void bn_train_bwd(const f32 *dy, const f32 *x, const f32 *gamma, const f32 *beta, const f32 *mean, const f32 *invstd,
                  f32 *dx, f32 *dgamma, f32 *dbeta, void *scratch, int P, int C, f32 hi, int act) {
  double *t0 = (double *)scratch, *t1 = t0 + C;
  f32 *p0 = (f32 *)(t1 + C), *p1 = p0 + C, *scale = p1 + 2 * C;
  v128_t h = wasm_f32x4_splat(hi);
  for (int c = 0; c < C; c++) {
    t0[c] = t1[c] = 0;
    scale[c] = invstd[c] * gamma[c]; /* the forward's scale, for its y */
  }
  for (int b0 = 0; b0 < P; b0 += BLOCK) {
    int b1 = b0 + BLOCK < P ? b0 + BLOCK : P;
    zero(p0, C); zero(p1, C);
    for (int p = b0; p < b1; p++) {
      const f32 *g = dy + (long)p * C, *r = x + (long)p * C;
      f32 *o = dx + (long)p * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        v128_t gv = wasm_v128_load(g + c);
        v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
        if (act) {
          v128_t yv = wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(scale + c)), wasm_v128_load(beta + c));
          gv = wasm_v128_and(act_mask(yv, h, act), gv);
          wasm_v128_store(o + c, gv);
        }
        wasm_v128_store(p0 + c, wasm_f32x4_add(wasm_v128_load(p0 + c), gv));
        wasm_v128_store(p1 + c, wasm_f32x4_add(wasm_v128_load(p1 + c), wasm_f32x4_mul(gv, d)));
      }
      for (; c < C; c++) {
        f32 gc = g[c];
        if (act) o[c] = gc = act_mask1(gc, (r[c] - mean[c]) * scale[c] + beta[c], hi, act);
        p0[c] += gc; p1[c] += gc * (r[c] - mean[c]);
      }
    }
    for (int c = 0; c < C; c++) { t0[c] += p0[c]; t1[c] += p1[c]; }
  }
  /* dx = k1*dy + k2*(x-mean) + k3 */
  f32 *k1 = p0, *k2 = p1, *k3 = (f32 *)(p1 + C);
  for (int c = 0; c < C; c++) {
    f32 is = invstd[c];
    dbeta[c] = (f32)t0[c];
    dgamma[c] = (f32)(t1[c] * is);
    k1[c] = gamma[c] * is;
    k2[c] = (f32)(-(double)gamma[c] * is * is * is * t1[c] / P);
    k3[c] = (f32)(-(double)gamma[c] * is * t0[c] / P);
  }
  const f32 *src = act ? dx : dy;
  for (int p = 0; p < P; p++) {
    const f32 *g = src + (long)p * C, *r = x + (long)p * C;
    f32 *o = dx + (long)p * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
      v128_t v = wasm_f32x4_mul(wasm_v128_load(g + c), wasm_v128_load(k1 + c));
      v = MADD(v, d, wasm_v128_load(k2 + c));
      wasm_v128_store(o + c, wasm_f32x4_add(v, wasm_v128_load(k3 + c)));
    }
    for (; c < C; c++) o[c] = g[c] * k1[c] + (r[c] - mean[c]) * k2[c] + k3[c];
  }
}

/*
 * Gradient of BatchNorm with stored (frozen) statistics, y = (x - mean) * invstd * gamma + beta, where
 * mean and var are constants: dx = dy * gamma * invstd, dbeta = sum dy, dgamma = sum dy * (x - mean) * invstd.
 * One pass over dy and x; the sums accumulate per BLOCK rows in floats, then in doubles, as bn_train_bwd does.
 * With act != 0, dy is masked first as in bn_train_bwd, y recomputed as bn_infer computes it. scratch: 28*C bytes.
 */
EXPORT(bn_frozen_bwd)
void bn_frozen_bwd(const f32 *dy, const f32 *x, const f32 *gamma, const f32 *beta, const f32 *mean, const f32 *var,
                   f32 *dx, f32 *dgamma, f32 *dbeta, void *scratch, int P, int C, f32 eps, f32 hi, int act) {
  double *t0 = (double *)scratch, *t1 = t0 + C;
  f32 *p0 = (f32 *)(t1 + C), *p1 = p0 + C, *k = p1 + C;
  v128_t h = wasm_f32x4_splat(hi);
  for (int c = 0; c < C; c++) {
    t0[c] = t1[c] = 0;
    k[c] = gamma[c] / __builtin_sqrtf(var[c] + eps);
  }
  for (int b0 = 0; b0 < P; b0 += BLOCK) {
    int b1 = b0 + BLOCK < P ? b0 + BLOCK : P;
    zero(p0, C); zero(p1, C);
    for (int p = b0; p < b1; p++) {
      const f32 *g = dy + (long)p * C, *r = x + (long)p * C;
      f32 *o = dx + (long)p * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        v128_t gv = wasm_v128_load(g + c);
        v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
        if (act) gv = wasm_v128_and(act_mask(wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(k + c)), wasm_v128_load(beta + c)), h, act), gv);
        wasm_v128_store(o + c, wasm_f32x4_mul(gv, wasm_v128_load(k + c)));
        wasm_v128_store(p0 + c, wasm_f32x4_add(wasm_v128_load(p0 + c), gv));
        wasm_v128_store(p1 + c, wasm_f32x4_add(wasm_v128_load(p1 + c), wasm_f32x4_mul(gv, d)));
      }
      for (; c < C; c++) {
        f32 gc = act ? act_mask1(g[c], (r[c] - mean[c]) * k[c] + beta[c], hi, act) : g[c];
        o[c] = gc * k[c]; p0[c] += gc; p1[c] += gc * (r[c] - mean[c]);
      }
    }
    for (int c = 0; c < C; c++) { t0[c] += p0[c]; t1[c] += p1[c]; }
  }
  for (int c = 0; c < C; c++) {
    dbeta[c] = (f32)t0[c];
    dgamma[c] = (f32)(t1[c] / __builtin_sqrt((double)var[c] + eps));
  }
}

/* y = min(max(x, 0), hi) (hi = +inf for plain ReLU). */
EXPORT(clamp_fwd)
void clamp_fwd(const f32 *x, f32 *y, int n, f32 hi) {
  v128_t z = wasm_f32x4_splat(0), h = wasm_f32x4_splat(hi);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_pmin(h, wasm_f32x4_pmax(z, wasm_v128_load(x + i))));
  for (; i < n; i++) { f32 v = x[i] > 0 ? x[i] : 0; y[i] = v < hi ? v : hi; }
}

/* dx = dy where 0 < x < hi (or x <= hi when hiInclusive), else 0: the masks tfjs's relu/clip/minimum grads use. */
EXPORT(clamp_bwd)
void clamp_bwd(const f32 *dy, const f32 *x, f32 *dx, int n, f32 hi, int hiInclusive) {
  v128_t z = wasm_f32x4_splat(0), h = wasm_f32x4_splat(hi);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i);
    v128_t m = wasm_v128_and(wasm_f32x4_gt(xv, z), hiInclusive ? wasm_f32x4_le(xv, h) : wasm_f32x4_lt(xv, h));
    wasm_v128_store(dx + i, wasm_v128_and(m, wasm_v128_load(dy + i)));
  }
  for (; i < n; i++) dx[i] = (x[i] > 0 && (hiInclusive ? x[i] <= hi : x[i] < hi)) ? dy[i] : 0;
}

/*
 * Inference BatchNorm with given statistics: y = (x - mean) * (scale / sqrt(var + eps)) + offset over
 * [P, C], clamped when act != 0 (act_clamp). scale/offset may be 0 (absent → 1 / 0). tmp: 8*C bytes of scratch.
 */
EXPORT(bn_infer)
void bn_infer(const f32 *x, const f32 *mean, const f32 *var, const f32 *offset, const f32 *scale, f32 *y,
              f32 *tmp, int P, int C, f32 eps, f32 hi, int act) {
  f32 *k = tmp, *b = tmp + C;
  for (int c = 0; c < C; c++) {
    k[c] = (scale ? scale[c] : 1.0f) / __builtin_sqrtf(var[c] + eps);
    b[c] = offset ? offset[c] : 0.0f;
  }
  normalize_rows(x, mean, k, b, y, P, C, hi, act);
}

/* ------------------------------------------------------------------------------------------------
 * dW as a cache-blocked GEMM: dW[M=KH*KW*CI, CO] = sum over pixel tiles of A_tile^T * dy_tile, where
 * A_tile is the im2col of PTILE output pixels packed as [M4/4][PTILE][4] (M4 = M rounded up to 4; padded rows
 * are zero) and dy_tile is simply PTILE consecutive rows of dy. The micro-kernel holds a 4(m) x 8(co)
 * block of dW in registers across the PTILE pixels, so per tile dW is read and written once and A/dy
 * come from L1/L2. pack: caller scratch of M4*PTILE floats.
 * ------------------------------------------------------------------------------------------------ */
#define PTILE 128

static void pack_im2col(const f32 *x, f32 *pack, int p0, int np, int H, int W, int CI, int OH, int OW, int KH,
                        int KW, int SH, int SW, int PTOP, int PLEFT, int M4) {
  const int M = KH * KW * CI;
  const int n0 = p0 / (OH * OW), rem0 = p0 % (OH * OW), oh0 = rem0 / OW, ow0 = rem0 % OW;
  if ((CI & 3) == 0) {
    /* one 4-channel group of one tap at a time, pixels inner: each group's PTILE x 4 block is written
       sequentially (pixel-major writes hop across all M4/4 blocks: 1.3 ns a float on ResNet's 56x56x64) */
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        for (int ci = 0; ci < CI; ci += 4) {
          f32 *dst = pack + (((kh * KW + kw) * CI + ci) >> 2) * PTILE * 4;
          int n = n0, oh = oh0, ow = ow0;
          for (int p = 0; p < np; p++, dst += 4) {
            int ih = oh * SH + kh - PTOP, iw = ow * SW + kw - PLEFT;
            int ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
            wasm_v128_store(dst, ok ? wasm_v128_load(x + ((n * H + ih) * W + iw) * CI + ci) : wasm_f32x4_splat(0));
            if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
          }
        }
      }
    }
    return;
  }
  /* any channel count (the 3-channel stems). Within one filter row kh the KW*CI values a pixel reads are contiguous
     in x, so a group of 4 rows of A that lies in one filter row is one unaligned SIMD load wherever its taps are
     inside the image (all of them for a pre-padded 'valid' stem). Groups straddling two filter rows (6 of the 37
     of ResNet's 7x7x3 stem), the zero rows past M and taps in the padding: one (tap, channel) at a time. */
  const int RW = KW * CI;
  for (int g = 0; g < M4; g += 4) {
    f32 *dst = pack + (g >> 2) * PTILE * 4;
    const int kh = g / RW, r0 = g % RW;
    if (g + 4 <= M && r0 + 4 <= RW) {
      const int kwlo = r0 / CI, kwhi = (r0 + 3) / CI;
      int n = n0, oh = oh0, ow = ow0;
      for (int p = 0; p < np; p++, dst += 4) {
        const int ih = oh * SH + kh - PTOP, iw0 = ow * SW - PLEFT;
        if (ih >= 0 && ih < H && iw0 + kwlo >= 0 && iw0 + kwhi < W) {
          wasm_v128_store(dst, wasm_v128_load(x + ((n * H + ih) * W + iw0) * CI + r0));
        } else {
          for (int j = 0; j < 4; j++) {
            const int iw = iw0 + (r0 + j) / CI;
            dst[j] = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[((n * H + ih) * W + iw) * CI + (r0 + j) % CI] : 0;
          }
        }
        if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
      }
      continue;
    }
    for (int m = g; m < g + 4; m++) {
      f32 *d = dst + (m & 3);
      if (m >= M) { for (int p = 0; p < np; p++) d[4 * p] = 0; continue; }
      const int tap = m / CI, ci = m % CI, kh1 = tap / KW, kw = tap % KW;
      int n = n0, oh = oh0, ow = ow0;
      for (int p = 0; p < np; p++, d += 4) {
        int ih = oh * SH + kh1 - PTOP, iw = ow * SW + kw - PLEFT;
        *d = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[((n * H + ih) * W + iw) * CI + ci] : 0;
        if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
      }
    }
  }
}

/*
 * dX as a cache-blocked GEMM + col2im: per tile of PTILE output pixels, cols[PTILE, M8] = dy_tile[PTILE, CO] *
 * W^T[CO, M] (M = KH*KW*CI), then each pixel's M values are scatter-added to the input pixels its taps
 * read. W^T is packed once into panels [M8/8][CO][8] so one panel (8 rows of M) stays in L1 while all
 * pixel blocks of the tile stream past it. Register block: 4 pixels x 8 m.
 * scratch: (M8*CO + PTILE*M8) floats, M8 = M rounded up to 8.
 */
EXPORT(conv2d_bp_input)
void conv2d_bp_input(const f32 *dy, const f32 *w, f32 *dx, f32 *scratch, int N, int H, int W, int CI, int OH,
                        int OW, int CO, int KH, int KW, int SH, int SW, int PTOP, int PLEFT) {
  const int M = KH * KW * CI, M8 = (M + 7) & ~7, P = N * OH * OW;
  f32 *panel = scratch, *cols = scratch + M8 * CO;
  for (int m0 = 0; m0 < M8; m0 += 8)
    for (int co = 0; co < CO; co++)
      for (int j = 0; j < 8; j++) panel[(m0 * CO) + co * 8 + j] = m0 + j < M ? w[(m0 + j) * CO + co] : 0;
  zero(dx, N * H * W * CI);
  for (int p0 = 0; p0 < P; p0 += PTILE) {
    const int np = P - p0 < PTILE ? P - p0 : PTILE;
    const f32 *B = dy + p0 * CO;
    for (int m0 = 0; m0 < M8; m0 += 8) {
      const f32 *pn = panel + m0 * CO;
      int p = 0;
      for (; p + 4 <= np; p += 4) {
        v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const f32 *d = B + p * CO, *wp = pn;
        for (int co = 0; co < CO; co++, wp += 8) {
          GEMM4X8_STEP(d + co, d + CO + co, d + 2 * CO + co, d + 3 * CO + co, wp);
        }
        f32 *c = cols + p * M8 + m0;
        wasm_v128_store(c, a00); wasm_v128_store(c + 4, a01); c += M8;
        wasm_v128_store(c, a10); wasm_v128_store(c + 4, a11); c += M8;
        wasm_v128_store(c, a20); wasm_v128_store(c + 4, a21); c += M8;
        wasm_v128_store(c, a30); wasm_v128_store(c + 4, a31);
      }
      for (; p < np; p++) {
        v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
        const f32 *d = B + p * CO, *wp = pn;
        for (int co = 0; co < CO; co++, wp += 8) {
          v128_t dv = wasm_v128_load32_splat(d + co);
          a0 = MADD(a0, dv, wasm_v128_load(wp));
          a1 = MADD(a1, dv, wasm_v128_load(wp + 4));
        }
        f32 *c = cols + p * M8 + m0;
        wasm_v128_store(c, a0); wasm_v128_store(c + 4, a1);
      }
    }
    /* col2im: scatter-add each pixel's taps into dx */
    int n = p0 / (OH * OW), rem = p0 % (OH * OW), oh = rem / OW, ow = rem % OW;
    for (int p = 0; p < np; p++) {
      const f32 *c = cols + p * M8;
      for (int kh = 0; kh < KH; kh++) {
        int ih = oh * SH + kh - PTOP;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
          int iw = ow * SW + kw - PLEFT;
          if (iw < 0 || iw >= W) continue;
          f32 *o = dx + ((n * H + ih) * W + iw) * CI;
          const f32 *s = c + (kh * KW + kw) * CI;
          int ci = 0;
          for (; ci + 4 <= CI; ci += 4) wasm_v128_store(o + ci, wasm_f32x4_add(wasm_v128_load(o + ci), wasm_v128_load(s + ci)));
          for (; ci < CI; ci++) o[ci] += s[ci];
        }
      }
      if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
    }
  }
}

/*
 * 4-D slice of 32-bit elements: out = x[b0:b0+z0, b1:b1+z1, b2:b2+z2, b3:b3+z3] (x shape s0..s3), one
 * memory.copy per contiguous run. tfjs-wasm's Slice copies each innermost row from JavaScript, which
 * made the gradient of ZeroPadding2D (a slice of the whole activation) cost ~30 ms a call.
 */
EXPORT(slice4)
void slice4(const f32 *x, f32 *out, int s1, int s2, int s3, int b0, int b1, int b2, int b3, int z0, int z1, int z2,
            int z3) {
  const int rowFull = b3 == 0 && z3 == s3;
  for (int i = 0; i < z0; i++)
    for (int j = 0; j < z1; j++) {
      const f32 *src = x + (((long)(b0 + i) * s1 + (b1 + j)) * s2 + b2) * s3 + b3;
      if (rowFull) {
        __builtin_memcpy(out, src, (unsigned)z2 * z3 * sizeof(f32));
        out += z2 * z3;
      } else {
        for (int k = 0; k < z2; k++, src += s3, out += z3) __builtin_memcpy(out, src, (unsigned)z3 * sizeof(f32));
      }
    }
}

/*
 * 4-D tile of 32-bit elements: out[i,j,k,l] = x[i%s0, j%s1, k%s2, l%s3], out shape o0..o3 (multiples of
 * s). tfjs's own BatchNorm gradient broadcasts with Tile (used when BN runs with given statistics and
 * its layer trains); tfjs-wasm's generic Tile computes an index per element.
 */
EXPORT(tile4)
void tile4(const f32 *x, f32 *out, int s0, int s1, int s2, int s3, int o0, int o1, int o2, int o3) {
  for (int i = 0; i < o0; i++)
    for (int j = 0; j < o1; j++)
      for (int k = 0; k < o2; k++) {
        const f32 *src = x + (((i % s0) * s1 + (j % s1)) * s2 + (k % s2)) * s3;
        for (int l = 0; l < o3; l += s3, out += s3) __builtin_memcpy(out, src, (unsigned)s3 * sizeof(f32));
      }
}

/*
 * Depthwise dW for the 3x3, multiplier-1, C % 4 == 0 case MobileNets use: for each block of 4 channels
 * the 9 tap accumulators stay in registers across all output pixels (interior pixels unrolled, border
 * pixels checked per tap), so dW is stored once instead of read-modify-written 9 times per pixel.
 */
EXPORT(dw_bp_filter_3x3)
void dw_bp_filter_3x3(const f32 *x, const f32 *dy, f32 *dw, int N, int H, int W, int C, int OH, int OW, int SH,
                      int SW, int PT, int PL) {
  for (int c0 = 0; c0 < C; c0 += 4) {
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0;
    for (int n = 0; n < N; n++)
      for (int oh = 0; oh < OH; oh++) {
        const int ih0 = oh * SH - PT;
        const int rowsIn = ih0 >= 0 && ih0 + 2 < H;
        const f32 *dp = dy + ((n * OH + oh) * OW) * C + c0;
        for (int ow = 0; ow < OW; ow++, dp += C) {
          const int iw0 = ow * SW - PL;
          const v128_t d = wasm_v128_load(dp);
          if (rowsIn && iw0 >= 0 && iw0 + 2 < W) {
            const f32 *b = x + ((n * H + ih0) * W + iw0) * C + c0;
            a0 = MADD(a0, wasm_v128_load(b), d);
            a1 = MADD(a1, wasm_v128_load(b + C), d);
            a2 = MADD(a2, wasm_v128_load(b + 2 * C), d);
            b += W * C;
            a3 = MADD(a3, wasm_v128_load(b), d);
            a4 = MADD(a4, wasm_v128_load(b + C), d);
            a5 = MADD(a5, wasm_v128_load(b + 2 * C), d);
            b += W * C;
            a6 = MADD(a6, wasm_v128_load(b), d);
            a7 = MADD(a7, wasm_v128_load(b + C), d);
            a8 = MADD(a8, wasm_v128_load(b + 2 * C), d);
          } else {
#define TAP(acc, kh, kw) do { int ih = ih0 + (kh), iw = iw0 + (kw); \
    if (ih >= 0 && ih < H && iw >= 0 && iw < W) \
      acc = MADD(acc, wasm_v128_load(x + ((n * H + ih) * W + iw) * C + c0), d); } while (0)
            TAP(a0, 0, 0); TAP(a1, 0, 1); TAP(a2, 0, 2);
            TAP(a3, 1, 0); TAP(a4, 1, 1); TAP(a5, 1, 2);
            TAP(a6, 2, 0); TAP(a7, 2, 1); TAP(a8, 2, 2);
#undef TAP
          }
        }
      }
    wasm_v128_store(dw + 0 * C + c0, a0); wasm_v128_store(dw + 1 * C + c0, a1); wasm_v128_store(dw + 2 * C + c0, a2);
    wasm_v128_store(dw + 3 * C + c0, a3); wasm_v128_store(dw + 4 * C + c0, a4); wasm_v128_store(dw + 5 * C + c0, a5);
    wasm_v128_store(dw + 6 * C + c0, a6); wasm_v128_store(dw + 7 * C + c0, a7); wasm_v128_store(dw + 8 * C + c0, a8);
  }
}

/*
 * MaxPool dX (dilation 1): each dy goes to the first maximum of its window in (kh, kw) scan order,
 * the rule tfjs's cpu backend uses (strict >, so ties keep the earlier tap; an all -inf/NaN window
 * gets nothing). SIMD over 4 channels tracks the best value and the flat x offset it came from.
 */
EXPORT(maxpool_bp)
void maxpool_bp(const f32 *x, const f32 *dy, f32 *dx, int N, int H, int W, int C, int OH, int OW, int KH, int KW,
                int SH, int SW, int PTOP, int PLEFT) {
  zero(dx, N * H * W * C);
  const v128_t lanes = wasm_i32x4_make(0, 1, 2, 3);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const f32 *d = dy + ((n * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          v128_t best = wasm_f32x4_splat(-__builtin_inff()), at = wasm_i32x4_splat(-1);
          for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH + kh - PTOP;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
              int iw = ow * SW + kw - PLEFT;
              if (iw < 0 || iw >= W) continue;
              int off = ((n * H + ih) * W + iw) * C + c;
              v128_t v = wasm_v128_load(x + off);
              v128_t m = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, m);
              at = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(off), lanes), at, m);
            }
          }
          int a0 = wasm_i32x4_extract_lane(at, 0), a1 = wasm_i32x4_extract_lane(at, 1);
          int a2 = wasm_i32x4_extract_lane(at, 2), a3 = wasm_i32x4_extract_lane(at, 3);
          if (a0 >= 0) dx[a0] += d[c];
          if (a1 >= 0) dx[a1] += d[c + 1];
          if (a2 >= 0) dx[a2] += d[c + 2];
          if (a3 >= 0) dx[a3] += d[c + 3];
        }
        for (; c < C; c++) {
          f32 best = -__builtin_inff();
          int at = -1;
          for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH + kh - PTOP;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
              int iw = ow * SW + kw - PLEFT;
              if (iw < 0 || iw >= W) continue;
              int off = ((n * H + ih) * W + iw) * C + c;
              if (x[off] > best) { best = x[off]; at = off; }
            }
          }
          if (at >= 0) dx[at] += d[c];
        }
      }
}

/*
 * Forward convolution y = act(conv(x, w) + bias) as a cache-blocked GEMM, the mirror of conv2d_bp_input:
 * per tile of PT output pixels, cols[PT][M] = im2col(x) (M = KH*KW*CI; skipped for 1x1 stride-1 unpadded
 * convolutions, whose rows of x are the rows of cols), then y_tile[PT][CO] = cols * W with W packed once
 * into 8-wide column panels [CO8/8][M][8]. The reduction runs in chunks of KC so one panel chunk (KC*8
 * floats) stays in L1 while every 4-pixel block of the tile streams past it; the 4x8 register block is
 * initialised with the bias (first chunk) or the partial sums in y (later chunks), and the activation is
 * applied after the last chunk. act: 0 linear, 1 relu, 2 relu6.
 * scratch: M*CO8 (panels) + PT*M (cols) floats, CO8 = CO rounded up to 8; PT is chosen by the caller.
 * ------------------------------------------------------------------------------------------------ */
#define FWD_KC 512

static inline v128_t act_apply(v128_t v, int act) {
  if (act == 0) return v;
  v = wasm_f32x4_pmax(v, wasm_f32x4_splat(0));
  return act == 2 ? wasm_f32x4_pmin(v, wasm_f32x4_splat(6)) : v;
}

/* store the first `n` (1..8) lanes of (u, v) at o */
static inline void store_partial8(f32 *o, v128_t u, v128_t v, int n) {
  if (n >= 8) { wasm_v128_store(o, u); wasm_v128_store(o + 4, v); return; }
  if (n >= 4) { wasm_v128_store(o, u); o += 4; u = v; n -= 4; }
  if (n > 0) o[0] = wasm_f32x4_extract_lane(u, 0);
  if (n > 1) o[1] = wasm_f32x4_extract_lane(u, 1);
  if (n > 2) o[2] = wasm_f32x4_extract_lane(u, 2);
}

static inline v128_t load_partial4(const f32 *p, int n) {
  if (n >= 4) return wasm_v128_load(p);
  v128_t r = wasm_f32x4_splat(0);
  if (n > 0) r = wasm_f32x4_replace_lane(r, 0, p[0]);
  if (n > 1) r = wasm_f32x4_replace_lane(r, 1, p[1]);
  if (n > 2) r = wasm_f32x4_replace_lane(r, 2, p[2]);
  return r;
}

static inline void load_partial8(const f32 *p, int n, v128_t *u, v128_t *v) {
  *u = load_partial4(p, n);
  *v = n > 4 ? load_partial4(p + 4, n - 4) : wasm_f32x4_splat(0);
}

/* d[0..n) = s[0..n) in 4-float SIMD moves, the last one overlapping (runs of 3-21 floats: memory.copy costs more) */
static inline void copy_f32(f32 *d, const f32 *s, int n) {
  if (n < 4) { for (int i = 0; i < n; i++) d[i] = s[i]; return; }
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(d + i, wasm_v128_load(s + i));
  if (i < n) wasm_v128_store(d + n - 4, wasm_v128_load(s + n - 4));
}

static void im2col_rows(const f32 *x, f32 *cols, int p0, int np, int H, int W, int CI, int OH, int OW, int KH,
                        int KW, int SH, int SW, int PTOP, int PLEFT) {
  const int M = KH * KW * CI;
  int n = p0 / (OH * OW), rem = p0 % (OH * OW), oh = rem / OW, ow = rem % OW;
  for (int p = 0; p < np; p++) {
    f32 *dst = cols + p * M;
    const int iw0 = ow * SW - PLEFT, inside = iw0 >= 0 && iw0 + KW <= W;
    for (int kh = 0; kh < KH; kh++) {
      int ih = oh * SH + kh - PTOP;
      if (ih < 0 || ih >= H) { zero(dst, KW * CI); dst += KW * CI; continue; }
      /* the filter row's KW*CI values are contiguous in x: one copy (3-channel stems: 21 floats, not 7 x 3) */
      if (inside) { copy_f32(dst, x + ((n * H + ih) * W + iw0) * CI, KW * CI); dst += KW * CI; continue; }
      for (int kw = 0; kw < KW; kw++, dst += CI) {
        int iw = iw0 + kw;
        if (iw < 0 || iw >= W) { zero(dst, CI); continue; }
        copy_f32(dst, x + ((n * H + ih) * W + iw) * CI, CI);
      }
    }
    if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
  }
}

EXPORT(conv2d_fwd)
void conv2d_fwd(const f32 *x, const f32 *w, const f32 *bias, f32 *y, f32 *scratch, int N, int H, int W, int CI,
                int OH, int OW, int CO, int KH, int KW, int SH, int SW, int PTOP, int PLEFT, int act, int PT) {
  const int M = KH * KW * CI, CO8 = (CO + 7) & ~7, P = N * OH * OW;
  const int direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PTOP == 0 && PLEFT == 0;
  f32 *panel = scratch, *colbuf = scratch + M * CO8;
  for (int c0 = 0; c0 < CO8; c0 += 8)
    for (int m = 0; m < M; m++)
      for (int j = 0; j < 8; j++) panel[c0 * M + m * 8 + j] = c0 + j < CO ? w[m * CO + c0 + j] : 0;
  for (int p0 = 0; p0 < P; p0 += PT) {
    const int np = P - p0 < PT ? P - p0 : PT;
    const f32 *cols = colbuf;
    if (direct) cols = x + p0 * CI;
    else im2col_rows(x, colbuf, p0, np, H, W, CI, OH, OW, KH, KW, SH, SW, PTOP, PLEFT);
    for (int k0 = 0; k0 < M; k0 += FWD_KC) {
      const int kc = M - k0 < FWD_KC ? M - k0 : FWD_KC;
      const int first = k0 == 0, last = k0 + kc == M;
      for (int c0 = 0; c0 < CO8; c0 += 8) {
        const f32 *pn = panel + c0 * M + k0 * 8;
        const int nc = CO - c0 < 8 ? CO - c0 : 8;
        v128_t b0 = wasm_f32x4_splat(0), b1 = b0;
        if (first && bias) load_partial8(bias + c0, nc, &b0, &b1);
        int p = 0;
        for (; p + 4 <= np; p += 4) {
          f32 *o = y + (p0 + p) * CO + c0;
          v128_t a00, a01, a10, a11, a20, a21, a30, a31;
          if (first) { a00 = a10 = a20 = a30 = b0; a01 = a11 = a21 = a31 = b1; }
          else {
            load_partial8(o, nc, &a00, &a01); load_partial8(o + CO, nc, &a10, &a11);
            load_partial8(o + 2 * CO, nc, &a20, &a21); load_partial8(o + 3 * CO, nc, &a30, &a31);
          }
          const f32 *c = cols + p * M + k0, *wp = pn;
          for (int m = 0; m < kc; m++, wp += 8) {
            GEMM4X8_STEP(c + m, c + M + m, c + 2 * M + m, c + 3 * M + m, wp);
          }
          if (last) {
            a00 = act_apply(a00, act); a01 = act_apply(a01, act); a10 = act_apply(a10, act); a11 = act_apply(a11, act);
            a20 = act_apply(a20, act); a21 = act_apply(a21, act); a30 = act_apply(a30, act); a31 = act_apply(a31, act);
          }
          store_partial8(o, a00, a01, nc); store_partial8(o + CO, a10, a11, nc);
          store_partial8(o + 2 * CO, a20, a21, nc); store_partial8(o + 3 * CO, a30, a31, nc);
        }
        for (; p < np; p++) {
          f32 *o = y + (p0 + p) * CO + c0;
          v128_t a0, a1;
          if (first) { a0 = b0; a1 = b1; } else load_partial8(o, nc, &a0, &a1);
          const f32 *c = cols + p * M + k0, *wp = pn;
          for (int m = 0; m < kc; m++, wp += 8) {
            v128_t dv = wasm_v128_load32_splat(c + m);
            a0 = MADD(a0, dv, wasm_v128_load(wp));
            a1 = MADD(a1, dv, wasm_v128_load(wp + 4));
          }
          if (last) { a0 = act_apply(a0, act); a1 = act_apply(a1, act); }
          store_partial8(o, a0, a1, nc);
        }
      }
    }
  }
}

/*
 * dW = im2col(x)^T * dy, per tile of PTILE output pixels (the layout comment above conv2d_bp_filter's packing
 * helper). The dy tile is packed too, into 8-wide column panels [CO8/8][PTILE][8], so the micro-kernel's two
 * streams (4 im2col values and 8 dy values per pixel) are both sequential and L1-resident: read in place, each
 * pixel's 8 dy values sat in their own cache line of a CO-wide row, and a 64-channel dy tile (32 KB) filled L1.
 * pack: M4*PTILE + PTILE*CO8 floats.
 */
EXPORT(conv2d_bp_filter)
void conv2d_bp_filter(const f32 *x, const f32 *dy, f32 *dw, f32 *pack, int N, int H, int W, int CI, int OH,
                         int OW, int CO, int KH, int KW, int SH, int SW, int PTOP, int PLEFT) {
  const int M = KH * KW * CI, M4 = (M + 3) & ~3, P = N * OH * OW, CO8 = (CO + 7) & ~7;
  f32 *dpack = pack + M4 * PTILE;
  zero(dw, M * CO);
  for (int p0 = 0; p0 < P; p0 += PTILE) {
    const int np = P - p0 < PTILE ? P - p0 : PTILE;
    pack_im2col(x, pack, p0, np, H, W, CI, OH, OW, KH, KW, SH, SW, PTOP, PLEFT, M4);
    for (int c0 = 0; c0 < CO8; c0 += 8) {
      const int nc = CO - c0 < 8 ? CO - c0 : 8;
      f32 *dst = dpack + (c0 >> 3) * PTILE * 8;
      const f32 *src = dy + p0 * CO + c0;
      for (int p = 0; p < np; p++, dst += 8, src += CO) {
        v128_t u, v;
        load_partial8(src, nc, &u, &v);
        wasm_v128_store(dst, u); wasm_v128_store(dst + 4, v);
      }
    }
    for (int m0 = 0; m0 < M4; m0 += 4) {
      const f32 *A = pack + (m0 >> 2) * PTILE * 4;
      const int rows = M - m0 < 4 ? M - m0 : 4;
      for (int c0 = 0; c0 < CO8; c0 += 8) {
        const int nc = CO - c0 < 8 ? CO - c0 : 8;
        v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const f32 *ap = A, *bp = dpack + (c0 >> 3) * PTILE * 8;
        for (int p = 0; p < np; p++, ap += 4, bp += 8) {
          GEMM4X8_STEP(ap, ap + 1, ap + 2, ap + 3, bp);
        }
        f32 *o = dw + m0 * CO + c0;
        v128_t u, v;
#define ACC8(r, s0, s1) do { load_partial8(o + (r) * CO, nc, &u, &v); \
    store_partial8(o + (r) * CO, wasm_f32x4_add(u, s0), wasm_f32x4_add(v, s1), nc); } while (0)
        ACC8(0, a00, a01);
        if (rows > 1) ACC8(1, a10, a11);
        if (rows > 2) ACC8(2, a20, a21);
        if (rows > 3) ACC8(3, a30, a31);
#undef ACC8
      }
    }
  }
}
