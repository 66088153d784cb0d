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

/* acc + a*b. The FMA build (LT_RELAXED_FMA, clang 16 -mrelaxed-simd) rounds once where the CPU has FMA;
 * the default build multiplies then adds, bit for bit what it always computed. */
#ifdef LT_RELAXED_FMA
/* clang 16's wasm_simd128.h has no wasm_f32x4_relaxed_madd wrapper yet; the builtin emits the standard 0xfd 0x105 */
typedef float lt_f32x4_ __attribute__((__vector_size__(16)));
#define MADD(acc, a, b) ((v128_t)__builtin_wasm_relaxed_madd_f32x4((lt_f32x4_)(a), (lt_f32x4_)(b), (lt_f32x4_)(acc)))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif

#define GEMM4X8_STEP(pa0, pa1, pa2, pa3, pb) do {                                                         \
    v128_t b0_ = wasm_v128_load(pb), b1_ = wasm_v128_load((pb) + 4);                                      \
    v128_t d0_ = wasm_v128_load32_splat(pa0), d1_ = wasm_v128_load32_splat(pa1);                          \
    v128_t d2_ = wasm_v128_load32_splat(pa2), d3_ = wasm_v128_load32_splat(pa3);                          \
    a00 = MADD(a00, d0_, b0_); a01 = MADD(a01, d0_, b1_); \
    a10 = MADD(a10, d1_, b0_); a11 = MADD(a11, d1_, b1_); \
    a20 = MADD(a20, d2_, b0_); a21 = MADD(a21, d2_, b1_); \
    a30 = MADD(a30, d3_, b0_); a31 = MADD(a31, d3_, b1_); \
  } while (0)

#endif
