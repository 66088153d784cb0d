/*
 * Winograd convolutions for 3x3, stride 1, pad 1 ("same") layers, compiled to its own small wasm module that,
 * like csrc/train_kernels.c, IMPORTS tfjs-wasm's linear memory: every pointer is a byte offset into that heap.
 * Same rules: no static data, no shadow stack (no local arrays, no address-taken locals), no libc; scratch
 * comes from the caller (tfjs's malloc). NHWC layout; filters [3, 3, CI, CO].
 *
 * F(m x m, 3x3) with m = 2 (4x4 input tiles, 16 products per 2x2 outputs: 2.25x fewer multiplies than the
 * direct convolution) or m = 4 (6x6 tiles, 36 products per 4x4 outputs: 4x fewer), Lavin & Gray 2015:
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A, summed over input channels inside the ".*" (a GEMM per position).
 * With T = (m+2)^2 transform positions:
 *   wino_filter:  U[T][J8/8][K][8] = G g G^T, the filter in 8-wide output-channel panels (J8 = J rounded up
 *                 to 8, zero-padded). flip = 1 builds the filter of the input gradient instead: the 3x3 kernel
 *                 rotated 180 degrees with input and output channels swapped (K = CO, J = CI), because dX of a
 *                 stride-1 'same' 3x3 conv is that conv of dy.
 *   wino_conv3x3: per block of BT tiles (BT a multiple of 4):
 *                 V[T][BT][K4] = B^T d B of every tile (zero outside the image; K4 = K rounded up to 4),
 *                 M[T][BT][J8] = V[t] * U[t], T independent GEMMs with a 4(tile) x 8(channel) SIMD register
 *                 block, one K x 8 panel of U[t] in L1 while the block's 4-tile groups stream past it,
 *                 y = act(A^T M A + bias), partial tiles at the right/bottom edges clipped.
 *   wino_bp_filter: dW of the same conv, the transposed algorithm: per tile, V = B^T d B (as above) and
 *                 Y = A dy A^T (the m x m dy tile, zero outside the image), Macc[t] (K x J) += V[t]^T Y[t] summed over
 *                 all tiles (T GEMMs reducing over tiles), then dW = G^T Macc G per channel pair.
 * Plane strides are padded by SKEW = 16 floats (see below). scratch of wino_conv3x3: T*(BT*(K4 + J8) + 32) + 4*T
 * floats; wino_filter writes T*(K*J8 + 16) floats to U and uses 4*3*(m+2) floats of tmp.
 */
#include <wasm_simd128.h>
#include "gemm4x8.h"

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))
typedef float f32;
typedef v128_t vf;

#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul
#define SPL wasm_f32x4_splat
#define LDV(p) wasm_v128_load(p)
/* Padding (floats) added to the stride between the T planes of U, V and M: the planes are written/read as T
 * concurrent streams, and a power-of-two stride put all of them in one cache set (F(4,3)'s filter transform
 * wrote 36 MB at 2 GB/s). */
#define SKEW 16
#define STV(p, v) wasm_v128_store((p), (v))

INLINE vf load_partial4(const f32 *p, int n) {
  if (n >= 4) return wasm_v128_load(p);
  vf r = SPL(0);
  if (n > 0) r = wasm_f32x4_replace_lane(r, 0, p[0]);
  if (n > 1) r = wasm_f32x4_replace_lane(r, 1, p[1]);
  if (n > 2) r = wasm_f32x4_replace_lane(r, 2, p[2]);
  return r;
}

INLINE void store_partial4(f32 *p, vf v, int n) {
  if (n >= 4) { wasm_v128_store(p, v); return; }
  if (n > 0) p[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

INLINE vf act_apply(vf v, int act) {
  if (act == 0) return v;
  v = wasm_f32x4_pmax(v, SPL(0));
  return act == 2 ? wasm_f32x4_pmin(v, SPL(6)) : v;
}

/* ---- 1-D transforms on 4-lane vectors (macros: no address-taken locals) ---------------------------------- */

/* B^T d, F(2,3): rows of [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]] */
#define BT2(d0, d1, d2, d3, o0, o1, o2, o3) do { \
    o0 = SUB(d0, d2); o1 = ADD(d1, d2); o2 = SUB(d2, d1); o3 = SUB(d1, d3); } while (0)
/* A^T m, F(2,3): [[1,1,1,0],[0,1,-1,-1]] */
#define AT2(m0, m1, m2, m3, o0, o1) do { o0 = ADD(ADD(m0, m1), m2); o1 = SUB(SUB(m1, m2), m3); } while (0)
/* G g, F(2,3): [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]] */
#define G2(g0, g1, g2, o0, o1, o2, o3) do { vf h_ = SPL(0.5f), s_ = ADD(g0, g2); \
    o0 = g0; o1 = MUL(h_, ADD(s_, g1)); o2 = MUL(h_, SUB(s_, g1)); o3 = g2; } while (0)

