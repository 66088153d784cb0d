/*
 * Per-image pixel maths of the batched training augmentations (src/data/affine.ts, src/data/color-ops.ts), on a
 * whole NHWC batch with one parameter set per image. They replace the host JavaScript loops that are kept there as
 * the reference, and compute the SAME numbers: every operation is the double-precision one the JavaScript performs,
 * in the same order (the build passes -ffp-contract=off, so nothing is fused), and the results are rounded to
 * float32 once, where a Float32Array store rounds them. A seeded run therefore gives the same pixels with or without
 * the kernels, in both builds (there is no MADD here: the FMA build differs only in what clang may use elsewhere).
 *
 * The module imports a memory like the training kernels, but the caller (src/engine/wasm/augment.ts) gives it a
 * private WebAssembly.Memory rather than tfjs's heap: augmentation runs on every backend, and the pixels are on the
 * host. The same rules hold: no static data, no shadow stack, no libc.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
typedef unsigned char u8;
typedef float f32;
typedef v128_t f64x2;

/* Two pixels at a time in f64x2 lanes: the same IEEE double operations per lane as the scalar code, so the same bits. */
#define SPLAT(v) wasm_f64x2_splat(v)
#define ADD wasm_f64x2_add
#define SUB wasm_f64x2_sub
#define MUL wasm_f64x2_mul
#define DIV wasm_f64x2_div
#define SEL(mask, a, b) wasm_v128_bitselect((a), (b), (mask)) /* mask ? a : b, per lane */
#define LANE(v, i) wasm_f64x2_extract_lane((v), (i))
#define MASK(v, i) (wasm_i64x2_extract_lane((v), (i)) != 0)

/* JavaScript's Math.max / Math.min: wasm's f64.max / f64.min treat NaN and signed zeros the same way. */
#define JS_MAX(a, b) __builtin_wasm_max_f64((a), (b))
#define JS_MIN(a, b) __builtin_wasm_min_f64((a), (b))

/*
 * JavaScript's x % m (fmod: exact, the sign of x) for an integer-valued m > 0 and |x| < 2^52. q·m is an exact integer,
 * and x − q·m and the one-step corrections are exact: each is a multiple of ulp(x) no larger than |x| in magnitude.
 */
static inline double js_mod(double x, double m) {
  double r = x - __builtin_trunc(x / m) * m;
  if (x >= 0) {
    if (r < 0) r += m;
    else if (r >= m) r -= m;
  } else {
    if (r > 0) r -= m;
    else if (r <= -m) r += m;
  }
  /* a zero remainder keeps x's sign, as in JavaScript (-3 % 3 is -0) */
  return r == 0 ? __builtin_copysign(0.0, x) : r;
}

/* affine.ts reflectCoord: c mirrored into [0, len − 1] about the outer pixel centres. */
static inline double reflect_coord(double c, int len) {
  double d = (double)(len - 1);
  if (d <= 0) return 0;
  double u = __builtin_fabs(c);
  /* the common case, inside the first period, is what % would return anyway */
  if (u >= 2 * d) u = js_mod(u, 2 * d);
  if (u > d) u = 2 * d - u;
  return u;
}

/* affine.ts snap: positions within 1e-9 of a whole pixel read that pixel (Math.round, ties up). */
static inline double snap(double c) {
  double r = __builtin_floor(c + 0.5);
  /* floor(c + 0.5) is Math.round except where c + 0.5 rounds up (c = 0.5 − 2^-54): never within 1e-9 of r then */
  return __builtin_fabs(c - r) < 1e-9 ? r : c;
}

static inline f64x2 snap2(f64x2 c) {
  f64x2 r = wasm_f64x2_floor(ADD(c, SPLAT(0.5)));
  return SEL(wasm_f64x2_lt(wasm_f64x2_abs(SUB(c, r)), SPLAT(1e-9)), r, c);
}

