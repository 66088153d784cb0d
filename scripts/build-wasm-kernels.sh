#!/bin/sh
# Builds src/engine/wasm/train_kernels.wasm from csrc/train_kernels.c with Debian's clang + wasm-ld
# (no emscripten). The module imports tfjs-wasm's memory ("env"."memory"), so it must not own any data
# or use a shadow stack; this script refuses a binary that does.
# Usage: scripts/build-wasm-kernels.sh [OUT]   (default: src/engine/wasm/train_kernels.wasm)
set -eu
cd "$(dirname "$0")/.."
CLANG=${CLANG:-clang}
OUT=${1:-src/engine/wasm/train_kernels.wasm}
TMP="$OUT.tmp.$$"
"$CLANG" --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding -fno-exceptions \
  -ffp-contract=off -fno-ident -ffile-prefix-map="$PWD"=. \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=0 \
  -o "$TMP" "${SRC:-csrc/train_kernels.c}"
# Shared-memory safety: no data segments, no use of the stack pointer.
DUMP=$(llvm-objdump -d -h "$TMP" 2>/dev/null || true)
if printf '%s' "$DUMP" | grep -qE '^\s+[0-9]+ DATA\s'; then echo "error: $OUT has a data section" >&2; rm -f "$TMP"; exit 1; fi
if printf '%s' "$DUMP" | grep -qE 'global\.(get|set)'; then echo "error: $OUT uses a global (the shadow stack)" >&2; rm -f "$TMP"; exit 1; fi
chmod 644 "$TMP" # wasm-ld marks its output executable; it is data
mv "$TMP" "$OUT"
echo "built $OUT ($(wc -c < "$OUT") bytes)"