/* B^T d, F(4,3): [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]] */
#define BT4(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) do { \
    vf f4_ = SPL(4.f), f5_ = SPL(5.f), f2_ = SPL(2.f); \
    vf a_ = SUB(d4, MUL(f4_, d2)), b_ = SUB(d3, MUL(f4_, d1)); /* d4-4d2, d3-4d1 */ \
    vf c_ = SUB(d4, d2), e_ = MUL(f2_, SUB(d3, d1)); \
    o0 = ADD(SUB(MUL(f4_, d0), MUL(f5_, d2)), d4); \
    o1 = ADD(a_, b_); o2 = SUB(a_, b_); o3 = ADD(c_, e_); o4 = SUB(c_, e_); \
    o5 = ADD(SUB(MUL(f4_, d1), MUL(f5_, d3)), d5); } while (0)
/* A^T m, F(4,3): [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]] */
#define AT4(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do { \
    vf p_ = ADD(m1, m2), q_ = SUB(m1, m2), r_ = ADD(m3, m4), s_ = SUB(m3, m4); \
    o0 = ADD(ADD(m0, p_), r_); o1 = ADD(q_, MUL(SPL(2.f), s_)); \
    o2 = ADD(p_, MUL(SPL(4.f), r_)); o3 = ADD(ADD(q_, MUL(SPL(8.f), s_)), m5); } while (0)
/* G g, F(4,3): [[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]] */
#define G4(g0, g1, g2, o0, o1, o2, o3, o4, o5) do { \
    vf s_ = ADD(g0, g2), t_ = ADD(MUL(SPL(1.f / 24), g0), MUL(SPL(1.f / 6), g2)), u_ = MUL(SPL(1.f / 12), g1); \
    o0 = MUL(SPL(0.25f), g0); o1 = MUL(SPL(-1.f / 6), ADD(s_, g1)); o2 = MUL(SPL(-1.f / 6), SUB(s_, g1)); \
    o3 = ADD(t_, u_); o4 = SUB(t_, u_); o5 = g2; } while (0)

/* ---- filter transform -------------------------------------------------------------------------------- */

/* 4 lanes (output channels j..j+nj-1) of tap `tap` (0..8) at reduction channel k */
INLINE vf filter_tap(const f32 *w, int tap, int k, int j, int nj, int CI, int CO, int flip) {
  if (!flip) return load_partial4(w + tap * CI * CO + k * CO + j, nj);
  const f32 *p = w + (8 - tap) * CI * CO + j * CO + k; /* rotated tap; lanes step over CI (stride CO) */
  vf r = SPL(0);
  if (nj > 0) r = wasm_f32x4_replace_lane(r, 0, p[0]);
  if (nj > 1) r = wasm_f32x4_replace_lane(r, 1, p[CO]);
  if (nj > 2) r = wasm_f32x4_replace_lane(r, 2, p[2 * CO]);
  if (nj > 3) r = wasm_f32x4_replace_lane(r, 3, p[3 * CO]);
  return r;
}