/* reflect_coord on both lanes (size ≥ 2); lanes past the first period take the scalar route, which is rare. */
static inline f64x2 reflect2(f64x2 c, int len) {
  const double d = (double)(len - 1);
  f64x2 u = wasm_f64x2_abs(c);
  if (wasm_v128_any_true(wasm_f64x2_ge(u, SPLAT(2 * d)))) return wasm_f64x2_make(reflect_coord(LANE(c, 0), len), reflect_coord(LANE(c, 1), len));
  return SEL(wasm_f64x2_gt(u, SPLAT(d)), SUB(SPLAT(2 * d), u), u);
}

/*
 * affine.ts resampleHost: out[k] = src[k] read through mats[k] (6 doubles per image: u = m0·x + m1·y + m2,
 * v = m3·x + m4·y + m5), bilinearly; reflect != 0 mirrors out-of-image positions back inside, otherwise the missing
 * weight reads fill[c]. The snap of the JavaScript is applied before the reflection, as there.
 */
/* One output pixel, as resampleReference computes it. */
#define RESAMPLE_PIXEL(T)                                                                                              \
  do {                                                                                                                 \
    double u = snap(m[0] * x + m[1] * y + m[2]);                                                                       \
    double v = snap(m[3] * x + m[4] * y + m[5]);                                                                       \
    if (reflect) {                                                                                                     \
      u = reflect_coord(u, size);                                                                                      \
      v = reflect_coord(v, size);                                                                                      \
    }                                                                                                                  \
    const double fx0 = __builtin_floor(u), fy0 = __builtin_floor(v);                                                   \
    const double fx = u - fx0, fy = v - fy0;                                                                           \
    const int yin0 = fy0 >= 0 && fy0 <= d, yin1 = fy > 0 && fy0 + 1 >= 0 && fy0 + 1 <= d;                             \
    const int xin0 = fx0 >= 0 && fx0 <= d, xin1 = fx > 0 && fx0 + 1 >= 0 && fx0 + 1 <= d;                             \
    const int in00 = yin0 && xin0, in01 = yin0 && xin1, in10 = yin1 && xin0, in11 = yin1 && xin1;                      \
    const double w00 = in00 ? (1 - fy) * (1 - fx) : 0;                                                                 \
    const double w01 = in01 ? (1 - fy) * fx : 0;                                                                       \
    const double w10 = in10 ? fy * (1 - fx) : 0;                                                                       \
    const double w11 = in11 ? fy * fx : 0;                                                                             \
    const double missing = 1 - (w00 + w01 + w10 + w11);                                                               \
    /* corner indices are formed only when a corner is inside: the position is within a pixel of the image then */    \
    const long p00 = (in00 || in01 || in10 || in11) ? (base + (long)fy0 * size + (long)fx0) * ch : 0;                  \
    const long p10 = p00 + (long)size * ch;                                                                            \
    f32 *o = out + (base + (long)y * size + x) * ch;                                                                   \
    for (int c = 0; c < ch; c++) {                                                                                     \
      double acc = 0;                                                                                                  \
      if (in00) acc += w00 * (double)src[p00 + c];                                                                     \
      if (in01) acc += w01 * (double)src[p00 + ch + c];                                                                \
      if (in10) acc += w10 * (double)src[p10 + c];                                                                     \
      if (in11) acc += w11 * (double)src[p10 + ch + c];                                                                \
      if (!reflect && missing > 0) acc += missing * fill[c];                                                           \
      o[c] = (f32)acc;                                                                                                 \
    }                                                                                                                  \
  } while (0)

/*
 * Output pixels x and x + 1 of row y in the lanes of f64x2: the scalar pixel's operations lane by lane. A corner
 * outside the image adds a masked +0 instead of being skipped, which leaves acc as it is (acc starts at +0 and a sum
 * of doubles is never −0 then); its read goes to the first pixel of the image, which exists.
 */
