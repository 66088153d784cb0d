#!/usr/bin/env bash
# Same seed, same backend, two revisions: are the demo's per-step losses and exported weights byte-identical?
# A redesign that claims "behaviour unchanged" (issue 14) shows it with this. It trains the demo job (`layertune demo`:
# the shipped MobileNet v1 0.25 at 224 px on the flower photos, the demo's defaults and seed) once from each revision,
# in throw-away git worktrees sharing this checkout's node_modules, running the TypeScript sources through tsx, and
# compares:
#   - every `step` line of metrics.jsonl (epoch, step, loss, accuracy, lrs, update ratios), as exact JSON text;
#   - every `epoch` line without its wall-clock fields (seconds);
#   - every file of the exported weights (model.json and the weight shards), byte for byte (sha256).
# Usage: scripts/compare-demo-run.sh [BASE_REV] [NEW_REV]
#        (defaults: where HEAD left main, `git merge-base main HEAD`, and HEAD; uncommitted changes are not included)
# Env:   EPOCHS (default 8, the demo's), DATA (default data/flowers, else data/flowers-sample). The backend is the
#        demo's (auto), the same for both runs. THREADS=N runs the demo's job as `train ... --threads N` instead of
#        `demo`, pinning the gradient thread count: a revision that changed what `threads: auto` resolves to would
#        otherwise differ for that reason alone (BatchNorm statistics are per thread).
# Exit:  0 identical, 1 different, 2 a run failed.
set -euo pipefail

BASE=${1:-$(git merge-base main HEAD)}
NEW=${2:-HEAD}
EPOCHS=${EPOCHS:-8}
ROOT=$(git rev-parse --show-toplevel)
DATA=${DATA:-$ROOT/data/flowers}
[ -d "$DATA" ] || DATA=$ROOT/data/flowers-sample
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lt-compare-XXXXXX")

cleanup() {
  for side in base new; do
    [ -d "$WORK/$side" ] && git -C "$ROOT" worktree remove --force "$WORK/$side" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${THREADS:-}" ]; then CMD=(train --threads "$THREADS"); else CMD=(demo); fi

run_side() {
  local side=$1 rev=$2
  git -C "$ROOT" worktree add --detach -q "$WORK/$side" "$rev"
  ln -s "$ROOT/node_modules" "$WORK/$side/node_modules"
  echo "== $side: $(git -C "$ROOT" log -1 --format='%h %s' "$rev" | cut -c1-100)"
  local t0=$SECONDS
  if ! (cd "$WORK/$side" && node --require tsx/cjs -e "require('./src/cli/main.ts').run(['node', 'layertune', ...process.argv.slice(1)])" \
    "${CMD[@]}" --data "$DATA" --out "$WORK/$side-run" --epochs "$EPOCHS" >"$WORK/$side.log" 2>&1); then
    echo "the $side run failed; its log:"
    tail -20 "$WORK/$side.log"
    exit 2
  fi
  echo "   trained in $((SECONDS - t0)) s; $(grep -c '"type":"step"' "$WORK/$side-run/metrics.jsonl") steps logged"
}

# The comparable part of a run: step lines as written, epoch lines without wall-clock time, hashes of the export.
digest() {
  local run=$1
  node -e '
    const fs = require("node:fs"), path = require("node:path"), crypto = require("node:crypto");
    const run = process.argv[1];
    for (const line of fs.readFileSync(path.join(run, "metrics.jsonl"), "utf8").split("\n")) {
      if (!line) continue;
      const o = JSON.parse(line);
      if (o.type === "step") console.log(line);
      else if (o.type === "epoch") { delete o.seconds; console.log(JSON.stringify(o)); }
    }
    const model = path.join(run, "model");
    for (const f of fs.readdirSync(model).sort()) {
      if (f !== "model.json" && !f.endsWith(".bin") && !/shard/.test(f)) continue;
      console.log(`export ${f} ${crypto.createHash("sha256").update(fs.readFileSync(path.join(model, f))).digest("hex")}`);
    }
  ' "$run"
}

echo "data: $DATA, epochs: $EPOCHS"
run_side base "$BASE"
run_side new "$NEW"
digest "$WORK/base-run" >"$WORK/base.digest"
digest "$WORK/new-run" >"$WORK/new.digest"
steps=$(grep -c '"type":"step"' "$WORK/base.digest" || true)
files=$(grep -c '^export ' "$WORK/base.digest" || true)
if cmp -s "$WORK/base.digest" "$WORK/new.digest"; then
  echo "IDENTICAL: $steps per-step lines (loss, accuracy, rates), $EPOCHS epoch lines and $files export files are byte-identical"
  grep '"type":"step"' "$WORK/base.digest" | tail -1 | cut -c1-160
  grep '^export ' "$WORK/base.digest"
  exit 0
fi
echo "DIFFERENT: first differences (< $BASE, > $NEW):"
diff "$WORK/base.digest" "$WORK/new.digest" | head -20
exit 1
