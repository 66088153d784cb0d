#!/usr/bin/env bash
# Validation accuracy of a trained export under each evaluation crop, to choose eval.crop's default by measurement.
#
#   scripts/measure-eval-crop.sh EXPORT_DIR [DATA_DIR]
#
# DATA_DIR (default ../shared/data/flowers5) is split exactly as training splits it (data.valFraction 0.2,
# data.splitSeed 42; override with VAL_FRACTION / SPLIT_SEED), so the numbers are on the run's own validation
# photos. Prints one line per setting: fill, center at cropPct 0.875 (timm) and 1, and each again with --tta flip
# when TTA=1. BACKEND (default auto) picks the backend. Needs `npm run build` (it runs the CLI from dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/measure-eval-crop.sh EXPORT_DIR [DATA_DIR]}
DATA=${2:-../shared/data/flowers5}
BACKEND=${BACKEND:-auto}
VAL=$(mktemp -d)
trap 'rm -rf "$VAL"' EXIT
# the validation split as links in a class-folder tree, which is what `evaluate` reads
VAL_FRACTION=${VAL_FRACTION:-0.2} SPLIT_SEED=${SPLIT_SEED:-42} npx tsx -e '
const fs = require("node:fs");
const path = require("node:path");
const { ImageFolderSource } = require("./src/data/image-folder");
const [root, out] = process.argv.slice(1);
const s = new ImageFolderSource({ root, valFraction: Number(process.env.VAL_FRACTION), seed: Number(process.env.SPLIT_SEED) });
for (const e of s.val) {
  const dir = path.join(out, s.classes[e.label]);
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.resolve(e.key), path.join(dir, path.basename(e.key)));
}
console.error(`validation split: ${s.val.length} of ${s.train.length + s.val.length} photos`);
' "$DATA" "$VAL"
run() {
  local label=$1
  shift
  local acc
  acc=$(node bin/layertune.js evaluate --model "$MODEL" --data "$VAL" --backend "$BACKEND" --json "$@" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(`${r.accuracy.toFixed(4)} (${Math.round(r.accuracy*r.n)}/${r.n})`)})')
  printf '%-34s %s\n' "$label" "$acc"
}
printf '%-34s %s\n' 'eval crop' 'validation accuracy'
for tta in none ${TTA:+flip}; do
  suffix=$([ "$tta" = none ] && echo '' || echo ", --tta $tta")
  run "fill$suffix" --crop fill --tta "$tta"
  run "center, cropPct 0.875$suffix" --crop center --crop-pct 0.875 --tta "$tta"
  run "center, cropPct 1$suffix" --crop center --crop-pct 1 --tta "$tta"
done