/* Lane l's four corner offsets into src, the image's first pixel for a corner outside it (its product is masked). */
#define CORNERS(l, q00, q01, q10, q11)                                                                                 \
  do {                                                                                                                 \
    const int c00 = MASK(in00, l), c01 = MASK(in01, l), c10 = MASK(in10, l), c11 = MASK(in11, l);                      \
    const long p00 = (c00 || c01 || c10 || c11) ? (base + (long)LANE(fy0, l) * size + (long)LANE(fx0, l)) * ch : 0;    \
    q00 = c00 ? p00 : base * ch;                                                                                       \
    q01 = c01 ? p00 + ch : base * ch;                                                                                  \
    q10 = c10 ? p00 + row : base * ch;                                                                                 \
    q11 = c11 ? p00 + row + ch : base * ch;                                                                            \
  } while (0)

#define RESAMPLE_PAIR(T)                                                                                               \
  do {                                                                                                                 \
    const f64x2 X = wasm_f64x2_make(x, x + 1);                                                                         \
    f64x2 u = snap2(ADD(ADD(MUL(SPLAT(m[0]), X), SPLAT(m[1] * y)), SPLAT(m[2])));                                      \
    f64x2 v = snap2(ADD(ADD(MUL(SPLAT(m[3]), X), SPLAT(m[4] * y)), SPLAT(m[5])));                                      \
    if (reflect) {                                                                                                     \
      u = reflect2(u, size);                                                                                           \
      v = reflect2(v, size);                                                                                           \
    }                                                                                                                  \
    const f64x2 fx0 = wasm_f64x2_floor(u), fy0 = wasm_f64x2_floor(v);                                                  \
    const f64x2 fx = SUB(u, fx0), fy = SUB(v, fy0);                                                                    \
    const f64x2 zero = SPLAT(0), one = SPLAT(1), dd = SPLAT(d);                                                        \
    const f64x2 fx1 = ADD(fx0, one), fy1 = ADD(fy0, one);                                                              \
    const f64x2 yin0 = wasm_v128_and(wasm_f64x2_ge(fy0, zero), wasm_f64x2_le(fy0, dd));                                \
    const f64x2 yin1 = wasm_v128_and(wasm_f64x2_gt(fy, zero), wasm_v128_and(wasm_f64x2_ge(fy1, zero), wasm_f64x2_le(fy1, dd))); \
    const f64x2 xin0 = wasm_v128_and(wasm_f64x2_ge(fx0, zero), wasm_f64x2_le(fx0, dd));                                \
    const f64x2 xin1 = wasm_v128_and(wasm_f64x2_gt(fx, zero), wasm_v128_and(wasm_f64x2_ge(fx1, zero), wasm_f64x2_le(fx1, dd))); \
    const f64x2 in00 = wasm_v128_and(yin0, xin0), in01 = wasm_v128_and(yin0, xin1);                                    \
    const f64x2 in10 = wasm_v128_and(yin1, xin0), in11 = wasm_v128_and(yin1, xin1);                                    \
    const f64x2 w00 = wasm_v128_and(MUL(SUB(one, fy), SUB(one, fx)), in00);                                            \
    const f64x2 w01 = wasm_v128_and(MUL(SUB(one, fy), fx), in01);                                                      \
    const f64x2 w10 = wasm_v128_and(MUL(fy, SUB(one, fx)), in10);                                                      \
    const f64x2 w11 = wasm_v128_and(MUL(fy, fx), in11);                                                                \
    const f64x2 missing = SUB(one, ADD(ADD(ADD(w00, w01), w10), w11));                                                 \
    const f64x2 fillOn = reflect ? zero : wasm_f64x2_gt(missing, zero);                                                \
    const long row = (long)size * ch;                                                                                  \
    long a00, a01, a10, a11, b00, b01, b10, b11;                                                                       \
    CORNERS(0, a00, a01, a10, a11);                                                                                    \
    CORNERS(1, b00, b01, b10, b11);                                                                                    \
    f32 *o = out + (base + (long)y * size + x) * ch;                                                                   \
    for (int c = 0; c < ch; c++) {                                                                                     \
      f64x2 acc = zero;                                                                                                \
      acc = ADD(acc, wasm_v128_and(MUL(w00, wasm_f64x2_make(src[a00 + c], src[b00 + c])), in00));                \
      acc = ADD(acc, wasm_v128_and(MUL(w01, wasm_f64x2_make(src[a01 + c], src[b01 + c])), in01));                \
      acc = ADD(acc, wasm_v128_and(MUL(w10, wasm_f64x2_make(src[a10 + c], src[b10 + c])), in10));                \
      acc = ADD(acc, wasm_v128_and(MUL(w11, wasm_f64x2_make(src[a11 + c], src[b11 + c])), in11));                \
      if (!reflect) acc = ADD(acc, wasm_v128_and(MUL(missing, SPLAT(fill[c])), fillOn));                               \
      o[c] = (f32)LANE(acc, 0);                                                                                        \
      o[ch + c] = (f32)LANE(acc, 1);                                                                                   \
    }                                                                                                                  \
  } while (0)

