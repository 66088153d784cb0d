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

#define EXPORT(name) __attribute__((export_name(#name)))
typedef float f32;

static inline void zero(f32 *p, int n) { __builtin_memset(p, 0, (unsigned)n * sizeof(f32)); }

/* acc[i] += a * v[i], i < n (SIMD with scalar tail). */
static inline void axpy(f32 *restrict acc, const f32 *restrict v, f32 a, int n) {
  int i = 0;
  v128_t va = wasm_f32x4_splat(a);
  for (; i + 4 <= n; i += 4) {
    v128_t s = wasm_v128_load(acc + i);
    s = wasm_f32x4_add(s, wasm_f32x4_mul(va, wasm_v128_load(v + i)));
    wasm_v128_store(acc + i, s);
  }
  for (; i < n; i++) acc[i] += a * v[i];
}

/* acc[i] += u[i] * v[i], i < n. */
static inline void fma_vv(f32 *restrict acc, const f32 *restrict u, const f32 *restrict v, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t s = wasm_v128_load(acc + i);
    s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(u + i), wasm_v128_load(v + i)));
    wasm_v128_store(acc + i, s);
  }
  for (; i < n; i++) acc[i] += u[i] * v[i];
}

/*
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*SH+kh-PT, ow*SW+kw-PL, ci] * dy[n,oh,ow,co]
 * Scatter form: one rank-1 update of dW's (kh,kw) slice per output pixel and tap.
 */
EXPORT(conv2d_bp_filter)
void conv2d_bp_filter(const f32 *x, const f32 *dy, f32 *dw, int N, int H, int W, int CI, int OH, int OW,
                      int CO, int KH, int KW, int SH, int SW, int PT, int PL) {
  zero(dw, KH * KW * CI * CO);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const f32 *dyp = dy + ((n * OH + oh) * OW + ow) * CO;
        for (int kh = 0; kh < KH; kh++) {
          int ih = oh * SH + kh - PT;
          if (ih < 0 || ih >= H) continue;
          for (int kw = 0; kw < KW; kw++) {
            int iw = ow * SW + kw - PL;
            if (iw < 0 || iw >= W) continue;
            const f32 *xp = x + ((n * H + ih) * W + iw) * CI;
            f32 *dwp = dw + (kh * KW + kw) * CI * CO;
            for (int ci = 0; ci < CI; ci++) axpy(dwp + ci * CO, dyp, xp[ci], CO);
          }
        }
      }
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
 * Blocked convolution gradients (milestone B). Both work tap by tap: for one filter tap (kh,kw) the
 * output pixels of a row `oh` whose input column is inside the image form a run with constant strides,
 * so the inner loops are branch-free and keep their accumulators in SIMD registers.
 * ------------------------------------------------------------------------------------------------ */

/* First and one-past-last ow whose input column iw = ow*SW + kw - PL lies in [0, W). */
static inline int ow_lo(int kw, int SW, int PL) {
  int t = PL - kw; /* need ow*SW >= t */
  return t <= 0 ? 0 : (t + SW - 1) / SW;
}
static inline int ow_hi(int kw, int SW, int PL, int W, int OW) {
  int t = W - 1 + PL - kw; /* need ow*SW <= t */
  if (t < 0) return 0;
  int h = t / SW + 1;
  return h < OW ? h : OW;
}

/*
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n,ih,iw,ci] * dy[n,oh,ow,co]: a 4(ci) x 8(co) register block is
 * accumulated over every output pixel of the tap before it is stored, so dW is written once.
 */
