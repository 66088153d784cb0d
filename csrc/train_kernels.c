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