#define RESAMPLE(NAME, T)                                                                                              \
  EXPORT(NAME)                                                                                                         \
  void NAME(const T *src, f32 *out, const double *mats, const double *fill, int n, int size, int ch, int reflect) {    \
    const double d = (double)(size - 1);                                                                               \
    for (int k = 0; k < n; k++) {                                                                                      \
      const double *m = mats + 6 * k;                                                                                  \
      const long base = (long)k * size * size;                                                                         \
      for (int y = 0; y < size; y++) {                                                                                 \
        int x = 0;                                                                                                     \
        if (size >= 2)                                                                                                 \
          for (; x + 2 <= size; x += 2) RESAMPLE_PAIR(T);                                                              \
        for (; x < size; x++) RESAMPLE_PIXEL(T);                                                                       \
      }                                                                                                                \
    }                                                                                                                  \
  }

RESAMPLE(resample_u8, u8)
RESAMPLE(resample_f32, f32)

static inline double clamp01(double v) { return JS_MIN(1, JS_MAX(0, v)); }

/* js_mod(x, 1) on both lanes: x − trunc(x) is exact and has x's sign (a zero remainder keeps it, as % does). */
static inline f64x2 mod1_2(f64x2 x) {
  const f64x2 sign = SPLAT(-0.0);
  return wasm_v128_or(wasm_v128_andnot(SUB(x, wasm_f64x2_trunc(x)), sign), wasm_v128_and(x, sign));
}

static inline f64x2 clamp01_2(f64x2 v) { return wasm_f64x2_min(SPLAT(1), wasm_f64x2_max(SPLAT(0), v)); }

/* color-ops.ts shiftHuePixel for one pixel at p, shifted by sh turns. */
static inline void hue_pixel(f32 *p, double sh) {
  const double r = (double)p[0] / 255, g = (double)p[1] / 255, b = (double)p[2] / 255;
  const double maxc = JS_MAX(JS_MAX(r, g), b);
  const double minc = JS_MIN(JS_MIN(r, g), b);
  const int eqc = maxc == minc;
  const double cr = maxc - minc;
  const double s = cr / (eqc ? 1 : maxc);
  const double crd = eqc ? 1 : cr;
  const double rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
  double h = maxc == r ? bc - gc : maxc == g ? 2 + rc - bc : 4 + gc - rc;
  h = js_mod(h / 6 + 1, 1);
  h = js_mod(js_mod(h + sh, 1) + 1, 1);
  const double v = maxc;
  const double h6 = h * 6;
  const double i0 = __builtin_floor(h6);
  const double f = h6 - i0;
  const double pp = clamp01(v * (1 - s));
  const double q = clamp01(v * (1 - s * f));
  const double t = clamp01(v * (1 - s * (1 - f)));
  double R = v, G = pp, B = q;
  int sextant = (int)i0 % 6;
  if (sextant < 0) sextant += 6;
  switch (sextant) {
  case 0: R = v, G = t, B = pp; break;
  case 1: R = q, G = v, B = pp; break;
  case 2: R = pp, G = v, B = t; break;
  case 3: R = pp, G = q, B = v; break;
  case 4: R = t, G = pp, B = v; break;
  default: break;
  }
  p[0] = (f32)(R * 255);
  p[1] = (f32)(G * 255);
  p[2] = (f32)(B * 255);
}