EXPORT(conv2d_bp_filter_v2)
void conv2d_bp_filter_v2(const f32 *x, const f32 *dy, f32 *dw, int N, int H, int W, int CI, int OH, int OW,
                         int CO, int KH, int KW, int SH, int SW, int PT, int PL) {
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++) {
      const int lo = ow_lo(kw, SW, PL), hi = ow_hi(kw, SW, PL, W, OW);
      f32 *dwt = dw + (kh * KW + kw) * CI * CO;
      const int xs = SW * CI; /* x step between consecutive ow */
      int ci0 = 0;
      for (; ci0 + 4 <= CI; ci0 += 4) {
        int co0 = 0;
        for (; co0 + 8 <= CO; co0 += 8) {
          v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
          for (int n = 0; n < N; n++)
            for (int oh = 0; oh < OH; oh++) {
              int ih = oh * SH + kh - PT;
              if (ih < 0 || ih >= H || lo >= hi) continue;
              const f32 *xp = x + ((n * H + ih) * W + (lo * SW + kw - PL)) * CI + ci0;
              const f32 *dp = dy + ((n * OH + oh) * OW + lo) * CO + co0;
              for (int ow = lo; ow < hi; ow++, xp += xs, dp += CO) {
                v128_t d0 = wasm_v128_load(dp), d1 = wasm_v128_load(dp + 4);
                v128_t x0 = wasm_f32x4_splat(xp[0]), x1 = wasm_f32x4_splat(xp[1]);
                v128_t x2 = wasm_f32x4_splat(xp[2]), x3 = wasm_f32x4_splat(xp[3]);
                a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, d0)); a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, d1));
                a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, d0)); a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, d1));
                a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, d0)); a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, d1));
                a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, d0)); a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, d1));
              }
            }
          f32 *o = dwt + ci0 * CO + co0;
          wasm_v128_store(o, a00); wasm_v128_store(o + 4, a01); o += CO;
          wasm_v128_store(o, a10); wasm_v128_store(o + 4, a11); o += CO;
          wasm_v128_store(o, a20); wasm_v128_store(o + 4, a21); o += CO;
          wasm_v128_store(o, a30); wasm_v128_store(o + 4, a31);
        }
        for (; co0 < CO; co0++) { /* co tail: scalar, 4 ci at once */
          f32 s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (int n = 0; n < N; n++)
            for (int oh = 0; oh < OH; oh++) {
              int ih = oh * SH + kh - PT;
              if (ih < 0 || ih >= H || lo >= hi) continue;
              const f32 *xp = x + ((n * H + ih) * W + (lo * SW + kw - PL)) * CI + ci0;
              const f32 *dp = dy + ((n * OH + oh) * OW + lo) * CO + co0;
              for (int ow = lo; ow < hi; ow++, xp += xs, dp += CO) {
                f32 d = *dp;
                s0 += xp[0] * d; s1 += xp[1] * d; s2 += xp[2] * d; s3 += xp[3] * d;
              }
            }
          f32 *o = dwt + ci0 * CO + co0;
          o[0] = s0; o[CO] = s1; o[2 * CO] = s2; o[3 * CO] = s3;
        }
      }
      for (; ci0 < CI; ci0++) { /* ci tail (e.g. RGB input): one ci row, 4 co at a time */
        int co0 = 0;
        for (; co0 + 4 <= CO; co0 += 4) {
          v128_t a = wasm_f32x4_splat(0);
          for (int n = 0; n < N; n++)
            for (int oh = 0; oh < OH; oh++) {
              int ih = oh * SH + kh - PT;
              if (ih < 0 || ih >= H || lo >= hi) continue;
              const f32 *xp = x + ((n * H + ih) * W + (lo * SW + kw - PL)) * CI + ci0;
              const f32 *dp = dy + ((n * OH + oh) * OW + lo) * CO + co0;
              for (int ow = lo; ow < hi; ow++, xp += xs, dp += CO)
                a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_f32x4_splat(*xp), wasm_v128_load(dp)));
            }
          wasm_v128_store(dwt + ci0 * CO + co0, a);
        }
        for (; co0 < CO; co0++) {
          f32 s = 0;
          for (int n = 0; n < N; n++)
            for (int oh = 0; oh < OH; oh++) {
              int ih = oh * SH + kh - PT;
              if (ih < 0 || ih >= H || lo >= hi) continue;
              const f32 *xp = x + ((n * H + ih) * W + (lo * SW + kw - PL)) * CI + ci0;
              const f32 *dp = dy + ((n * OH + oh) * OW + lo) * CO + co0;
              for (int ow = lo; ow < hi; ow++, xp += xs, dp += CO) s += *xp * *dp;
            }
          dwt[ci0 * CO + co0] = s;
        }
      }
    }
}

/*
 * dX of a regular conv2d: dx[n,ih,iw,ci] += sum_co dy[n,oh,ow,co] * w[kh,kw,ci,co], tap by tap.
 * wt is caller-provided scratch of KH*KW*CO*CI floats that receives w transposed per tap to [co][ci],
 * so the inner loop reads contiguous ci vectors. Register block: 4 output pixels x 8 ci.
 */