INLINE void filter_impl(const f32 *w, f32 *U, f32 *tmp, int CI, int CO, int flip, const int m) {
  const int A = m + 2, K = flip ? CO : CI, J = flip ? CI : CO, J8 = (J + 7) & ~7, TS = K * J8 + SKEW;
  /* j in panels of 8, k inner, both 4-lane halves per k: each of the T output streams is written sequentially */
  for (int j8 = 0; j8 < J8; j8 += 8) {
    f32 *u = U + j8 * K;
    for (int k = 0; k < K; k++, u += 8) {
      for (int h = 0; h < 8; h += 4) {
        const int j = j8 + h, nj = J - j;
        /* columns: G applied down each of the 3 columns of g -> tmp[i][c], i < A */
        for (int c = 0; c < 3; c++) {
          vf g0 = filter_tap(w, c, k, j, nj, CI, CO, flip), g1 = filter_tap(w, 3 + c, k, j, nj, CI, CO, flip);
          vf g2 = filter_tap(w, 6 + c, k, j, nj, CI, CO, flip);
          if (m == 2) {
            vf o0, o1, o2, o3;
            G2(g0, g1, g2, o0, o1, o2, o3);
            STV(tmp + (0 * 3 + c) * 4, o0); STV(tmp + (1 * 3 + c) * 4, o1);
            STV(tmp + (2 * 3 + c) * 4, o2); STV(tmp + (3 * 3 + c) * 4, o3);
          } else {
            vf o0, o1, o2, o3, o4, o5;
            G4(g0, g1, g2, o0, o1, o2, o3, o4, o5);
            STV(tmp + (0 * 3 + c) * 4, o0); STV(tmp + (1 * 3 + c) * 4, o1); STV(tmp + (2 * 3 + c) * 4, o2);
            STV(tmp + (3 * 3 + c) * 4, o3); STV(tmp + (4 * 3 + c) * 4, o4); STV(tmp + (5 * 3 + c) * 4, o5);
          }
        }
        /* rows: G applied along each row i -> U[i*A + q] */
        for (int i = 0; i < A; i++) {
          vf g0 = LDV(tmp + (i * 3) * 4), g1 = LDV(tmp + (i * 3 + 1) * 4), g2 = LDV(tmp + (i * 3 + 2) * 4);
          f32 *o = u + h + i * A * TS;
          if (m == 2) {
            vf o0, o1, o2, o3;
            G2(g0, g1, g2, o0, o1, o2, o3);
            STV(o, o0); STV(o + TS, o1); STV(o + 2 * TS, o2); STV(o + 3 * TS, o3);
          } else {
            vf o0, o1, o2, o3, o4, o5;
            G4(g0, g1, g2, o0, o1, o2, o3, o4, o5);
            STV(o, o0); STV(o + TS, o1); STV(o + 2 * TS, o2); STV(o + 3 * TS, o3); STV(o + 4 * TS, o4);
            STV(o + 5 * TS, o5);
          }
        }
      }
    }
  }
}

/*
 * U[T][J8/8][K][8] from w [3,3,CI,CO]. flip = 0: the forward conv (K = CI, J = CO); flip = 1: the conv that
 * computes dX from dy (K = CO, J = CI, taps rotated 180 degrees). m: 2 or 4. tmp: 4*3*(m+2) floats.
 */
EXPORT(wino_filter)
void wino_filter(const f32 *w, f32 *U, f32 *tmp, int CI, int CO, int flip, int m) {
  if (m == 4) filter_impl(w, U, tmp, CI, CO, flip, 4);
  else filter_impl(w, U, tmp, CI, CO, flip, 2);
}

/* ---- input transform: one tile, 4 channels ------------------------------------------------------------- */

/* d[i][j] of the tile (rows/cols outside the image, flagged off in rm/cm, read as zero) */
#define LDIN(i, j) ((((rm >> (i)) & (cm >> (j))) & 1) ? load_partial4(src + ((i) * W + (j)) * K, nk) : zero)

