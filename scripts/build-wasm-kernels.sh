#!/bin/sh
# Builds the wasm kernel modules with Debian's clang + wasm-ld (no emscripten):
#   csrc/train_kernels.c -> src/engine/wasm/train_kernels.wasm
#   csrc/winograd.c      -> src/engine/wasm/winograd.wasm
#   csrc/augment_kernels.c -> src/engine/wasm/augment_kernels.wasm (given a private memory, not tfjs's)
# Each module imports tfjs-wasm's memory ("env"."memory"), so it must not own any data or use a shadow
# stack; this script refuses a binary that does.
# Two builds of each, both committed (CI has no clang and uses them as they are):
#   default       Debian 12's clang (14), -msimd128: multiply then add;
#   BUILD=fma     clang-16 (apt-get install clang-16 lld-16), -mrelaxed-simd -DLT_RELAXED_FMA:
#                 f32x4.relaxed_madd in the inner loops, written to *_fma.wasm. clang 14 cannot make it:
#                 it emits the pre-standard FMA opcode that no shipping V8 accepts.
# augment_kernels.c is built with clang-16 in both builds (AUG_CLANG overrides): it is new, so no clang 14 bytes
# need keeping, and its double-precision maths has no MADD, so its two builds compute the same values.
# Usage: [BUILD=fma] scripts/build-wasm-kernels.sh            builds the three modules
#        [BUILD=fma] SRC=csrc/x.c scripts/build-wasm-kernels.sh
#                                                 builds SRC into src/engine/wasm/x[_fma].wasm
#        [BUILD=fma] [SRC=csrc/x.c] scripts/build-wasm-kernels.sh OUT
#                                                 builds SRC (default csrc/train_kernels.c) into OUT
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-simd128}
case "$BUILD" in
  simd128) CLANG=${CLANG:-clang}; FEATURES="-msimd128"; SUFFIX="" ;;
  fma) CLANG=${CLANG:-clang-16}; FEATURES="-msimd128 -mrelaxed-simd -DLT_RELAXED_FMA"; SUFFIX="_fma" ;;
  *) echo "error: BUILD must be simd128 or fma, got $BUILD" >&2; exit 2 ;;
esac

build() { # build SRC OUT
  TMP="$2.tmp.$$"
  CC=$CLANG
  case "$1" in *augment_kernels.c) CC=${AUG_CLANG:-clang-16} ;; esac
  "$CC" --target=wasm32 -O3 $FEATURES -mbulk-memory -nostdlib -ffreestanding -fno-exceptions \
    -ffp-contract=off -fno-ident -ffile-prefix-map="$PWD"=. \
    -Wall -Wextra -Werror \
    -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=0 \
    -o "$TMP" "$1"
  # Shared-memory safety: no data segments, no use of the stack pointer.
  DUMP=$(llvm-objdump -d -h "$TMP" 2>/dev/null || true)
  if printf '%s' "$DUMP" | grep -qE '^\s+[0-9]+ DATA\s'; then echo "error: $2 has a data section" >&2; rm -f "$TMP"; exit 1; fi
  if printf '%s' "$DUMP" | grep -qE 'global\.(get|set)'; then echo "error: $2 uses a global (the shadow stack)" >&2; rm -f "$TMP"; exit 1; fi
  chmod 644 "$TMP" # wasm-ld marks its output executable; it is data
  mv "$TMP" "$2"
  echo "built $2 ($(wc -c < "$2") bytes)"
}

if [ $# -ge 1 ]; then
  build "${SRC:-csrc/train_kernels.c}" "$1"
elif [ -n "${SRC:-}" ]; then
  build "$SRC" "src/engine/wasm/$(basename "$SRC" .c)$SUFFIX.wasm"
else
  build csrc/train_kernels.c "src/engine/wasm/train_kernels$SUFFIX.wasm"
  build csrc/winograd.c "src/engine/wasm/winograd$SUFFIX.wasm"
  build csrc/augment_kernels.c "src/engine/wasm/augment_kernels$SUFFIX.wasm"
fi