EXPORT(conv2d_bp_input)
void conv2d_bp_input(const f32 *dy, const f32 *w, f32 *dx, f32 *wt, int N, int H, int W, int CI, int OH, int OW,
                     int CO, int KH, int KW, int SH, int SW, int PT, int PL) {
  for (int t = 0; t < KH * KW; t++)
    for (int ci = 0; ci < CI; ci++)
      for (int co = 0; co < CO; co++) wt[(t * CO + co) * CI + ci] = w[(t * CI + ci) * CO + co];
  zero(dx, N * H * W * CI);
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++) {
      const int lo = ow_lo(kw, SW, PL), hi = ow_hi(kw, SW, PL, W, OW);
      if (lo >= hi) continue;
      const f32 *wtt = wt + (kh * KW + kw) * CO * CI;
      const int xs = SW * CI;
      for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++) {
          int ih = oh * SH + kh - PT;
          if (ih < 0 || ih >= H) continue;
          f32 *xrow = dx + ((n * H + ih) * W + (lo * SW + kw - PL)) * CI;
          const f32 *drow = dy + ((n * OH + oh) * OW + lo) * CO;
          int ow = lo;
          for (; ow + 4 <= hi; ow += 4, xrow += 4 * xs, drow += 4 * CO) {
            int ci0 = 0;
            for (; ci0 + 8 <= CI; ci0 += 8) {
              v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
              const f32 *wp = wtt + ci0;
              for (int co = 0; co < CO; co++, wp += CI) {
                v128_t w0 = wasm_v128_load(wp), w1 = wasm_v128_load(wp + 4);
                v128_t d0 = wasm_f32x4_splat(drow[co]), d1 = wasm_f32x4_splat(drow[CO + co]);
                v128_t d2 = wasm_f32x4_splat(drow[2 * CO + co]), d3 = wasm_f32x4_splat(drow[3 * CO + co]);
                a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(d0, w0)); a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(d0, w1));
                a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(d1, w0)); a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(d1, w1));
                a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(d2, w0)); a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(d2, w1));
                a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(d3, w0)); a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(d3, w1));
              }
              f32 *o = xrow + ci0;
              wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), a00));
              wasm_v128_store(o + 4, wasm_f32x4_add(wasm_v128_load(o + 4), a01)); o += xs;
              wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), a10));
              wasm_v128_store(o + 4, wasm_f32x4_add(wasm_v128_load(o + 4), a11)); o += xs;
              wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), a20));
              wasm_v128_store(o + 4, wasm_f32x4_add(wasm_v128_load(o + 4), a21)); o += xs;
              wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), a30));
              wasm_v128_store(o + 4, wasm_f32x4_add(wasm_v128_load(o + 4), a31));
            }
            for (; ci0 < CI; ci0++) {
              f32 s0 = 0, s1 = 0, s2 = 0, s3 = 0;
              const f32 *wp = wtt + ci0;
              for (int co = 0; co < CO; co++, wp += CI) {
                f32 wv = *wp;
                s0 += drow[co] * wv; s1 += drow[CO + co] * wv; s2 += drow[2 * CO + co] * wv; s3 += drow[3 * CO + co] * wv;
              }
              xrow[ci0] += s0; xrow[xs + ci0] += s1; xrow[2 * xs + ci0] += s2; xrow[3 * xs + ci0] += s3;
            }
          }
          for (; ow < hi; ow++, xrow += xs, drow += CO) { /* pixel tail: one pixel, rank-1 updates */
            for (int co = 0; co < CO; co++) axpy(xrow, wtt + co * CI, drow[co], CI);
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

/* tot[c] += sum_p f(p, c) over rows, for f = x (mode 0), (x-m)^2 (mode 1); part is C floats of scratch. */
static void col_sums(const f32 *x, const f32 *m, double *tot, f32 *part, int P, int C, int mode) {
  for (int c = 0; c < C; c++) tot[c] = 0;
  for (int p0 = 0; p0 < P; p0 += BLOCK) {
    int p1 = p0 + BLOCK < P ? p0 + BLOCK : P;
    zero(part, C);
    for (int p = p0; p < p1; p++) {
      const f32 *r = x + (long)p * C;
      int c = 0;
      if (mode == 0) {
        for (; c + 4 <= C; c += 4) wasm_v128_store(part + c, wasm_f32x4_add(wasm_v128_load(part + c), wasm_v128_load(r + c)));
        for (; c < C; c++) part[c] += r[c];
      } else {
        for (; c + 4 <= C; c += 4) {
          v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(m + c));
          wasm_v128_store(part + c, wasm_f32x4_add(wasm_v128_load(part + c), wasm_f32x4_mul(d, d)));
        }
        for (; c < C; c++) { f32 d = r[c] - m[c]; part[c] += d * d; }
      }
    }
    for (int c = 0; c < C; c++) tot[c] += part[c];
  }
}

/*
 * y = (x - mean) * invstd * gamma + beta with batch statistics; also returns mean, biased variance
 * (what tf.moments gives, and what Keras feeds the moving averages) and invstd = 1/sqrt(var + eps).
 * scratch: 16*C bytes.
 */