/* hue_pixel on the two pixels at p (six floats), one per f64x2 lane; the branches become selects. */
static inline void hue_pair(f32 *p, f64x2 sh) {
  const f64x2 k255 = SPLAT(255), one = SPLAT(1), zero = SPLAT(0);
  const f64x2 r = DIV(wasm_f64x2_make(p[0], p[3]), k255);
  const f64x2 g = DIV(wasm_f64x2_make(p[1], p[4]), k255);
  const f64x2 b = DIV(wasm_f64x2_make(p[2], p[5]), k255);
  const f64x2 maxc = wasm_f64x2_max(wasm_f64x2_max(r, g), b);
  const f64x2 minc = wasm_f64x2_min(wasm_f64x2_min(r, g), b);
  const f64x2 eqc = wasm_f64x2_eq(maxc, minc);
  const f64x2 cr = SUB(maxc, minc);
  const f64x2 s = DIV(cr, SEL(eqc, one, maxc));
  const f64x2 crd = SEL(eqc, one, cr);
  const f64x2 rc = DIV(SUB(maxc, r), crd), gc = DIV(SUB(maxc, g), crd), bc = DIV(SUB(maxc, b), crd);
  f64x2 h = SEL(wasm_f64x2_eq(maxc, r), SUB(bc, gc), SEL(wasm_f64x2_eq(maxc, g), SUB(ADD(SPLAT(2), rc), bc), SUB(ADD(SPLAT(4), gc), rc)));
  h = mod1_2(ADD(DIV(h, SPLAT(6)), one));
  h = mod1_2(ADD(mod1_2(ADD(h, sh)), one));
  const f64x2 v = maxc;
  const f64x2 h6 = MUL(h, SPLAT(6));
  f64x2 i0 = wasm_f64x2_floor(h6);
  const f64x2 f = SUB(h6, i0);
  const f64x2 pp = clamp01_2(MUL(v, SUB(one, s)));
  const f64x2 q = clamp01_2(MUL(v, SUB(one, MUL(s, f))));
  const f64x2 t = clamp01_2(MUL(v, SUB(one, MUL(s, SUB(one, f)))));
  /* h6 < 6, so i0 is 0..5; a 6 would be sextant 0, as ((i0 % 6) + 6) % 6 makes it */
  i0 = SEL(wasm_f64x2_eq(i0, SPLAT(6)), zero, i0);
  const f64x2 s0 = wasm_f64x2_eq(i0, zero), s1 = wasm_f64x2_eq(i0, one), s2 = wasm_f64x2_eq(i0, SPLAT(2));
  const f64x2 s3 = wasm_f64x2_eq(i0, SPLAT(3)), s4 = wasm_f64x2_eq(i0, SPLAT(4));
  /* the six sextants: (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) and, for 5, (v,p,q) */
  const f64x2 R = SEL(s0, v, SEL(s1, q, SEL(wasm_v128_or(s2, s3), pp, SEL(s4, t, v))));
  const f64x2 G = SEL(s0, t, SEL(wasm_v128_or(s1, s2), v, SEL(s3, q, pp)));
  const f64x2 B = SEL(wasm_v128_or(s0, s1), pp, SEL(s2, t, SEL(wasm_v128_or(s3, s4), v, q)));
  const f64x2 R255 = MUL(R, k255), G255 = MUL(G, k255), B255 = MUL(B, k255);
  p[0] = (f32)LANE(R255, 0);
  p[1] = (f32)LANE(G255, 0);
  p[2] = (f32)LANE(B255, 0);
  p[3] = (f32)LANE(R255, 1);
  p[4] = (f32)LANE(G255, 1);
  p[5] = (f32)LANE(B255, 1);
}