INLINE void input_tile(const f32 *src, f32 *V, f32 *tmp, int VS, int W, int K, int nk, int rm, int cm, const int m) {
  const vf zero = SPL(0);
  if (m == 2) {
    for (int j = 0; j < 4; j++) {
      vf d0 = LDIN(0, j), d1 = LDIN(1, j), d2 = LDIN(2, j), d3 = LDIN(3, j), o0, o1, o2, o3;
      BT2(d0, d1, d2, d3, o0, o1, o2, o3);
      STV(tmp + (0 + j) * 4, o0); STV(tmp + (4 + j) * 4, o1); STV(tmp + (8 + j) * 4, o2); STV(tmp + (12 + j) * 4, o3);
    }
    for (int i = 0; i < 4; i++) {
      const f32 *t = tmp + i * 16;
      vf o0, o1, o2, o3;
      BT2(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), o0, o1, o2, o3);
      f32 *v = V + i * 4 * VS;
      STV(v, o0); STV(v + VS, o1); STV(v + 2 * VS, o2); STV(v + 3 * VS, o3);
    }
  } else {
    for (int j = 0; j < 6; j++) {
      vf d0 = LDIN(0, j), d1 = LDIN(1, j), d2 = LDIN(2, j), d3 = LDIN(3, j), d4 = LDIN(4, j), d5 = LDIN(5, j);
      vf o0, o1, o2, o3, o4, o5;
      BT4(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5);
      STV(tmp + (0 + j) * 4, o0); STV(tmp + (6 + j) * 4, o1); STV(tmp + (12 + j) * 4, o2);
      STV(tmp + (18 + j) * 4, o3); STV(tmp + (24 + j) * 4, o4); STV(tmp + (30 + j) * 4, o5);
    }
    for (int i = 0; i < 6; i++) {
      const f32 *t = tmp + i * 24;
      vf o0, o1, o2, o3, o4, o5;
      BT4(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), LDV(t + 16), LDV(t + 20), o0, o1, o2, o3, o4, o5);
      f32 *v = V + i * 6 * VS;
      STV(v, o0); STV(v + VS, o1); STV(v + 2 * VS, o2); STV(v + 3 * VS, o3); STV(v + 4 * VS, o4); STV(v + 5 * VS, o5);
    }
  }
}
#undef LDIN

/* ---- output transform: one tile, 4 channels ------------------------------------------------------------ */

#define STOUT(r, c, val) do { if ((((orm >> (r)) & (ocm >> (c))) & 1)) \
    store_partial4(dst + ((r) * W + (c)) * J, act_apply(ADD(val, bv), act), nj); } while (0)

INLINE void output_tile(const f32 *Mp, f32 *dst, f32 *tmp, vf bv, int MS, int W, int J, int nj, int orm, int ocm,
                        int act, const int m) {
  if (m == 2) {
    for (int j = 0; j < 4; j++) {
      vf o0, o1;
      AT2(LDV(Mp + j * MS), LDV(Mp + (4 + j) * MS), LDV(Mp + (8 + j) * MS), LDV(Mp + (12 + j) * MS), o0, o1);
      STV(tmp + j * 4, o0); STV(tmp + (4 + j) * 4, o1);
    }
    for (int r = 0; r < 2; r++) {
      const f32 *t = tmp + r * 16;
      vf o0, o1;
      AT2(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), o0, o1);
      STOUT(r, 0, o0); STOUT(r, 1, o1);
    }
  } else {
    for (int j = 0; j < 6; j++) {
      vf o0, o1, o2, o3;
      AT4(LDV(Mp + j * MS), LDV(Mp + (6 + j) * MS), LDV(Mp + (12 + j) * MS), LDV(Mp + (18 + j) * MS),
          LDV(Mp + (24 + j) * MS), LDV(Mp + (30 + j) * MS), o0, o1, o2, o3);
      STV(tmp + j * 4, o0); STV(tmp + (6 + j) * 4, o1); STV(tmp + (12 + j) * 4, o2); STV(tmp + (18 + j) * 4, o3);
    }
    for (int r = 0; r < 4; r++) {
      const f32 *t = tmp + r * 24;
      vf o0, o1, o2, o3;
      AT4(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), LDV(t + 16), LDV(t + 20), o0, o1, o2, o3);
      STOUT(r, 0, o0); STOUT(r, 1, o1); STOUT(r, 2, o2); STOUT(r, 3, o3);
    }
  }
}
#undef STOUT

/* ---- the T GEMMs of one tile block: M[t] (nt4 x J8) = V[t] (nt4 x K) * U[t] (K x J8) ------------------- */

