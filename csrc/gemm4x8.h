/*
 * The 4x8 register block every GEMM here is built on (conv2d_fwd, conv2d_bp_input, conv2d_bp_filter and the
 * Winograd transforms' GEMMs): one reduction step multiplies 4 scalars (one per row of A, splatted) by one
 * 8-wide row of the packed B panel and accumulates into a00..a31, the accumulator names every kernel uses.
 * A macro, not a function: the accumulators must stay in registers, and a function taking them by address
 * would put them on the shadow stack this module may not use.
 */
#ifndef LT_GEMM4X8_H
#define LT_GEMM4X8_H
#include <wasm_simd128.h>

#define GEMM4X8_STEP(pa0, pa1, pa2, pa3, pb) do {                                                         \
    v128_t b0_ = wasm_v128_load(pb), b1_ = wasm_v128_load((pb) + 4);                                      \
    v128_t d0_ = wasm_v128_load32_splat(pa0), d1_ = wasm_v128_load32_splat(pa1);                          \
    v128_t d2_ = wasm_v128_load32_splat(pa2), d3_ = wasm_v128_load32_splat(pa3);                          \
    a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(d0_, b0_)); a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(d0_, b1_)); \
    a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(d1_, b0_)); a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(d1_, b1_)); \
    a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(d2_, b0_)); a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(d2_, b1_)); \
    a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(d3_, b0_)); a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(d3_, b1_)); \
  } while (0)

#endif