EXPORT(bn_train_fwd)
void bn_train_fwd(const f32 *x, const f32 *gamma, const f32 *beta, f32 *y, f32 *mean, f32 *var, f32 *invstd,
                  void *scratch, int P, int C, f32 eps) {
  double *tot = (double *)scratch;
  f32 *part = (f32 *)(tot + C);
  f32 *scale = part + C;
  col_sums(x, 0, tot, part, P, C, 0);
  for (int c = 0; c < C; c++) mean[c] = (f32)(tot[c] / P);
  col_sums(x, mean, tot, part, P, C, 1);
  for (int c = 0; c < C; c++) {
    var[c] = (f32)(tot[c] / P);
    invstd[c] = 1.0f / __builtin_sqrtf(var[c] + eps);
    scale[c] = invstd[c] * gamma[c];
  }
  for (int p = 0; p < P; p++) {
    const f32 *r = x + (long)p * C;
    f32 *o = y + (long)p * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
      wasm_v128_store(o + c, wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(scale + c)), wasm_v128_load(beta + c)));
    }
    for (; c < C; c++) o[c] = (r[c] - mean[c]) * scale[c] + beta[c];
  }
}

/*
 * Full gradient of batch-statistics BatchNorm (through mean and variance):
 *   dbeta = sum dy, dgamma = sum dy*xhat,
 *   dx = gamma*invstd/P * (P*dy - dbeta - xhat*dgamma),  xhat = (x-mean)*invstd.
 * scratch: 24*C bytes.
 */
EXPORT(bn_train_bwd)
void bn_train_bwd(const f32 *dy, const f32 *x, const f32 *gamma, const f32 *mean, const f32 *invstd, f32 *dx,
                  f32 *dgamma, f32 *dbeta, void *scratch, int P, int C) {
  double *t0 = (double *)scratch, *t1 = t0 + C;
  f32 *p0 = (f32 *)(t1 + C), *p1 = p0 + C;
  for (int c = 0; c < C; c++) t0[c] = t1[c] = 0;
  for (int b0 = 0; b0 < P; b0 += BLOCK) {
    int b1 = b0 + BLOCK < P ? b0 + BLOCK : P;
    zero(p0, C); zero(p1, C);
    for (int p = b0; p < b1; p++) {
      const f32 *g = dy + (long)p * C, *r = x + (long)p * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        v128_t gv = wasm_v128_load(g + c);
        v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
        wasm_v128_store(p0 + c, wasm_f32x4_add(wasm_v128_load(p0 + c), gv));
        wasm_v128_store(p1 + c, wasm_f32x4_add(wasm_v128_load(p1 + c), wasm_f32x4_mul(gv, d)));
      }
      for (; c < C; c++) { p0[c] += g[c]; p1[c] += g[c] * (r[c] - mean[c]); }
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
  for (int p = 0; p < P; p++) {
    const f32 *g = dy + (long)p * C, *r = x + (long)p * C;
    f32 *o = dx + (long)p * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
      v128_t v = wasm_f32x4_mul(wasm_v128_load(g + c), wasm_v128_load(k1 + c));
      v = wasm_f32x4_add(v, wasm_f32x4_mul(d, wasm_v128_load(k2 + c)));
      wasm_v128_store(o + c, wasm_f32x4_add(v, wasm_v128_load(k3 + c)));
    }
    for (; c < C; c++) o[c] = g[c] * k1[c] + (r[c] - mean[c]) * k2[c] + k3[c];
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
 * [P, C]. scale/offset may be 0 (absent → 1 / 0). tmp: 8*C bytes of scratch.
 */
EXPORT(bn_infer)
void bn_infer(const f32 *x, const f32 *mean, const f32 *var, const f32 *offset, const f32 *scale, f32 *y,
              f32 *tmp, int P, int C, f32 eps) {
  f32 *k = tmp, *b = tmp + C;
  for (int c = 0; c < C; c++) {
    k[c] = (scale ? scale[c] : 1.0f) / __builtin_sqrtf(var[c] + eps);
    b[c] = offset ? offset[c] : 0.0f;
  }
  for (int p = 0; p < P; p++) {
    const f32 *r = x + (long)p * C;
    f32 *o = y + (long)p * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mean + c));
      wasm_v128_store(o + c, wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(k + c)), wasm_v128_load(b + c)));
    }
    for (; c < C; c++) o[c] = (r[c] - mean[c]) * k[c] + b[c];
  }
}