INLINE void gemm_block(const f32 *V, const f32 *U, f32 *M, int nt4, int K, int K4, int J8, int VS, int MS, int T) {
  for (int t = 0; t < T; t++) {
    const f32 *Vt = V + t * VS, *Ut = U + t * (K * J8 + SKEW);
    f32 *Mt = M + t * MS;
    for (int jb = 0; jb < J8; jb += 8) {
      const f32 *pn = Ut + jb * K;
      for (int p = 0; p < nt4; p += 4) {
        vf a00 = SPL(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const f32 *v = Vt + p * K4, *wp = pn;
        for (int k = 0; k < K; k++, wp += 8) {
          GEMM4X8_STEP(v + k, v + K4 + k, v + 2 * K4 + k, v + 3 * K4 + k, wp);
        }
        f32 *o = Mt + p * J8 + jb;
        STV(o, a00); STV(o + 4, a01); o += J8;
        STV(o, a10); STV(o + 4, a11); o += J8;
        STV(o, a20); STV(o + 4, a21); o += J8;
        STV(o, a30); STV(o + 4, a31);
      }
    }
  }
}

INLINE void conv_impl(const f32 *x, const f32 *U, const f32 *bias, f32 *y, f32 *scratch, int N, int H, int W,
                      int K, int J, int act, int BT, const int m) {
  const int A = m + 2, T = A * A, K4 = (K + 3) & ~3, J8 = (J + 7) & ~7;
  const int TH = (H + m - 1) / m, TW = (W + m - 1) / m, NT = N * TH * TW;
  const int VS = BT * K4 + SKEW, MS = BT * J8 + SKEW;
  f32 *V = scratch, *M = V + T * VS, *tmp = M + T * MS;
  const int amask = (1 << A) - 1;
  for (int g0 = 0; g0 < NT; g0 += BT) {
    const int nt = NT - g0 < BT ? NT - g0 : BT;
    /* input transform */
    int n = g0 / (TH * TW), rem = g0 % (TH * TW), th = rem / TW, tw = rem % TW;
    for (int b = 0; b < nt; b++) {
      const int ih0 = th * m - 1, iw0 = tw * m - 1;
      int rm = amask, cm = amask;
      if (ih0 < 0) rm &= ~1;
      if (iw0 < 0) cm &= ~1;
      for (int i = 1; i < A; i++) {
        if (ih0 + i >= H) rm &= ~(1 << i);
        if (iw0 + i >= W) cm &= ~(1 << i);
      }
      /* src addresses only formed for valid (i, j); ih0/iw0 may be -1 */
      const f32 *src = x + ((long)(n * H + ih0) * W + iw0) * K;
      for (int k = 0; k < K; k += 4) input_tile(src + k, V + b * K4 + k, tmp, VS, W, K, K - k, rm, cm, m);
      if (++tw == TW) { tw = 0; if (++th == TH) { th = 0; n++; } }
    }
    gemm_block(V, U, M, (nt + 3) & ~3, K, K4, J8, VS, MS, T);
    /* output transform */
    n = g0 / (TH * TW); rem = g0 % (TH * TW); th = rem / TW; tw = rem % TW;
    for (int b = 0; b < nt; b++) {
      const int oh0 = th * m, ow0 = tw * m;
      int orm = 0, ocm = 0;
      for (int r = 0; r < m; r++) {
        if (oh0 + r < H) orm |= 1 << r;
        if (ow0 + r < W) ocm |= 1 << r;
      }
      f32 *dst = y + ((n * H + oh0) * W + ow0) * J;
      for (int j = 0; j < J; j += 4) {
        const int nj = J - j;
        vf bv = bias ? load_partial4(bias + j, nj) : SPL(0);
        output_tile(M + b * J8 + j, dst + j, tmp, bv, MS, W, J, nj, orm, ocm, act, m);
      }
      if (++tw == TW) { tw = 0; if (++th == TH) { th = 0; n++; } }
    }
  }
}

/*
 * y[N,H,W,J] = act(conv3x3_same(x[N,H,W,K]) + bias) from the transformed filter U (wino_filter, same m).
 * bias: J floats or 0. act: 0 linear, 1 relu, 2 relu6. BT: tiles per block, a multiple of 4.
 * scratch: T*(BT*(K4 + J8) + 2*SKEW) + 4*T floats, T = (m+2)^2.
 */
EXPORT(wino_conv3x3)
void wino_conv3x3(const f32 *x, const f32 *U, const f32 *bias, f32 *y, f32 *scratch, int N, int H, int W, int K,
                  int J, int act, int m, int BT) {
  if (m == 4) conv_impl(x, U, bias, y, scratch, N, H, W, K, J, act, BT, 4);
  else conv_impl(x, U, bias, y, scratch, N, H, W, K, J, act, BT, 2);
}

/* ---- filter gradient ----------------------------------------------------------------------------------- */

/* A y, F(2,3): A = [[1,0],[1,1],[1,-1],[0,-1]] */
#define AY2(d0, d1, o0, o1, o2, o3) do { o0 = d0; o1 = ADD(d0, d1); o2 = SUB(d0, d1); \
    o3 = SUB(SPL(0), d1); } while (0)