/*
 * color-ops.ts shiftHueReference: every pixel of each image whose shift is not 0, in place, through torchvision's
 * _rgb2hsv, the shift in turns with Python's floor modulo, and _hsv2rgb. px holds n·per RGB pixels in [0, 255].
 */
EXPORT(hue_shift)
void hue_shift(f32 *px, const double *shift, int n, int per) {
  for (int k = 0; k < n; k++) {
    const double sh = shift[k];
    if (sh == 0) continue;
    f32 *p = px + (long)k * per * 3;
    int i = 0;
    for (; i + 2 <= per; i += 2, p += 6) hue_pair(p, SPLAT(sh));
    for (; i < per; i++, p += 3) hue_pixel(p, sh);
  }
}

/*
 * color-jitter.ts jitterReference: brightness, contrast, saturation and grayscale composed into one linear map per
 * image, out = clip(a·x + b·luma(x) + c·mean luma, 0, 255), with coef = (a, b, c) per image (3 doubles), luma(x) =
 * 0.299·r + 0.587·g + 0.114·b summed left to right, and the mean luma that of the channel means (taken only where
 * c is not 0); then each channel's normalisation out·post[c] + post[3 + c] (1 and 0 leave the value as it is).
 * src holds n·per RGB pixels; total is the number of values in src, which bounds the vector reads.
 */
#define LUMA(r, g, b) (0.299 * (r) + 0.587 * (g) + 0.114 * (b))
#define LUMA2(r, g, b) ADD(ADD(MUL(SPLAT(0.299), (r)), MUL(SPLAT(0.587), (g))), MUL(SPLAT(0.114), (b)))
#define CLIP255(v) JS_MIN(255, JS_MAX(0, (v)))
/* lanes (x0, y1) and (x1, y0) of two f64x2 */
#define LO_HI(x, y) wasm_i64x2_shuffle((x), (y), 0, 3)
#define HI_LO(x, y) wasm_i64x2_shuffle((x), (y), 1, 2)
#define LANE0(x) wasm_i64x2_shuffle((x), (x), 0, 0)
#define LANE1(x) wasm_i64x2_shuffle((x), (x), 1, 1)
/* the high two f32 / u32 lanes of v moved down, for the f64x2 conversions that read the low two */
#define HIGH2(v) wasm_i32x4_shuffle((v), (v), 2, 3, 2, 3)

/* The 12 values of four RGB pixels at p as six f64x2: (r0 g0) (b0 r1) (g1 b1) (r2 g2) (b2 r3) (g3 b3). */
static inline void load12_u8(const u8 *p, f64x2 *q) {
  const v128_t v = wasm_v128_load(p); /* 16 bytes, 12 used: the caller keeps the read inside src */
  const v128_t lo = wasm_u16x8_extend_low_u8x16(v), hi = wasm_u16x8_extend_high_u8x16(v);
  const v128_t a0 = wasm_u32x4_extend_low_u16x8(lo), a1 = wasm_u32x4_extend_high_u16x8(lo), a2 = wasm_u32x4_extend_low_u16x8(hi);
  q[0] = wasm_f64x2_convert_low_u32x4(a0), q[1] = wasm_f64x2_convert_low_u32x4(HIGH2(a0));
  q[2] = wasm_f64x2_convert_low_u32x4(a1), q[3] = wasm_f64x2_convert_low_u32x4(HIGH2(a1));
  q[4] = wasm_f64x2_convert_low_u32x4(a2), q[5] = wasm_f64x2_convert_low_u32x4(HIGH2(a2));
}

static inline void load12_f32(const f32 *p, f64x2 *q) {
  const v128_t f0 = wasm_v128_load(p), f1 = wasm_v128_load(p + 4), f2 = wasm_v128_load(p + 8);
  q[0] = wasm_f64x2_promote_low_f32x4(f0), q[1] = wasm_f64x2_promote_low_f32x4(HIGH2(f0));
  q[2] = wasm_f64x2_promote_low_f32x4(f1), q[3] = wasm_f64x2_promote_low_f32x4(HIGH2(f1));
  q[4] = wasm_f64x2_promote_low_f32x4(f2), q[5] = wasm_f64x2_promote_low_f32x4(HIGH2(f2));
}