/* A y, F(4,3): A = [[1,0,0,0],[1,1,1,1],[1,-1,1,-1],[1,2,4,8],[1,-2,4,-8],[0,0,0,1]] */
#define AY4(d0, d1, d2, d3, o0, o1, o2, o3, o4, o5) do { \
    vf e_ = ADD(d0, d2), f_ = ADD(d1, d3), g_ = ADD(d0, MUL(SPL(4.f), d2)), h_ = MUL(SPL(2.f), ADD(d1, MUL(SPL(4.f), d3))); \
    o0 = d0; o1 = ADD(e_, f_); o2 = SUB(e_, f_); o3 = ADD(g_, h_); o4 = SUB(g_, h_); o5 = d3; } while (0)
/* G^T u, F(2,3): [[1,1/2,1/2,0],[0,1/2,-1/2,0],[0,1/2,1/2,1]] */
#define GT2(u0, u1, u2, u3, o0, o1, o2) do { vf p_ = MUL(SPL(0.5f), ADD(u1, u2)); \
    o0 = ADD(u0, p_); o1 = MUL(SPL(0.5f), SUB(u1, u2)); o2 = ADD(p_, u3); } while (0)
/* G^T u, F(4,3): [[1/4,-1/6,-1/6,1/24,1/24,0],[0,-1/6,1/6,1/12,-1/12,0],[0,-1/6,-1/6,1/6,1/6,1]] */
#define GT4(u0, u1, u2, u3, u4, u5, o0, o1, o2) do { \
    vf p_ = ADD(u1, u2), q_ = SUB(u2, u1), r_ = ADD(u3, u4), s_ = SUB(u3, u4); \
    o0 = ADD(MUL(SPL(0.25f), u0), ADD(MUL(SPL(-1.f / 6), p_), MUL(SPL(1.f / 24), r_))); \
    o1 = ADD(MUL(SPL(1.f / 6), q_), MUL(SPL(1.f / 12), s_)); \
    o2 = ADD(MUL(SPL(1.f / 6), SUB(r_, p_)), u5); } while (0)

/* Y = A dy A^T for one tile, 4 channels: dy rows/cols outside the image (off in rm/cm) read as zero */
#define LDDY(i, j) ((((rm >> (i)) & (cm >> (j))) & 1) ? load_partial4(src + ((i) * W + (j)) * J, nj) : zero)

INLINE void dy_tile(const f32 *src, f32 *Y, f32 *tmp, int YS, int W, int J, int nj, int rm, int cm, const int m) {
  const vf zero = SPL(0);
  if (m == 2) {
    for (int j = 0; j < 2; j++) {
      vf o0, o1, o2, o3;
      AY2(LDDY(0, j), LDDY(1, j), o0, o1, o2, o3);
      STV(tmp + (0 + j) * 4, o0); STV(tmp + (2 + j) * 4, o1); STV(tmp + (4 + j) * 4, o2); STV(tmp + (6 + j) * 4, o3);
    }
    for (int i = 0; i < 4; i++) {
      vf o0, o1, o2, o3;
      AY2(LDV(tmp + i * 8), LDV(tmp + i * 8 + 4), o0, o1, o2, o3);
      f32 *y = Y + i * 4 * YS;
      STV(y, o0); STV(y + YS, o1); STV(y + 2 * YS, o2); STV(y + 3 * YS, o3);
    }
  } else {
    for (int j = 0; j < 4; j++) {
      vf o0, o1, o2, o3, o4, o5;
      AY4(LDDY(0, j), LDDY(1, j), LDDY(2, j), LDDY(3, j), o0, o1, o2, o3, o4, o5);
      STV(tmp + (0 + j) * 4, o0); STV(tmp + (4 + j) * 4, o1); STV(tmp + (8 + j) * 4, o2);
      STV(tmp + (12 + j) * 4, o3); STV(tmp + (16 + j) * 4, o4); STV(tmp + (20 + j) * 4, o5);
    }
    for (int i = 0; i < 6; i++) {
      vf o0, o1, o2, o3, o4, o5;
      const f32 *t = tmp + i * 16;
      AY4(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), o0, o1, o2, o3, o4, o5);
      f32 *y = Y + i * 6 * YS;
      STV(y, o0); STV(y + YS, o1); STV(y + 2 * YS, o2); STV(y + 3 * YS, o3); STV(y + 4 * YS, o4); STV(y + 5 * YS, o5);
    }
  }
}
#undef LDDY

/* dW[kh][kw] = G^T Macc G for one (k, 4 output channels): Mp = &Macc[0][k][j], t stride MS */
INLINE void dw_tile(const f32 *Mp, f32 *dst, f32 *tmp, int MS, int KJ, int nj, const int m) {
  if (m == 2) {
    for (int j = 0; j < 4; j++) {
      vf o0, o1, o2;
      GT2(LDV(Mp + j * MS), LDV(Mp + (4 + j) * MS), LDV(Mp + (8 + j) * MS), LDV(Mp + (12 + j) * MS), o0, o1, o2);
      STV(tmp + j * 4, o0); STV(tmp + (4 + j) * 4, o1); STV(tmp + (8 + j) * 4, o2);
    }
    for (int r = 0; r < 3; r++) {
      const f32 *t = tmp + r * 16;
      vf o0, o1, o2;
      GT2(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), o0, o1, o2);
      store_partial4(dst + (r * 3) * KJ, o0, nj); store_partial4(dst + (r * 3 + 1) * KJ, o1, nj);
      store_partial4(dst + (r * 3 + 2) * KJ, o2, nj);
    }
  } else {
    for (int j = 0; j < 6; j++) {
      vf o0, o1, o2;
      GT4(LDV(Mp + j * MS), LDV(Mp + (6 + j) * MS), LDV(Mp + (12 + j) * MS), LDV(Mp + (18 + j) * MS),
          LDV(Mp + (24 + j) * MS), LDV(Mp + (30 + j) * MS), o0, o1, o2);
      STV(tmp + j * 4, o0); STV(tmp + (6 + j) * 4, o1); STV(tmp + (12 + j) * 4, o2);
    }
    for (int r = 0; r < 3; r++) {
      const f32 *t = tmp + r * 24;
      vf o0, o1, o2;
      GT4(LDV(t), LDV(t + 4), LDV(t + 8), LDV(t + 12), LDV(t + 16), LDV(t + 20), o0, o1, o2);
      store_partial4(dst + (r * 3) * KJ, o0, nj); store_partial4(dst + (r * 3 + 1) * KJ, o1, nj);
      store_partial4(dst + (r * 3 + 2) * KJ, o2, nj);
    }
  }
}