/*
 * The map on two pixels held as three f64x2 in memory order, q[0..2], written to out[0..2]; mul[j] and add[j] are
 * the normalisation of the channels in vector j: (r g) (b r) (g b).
 */
static inline void jitter_two(const f64x2 *q, f64x2 *out, f64x2 A, f64x2 b, f64x2 CM, const f64x2 *mul, const f64x2 *add) {
  /* (r0 r1) (g0 g1) (b0 b1) out of (r0 g0) (b0 r1) (g1 b1) */
  const f64x2 R = LO_HI(q[0], q[1]), G = HI_LO(q[0], q[2]), B = LO_HI(q[1], q[2]);
  const f64x2 lb = MUL(LUMA2(R, G, B), b);
  /* each value's own pixel's b·luma: (lb0 lb0) (lb0 lb1) (lb1 lb1) */
  const f64x2 l[3] = {LANE0(lb), lb, LANE1(lb)};
  for (int j = 0; j < 3; j++) {
    const f64x2 v = wasm_f64x2_min(SPLAT(255), wasm_f64x2_max(SPLAT(0), ADD(ADD(MUL(q[j], A), l[j]), CM)));
    out[j] = ADD(MUL(v, mul[j]), add[j]);
  }
}

#define JITTER(NAME, T, SUM, LOAD12)                                                                                        \
  EXPORT(NAME)                                                                                                         \
  void NAME(const T *src, f32 *out, const double *coef, const double *post, int n, int per, long total) {              \
    const f64x2 mul[3] = {wasm_f64x2_make(post[0], post[1]), wasm_f64x2_make(post[2], post[0]), wasm_f64x2_make(post[1], post[2])}; \
    const f64x2 add[3] = {wasm_f64x2_make(post[3], post[4]), wasm_f64x2_make(post[5], post[3]), wasm_f64x2_make(post[4], post[5])}; \
    for (int k = 0; k < n; k++) {                                                                                      \
      const double a = coef[3 * k], b = coef[3 * k + 1], c = coef[3 * k + 2];                                          \
      const long base = (long)k * per * 3;                                                                             \
      const T *s = src + base;                                                                                         \
      f32 *o = out + base;                                                                                             \
      double cm = 0;                                                                                                   \
      if (c != 0) {                                                                                                    \
        /* the channel sums: doubles added in order for float pixels; for 8-bit ones 64-bit integers, which the      \
           loop's doubles equal exactly (every partial sum is an integer below 2^53) */                                \
        SUM sr = 0, sg = 0, sb = 0;                                                                                    \
        for (int i = 0; i < per; i++) {                                                                                \
          sr += s[3 * i];                                                                                              \
          sg += s[3 * i + 1];                                                                                          \
          sb += s[3 * i + 2];                                                                                          \
        }                                                                                                              \
        cm = c * (LUMA((double)sr, (double)sg, (double)sb) / per);                                                     \
      }                                                                                                                \
      const f64x2 A = SPLAT(a), Bv = SPLAT(b), CM = SPLAT(cm);                                                        \
      int i = 0;                                                                                                       \
      for (; i + 4 <= per && base + 3L * i + 16 <= total; i += 4) {                                                    \
        f64x2 q[6], r[6];                                                                                              \
        LOAD12(s + 3 * i, q);                                                                                          \
        jitter_two(q, r, A, Bv, CM, mul, add);                                                                         \
        jitter_two(q + 3, r + 3, A, Bv, CM, mul, add);                                                                 \
        f32 *w = o + 3 * i;                                                                                            \
        for (int j = 0; j < 3; j++) {                                                                                  \
          const v128_t d0 = wasm_f32x4_demote_f64x2_zero(r[2 * j]), d1 = wasm_f32x4_demote_f64x2_zero(r[2 * j + 1]);   \
          wasm_v128_store(w + 4 * j, wasm_i32x4_shuffle(d0, d1, 0, 1, 4, 5));                                          \
        }                                                                                                              \
      }                                                                                                                \
      for (; i < per; i++) {                                                                                           \
        const double r = s[3 * i], g = s[3 * i + 1], bl = s[3 * i + 2];                                                \
        const double lb = LUMA(r, g, bl) * b;                                                                          \
        o[3 * i] = (f32)(CLIP255(r * a + lb + cm) * post[0] + post[3]);                                                \
        o[3 * i + 1] = (f32)(CLIP255(g * a + lb + cm) * post[1] + post[4]);                                            \
        o[3 * i + 2] = (f32)(CLIP255(bl * a + lb + cm) * post[2] + post[5]);                                           \
      }                                                                                                                \
    }                                                                                                                  \
  }