INLINE void bp_filter_impl(const f32 *x, const f32 *dy, f32 *dw, f32 *scratch, int N, int H, int W, int K, int J,
                           int BT, const int m) {
  const int A = m + 2, T = A * A, K4 = (K + 3) & ~3, J8 = (J + 7) & ~7;
  const int TH = (H + m - 1) / m, TW = (W + m - 1) / m, NT = N * TH * TW;
  const int MS = K4 * J8 + SKEW, VS = K4 * BT + SKEW, YS = J8 * BT + SKEW;
  f32 *Macc = scratch, *V = Macc + T * MS, *Y = V + T * VS, *tmp = Y + T * YS;
  const int amask = (1 << A) - 1, mmask = (1 << m) - 1;
  for (int g0 = 0; g0 < NT; g0 += BT) {
    const int nt = NT - g0 < BT ? NT - g0 : BT, first = g0 == 0;
    /* transforms: V[t][K4/4][BT][4] of x, Y[t][J8/8][BT][8] of dy */
    int n = g0 / (TH * TW), rem = g0 % (TH * TW), th = rem / TW, tw = rem % TW;
    for (int b = 0; b < nt; b++) {
      const int ih0 = th * m - 1, iw0 = tw * m - 1;
      int rm = amask, cm = amask, orm = mmask, ocm = mmask;
      if (ih0 < 0) rm &= ~1;
      if (iw0 < 0) cm &= ~1;
      for (int i = 1; i < A; i++) {
        if (ih0 + i >= H) rm &= ~(1 << i);
        if (iw0 + i >= W) cm &= ~(1 << i);
      }
      for (int r = 0; r < m; r++) {
        if (th * m + r >= H) orm &= ~(1 << r);
        if (tw * m + r >= W) ocm &= ~(1 << r);
      }
      const f32 *src = x + ((n * H + ih0) * W + iw0) * K;
      for (int k = 0; k < K; k += 4) input_tile(src + k, V + (k >> 2) * BT * 4 + b * 4, tmp, VS, W, K, K - k, rm, cm, m);
      const f32 *dsrc = dy + ((n * H + th * m) * W + tw * m) * J;
      for (int j = 0; j < J8; j += 4)
        dy_tile(dsrc + j, Y + (j >> 3) * BT * 8 + b * 8 + (j & 7), tmp, YS, W, J, J - j, orm, ocm, m);
      if (++tw == TW) { tw = 0; if (++th == TH) { th = 0; n++; } }
    }
    /* Macc[t][k][j] (+)= sum_b V[t][b][k] * Y[t][b][j] */
    for (int t = 0; t < T; t++) {
      for (int k = 0; k < K4; k += 4) {
        const f32 *vk = V + t * VS + k * BT;
        for (int jb = 0; jb < J8; jb += 8) {
          const f32 *yj = Y + t * YS + jb * BT, *vp = vk;
          vf a00 = SPL(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
          for (int b = 0; b < nt; b++, vp += 4, yj += 8) {
            vf y0 = LDV(yj), y1 = LDV(yj + 4);
            vf v0 = wasm_v128_load32_splat(vp), v1 = wasm_v128_load32_splat(vp + 1);
            vf v2 = wasm_v128_load32_splat(vp + 2), v3 = wasm_v128_load32_splat(vp + 3);
            a00 = ADD(a00, MUL(v0, y0)); a01 = ADD(a01, MUL(v0, y1));
            a10 = ADD(a10, MUL(v1, y0)); a11 = ADD(a11, MUL(v1, y1));
            a20 = ADD(a20, MUL(v2, y0)); a21 = ADD(a21, MUL(v2, y1));
            a30 = ADD(a30, MUL(v3, y0)); a31 = ADD(a31, MUL(v3, y1));
          }
          f32 *o = Macc + t * MS + k * J8 + jb;
          if (!first) {
            a00 = ADD(a00, LDV(o)); a01 = ADD(a01, LDV(o + 4));
            a10 = ADD(a10, LDV(o + J8)); a11 = ADD(a11, LDV(o + J8 + 4));
            a20 = ADD(a20, LDV(o + 2 * J8)); a21 = ADD(a21, LDV(o + 2 * J8 + 4));
            a30 = ADD(a30, LDV(o + 3 * J8)); a31 = ADD(a31, LDV(o + 3 * J8 + 4));
          }
          STV(o, a00); STV(o + 4, a01); STV(o + J8, a10); STV(o + J8 + 4, a11);
          STV(o + 2 * J8, a20); STV(o + 2 * J8 + 4, a21); STV(o + 3 * J8, a30); STV(o + 3 * J8 + 4, a31);
        }
      }
    }
  }
  /* dW = G^T Macc G */
  for (int k = 0; k < K; k++)
    for (int j = 0; j < J; j += 4) dw_tile(Macc + k * J8 + j, dw + k * J + j, tmp, MS, K * J, J - j, m);
}

/*
 * dW[3,3,K,J] of y = conv3x3_same(x[N,H,W,K]) given dy[N,H,W,J], by Winograd F(m x m, 3x3) (m = 2 or 4).
 * BT: tiles per block (any positive count). scratch: T*(K4*J8 + K4*BT + J8*BT + 3*SKEW) + 4*T floats.
 */
EXPORT(wino_bp_filter)
void wino_bp_filter(const f32 *x, const f32 *dy, f32 *dw, f32 *scratch, int N, int H, int W, int K, int J, int m,
                    int BT) {
  if (m == 4) bp_filter_impl(x, dy, dw, scratch, N, H, W, K, J, BT, 4);
  else bp_filter_impl(x, dy, dw, scratch, N, H, W, K, J, BT, 2);
}