JITTER(jitter_u8, u8, long long, load12_u8)
JITTER(jitter_f32, f32, double, load12_f32)

/*
 * resize-crop.ts cropResizeReference: the window (top, left, h rows) of a width-wide RGB image, each row resampled
 * to size columns by the x filter (xs[i], xn[i], xw[i·xtaps …]) into tmp (h·size·3 + 1 floats), then each column to
 * size rows by the y filter, rounded half up and clamped to 8 bits. Single precision, as the loop's Math.fround: every
 * product and sum is a float32 operation, taps accumulated in input order. The row pass holds one pixel's three
 * channels in f32x4 lanes (the fourth lane reads the next byte, which src has, and is overwritten by the next
 * pixel's store, which tmp has room for); the column pass takes four adjacent values a step.
 */
EXPORT(crop_resize)
void crop_resize(const u8 *src, int width, int top, int left, int h, u8 *out, int size, const int *xs, const int *xn, const f32 *xw,
                 int xtaps, const int *ys, const int *yn, const f32 *yw, int ytaps, f32 *tmp) {
  for (int y = 0; y < h; y++) {
    const u8 *row = src + ((long)(top + y) * width + left) * 3;
    f32 *t = tmp + (long)y * size * 3;
    for (int x = 0; x < size; x++) {
      const u8 *s = row + xs[x] * 3;
      const f32 *w = xw + (long)x * xtaps;
      v128_t acc = wasm_f32x4_splat(0);
      for (int j = 0; j < xn[x]; j++) {
        const v128_t b = wasm_v128_load32_zero(s + 3 * j);
        const v128_t px = wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(b)));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(px, wasm_f32x4_splat(w[j])));
      }
      wasm_v128_store(t + 3 * x, acc);
    }
  }
  const int line = size * 3;
  for (int y = 0; y < size; y++) {
    const f32 *s = tmp + (long)ys[y] * line;
    const f32 *w = yw + (long)y * ytaps;
    const int n = yn[y];
    u8 *o = out + (long)y * line;
    int i = 0;
    for (; i + 4 <= line; i += 4) {
      v128_t acc = wasm_f32x4_splat(0);
      for (int j = 0; j < n; j++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(s + (long)j * line + i), wasm_f32x4_splat(w[j])));
      const v128_t v = wasm_f32x4_min(wasm_f32x4_splat(255), wasm_f32x4_max(wasm_f32x4_splat(0), wasm_f32x4_floor(wasm_f32x4_add(acc, wasm_f32x4_splat(0.5f)))));
      const v128_t q = wasm_i32x4_trunc_sat_f32x4(v);
      const v128_t b = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q, q), wasm_i16x8_splat(0));
      wasm_v128_store32_lane(o + i, b, 0);
    }
    for (; i < line; i++) {
      f32 acc = 0;
      for (int j = 0; j < n; j++) acc += s[(long)j * line + i] * w[j];
      o[i] = (u8)__builtin_wasm_min_f32(255, __builtin_wasm_max_f32(0, __builtin_floorf(acc + 0.5f)));
    }
  }
}
