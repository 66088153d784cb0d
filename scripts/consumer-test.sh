#!/usr/bin/env bash
# Checks the package as a user gets it: npm pack, install the tarball into an empty project, then use
# the CLI (npx, .bin), CommonJS, an ES module and a strict TypeScript consumer. Dependencies come from
# the registry (or the local npm cache); nothing from this clone but the tarball is visible to it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/layertune-consumer.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "pack"
cd "$ROOT"
npm pack --dry-run --json 2>/dev/null > "$WORK/pack.json"
node -e '
  const [p] = require(process.argv[1]);
  // the only photos packed are the small demo subset; the full data/flowers and test fixtures stay out
  const fixtures = p.files.filter((f) => (/^(test|data)\//.test(f.path) && !f.path.startsWith("data/flowers-sample/")) || /\.test\./.test(f.path));
  const sample = p.files.filter((f) => /^data\/flowers-sample\/.+\.jpg$/.test(f.path)).length;
  console.log(`demo subset: ${sample} photos`);
  if (sample === 0) throw new Error("the demo photo subset is not packed");
  console.log(`tarball ${(p.size / 1e6).toFixed(2)} MB, ${p.entryCount} files`);
  if (fixtures.length) throw new Error(`test fixtures packed: ${fixtures.slice(0, 5).map((f) => f.path)}`);
  if (p.size > 6e6) throw new Error("tarball over 6 MB");
' "$WORK/pack.json"
TGZ="$(npm pack --pack-destination "$WORK" --silent | tail -1)"

step "install into an empty project"
mkdir "$WORK/app" && cd "$WORK/app"
npm init -y >/dev/null
start=$(date +%s)
npm install "$WORK/$TGZ" --no-audit --no-fund --loglevel=error
echo "installed in $(( $(date +%s) - start )) s"

step "CLI"
npx layertune --version
npx layertune --help | head -5
test -x node_modules/.bin/layertune
./node_modules/.bin/layertune --version
set +e; npx layertune nonsense 2>err.txt; rc=$?; set -e
[ "$rc" = 2 ] || { echo "unknown command exited $rc, expected 2"; exit 1; }
head -1 err.txt

step "train on the embedded default model, then predict"
mkdir -p photos
for c in daisy rose; do mkdir -p photos/$c; ls "$ROOT/data/flowers/$c" | head -6 | while read f; do cp "$ROOT/data/flowers/$c/$f" photos/$c/; done; done
npx layertune train --data photos --epochs 1 --size 96 --out r --no-report 2>&1 | tail -3
npx layertune predict --model r/model "photos/rose/$(ls photos/rose | head -1)" 2>&1 | tail -2

step "CommonJS and ES module consumers"
cat > cjs.cjs <<'JS'
const { runJob } = require('layertune');
runJob({ data: { dir: 'photos' }, model: { size: 96 }, train: { epochs: 1 }, out: 'r-cjs' }, { report: false })
  .then((r) => console.log('cjs ok, val accuracy', r.val?.accuracy));
JS
node cjs.cjs 2>&1 | tail -1
cat > esm.mjs <<'JS'
import * as layertune from 'layertune';
const { runJob, loadClassifier, predictFiles } = layertune;
const r = await runJob({ data: { dir: 'photos' }, model: { size: 96 }, train: { epochs: 1 }, out: 'r-esm' }, { report: false });
console.log('esm ok, val accuracy', r.val?.accuracy);
const [p] = await predictFiles(await loadClassifier(r.exportDir), ['photos/daisy/' + (await import('node:fs')).readdirSync('photos/daisy')[0]], 2);
console.log('esm predict', p.top.map((t) => `${t.label} ${t.probability.toFixed(3)}`).join(', '));
if ('nudge' in layertune || 'Trainer' in layertune) throw new Error('internals exported from the package root');
console.log('esm: internals (nudge, Trainer) not exported');
JS
node esm.mjs 2>&1 | tail -3
set +e; node -e "require('layertune/dist/job')" 2>&1 | grep -o ERR_PACKAGE_PATH_NOT_EXPORTED | head -1; set -e

step "strict TypeScript consumer"
TSC="$ROOT/node_modules/.bin/tsc"
cat > ok.ts <<'TS'
import { runJob, type JobInput } from 'layertune';
const input: JobInput = { data: { dir: 'photos' }, train: { epochs: 1 } };
export async function go(): Promise<number> {
  const result = await runJob(input);
  return result.val?.accuracy ?? 0;
}
TS
cat > bad.ts <<'TS'
import { runJob } from 'layertune';
void runJob({ data: { dir: 'photos' }, train: { epoch: 1 } });
TS
TSFLAGS="--strict --noEmit --module nodenext --moduleResolution nodenext --target es2022 --types node --skipLibCheck"
npm install --no-audit --no-fund --loglevel=error @types/node@20 >/dev/null
"$TSC" $TSFLAGS ok.ts && echo "ok.ts type-checks"
if "$TSC" $TSFLAGS bad.ts > bad.txt; then echo "bad.ts (misspelt key) type-checked"; exit 1; fi
echo "bad.ts rejected: $(grep -o "error TS[0-9]*" bad.txt | head -1)"

step "global install (--prefix), used from an unrelated directory"
start=$(date +%s)
npm install -g "$WORK/$TGZ" --prefix "$WORK/global" --no-audit --no-fund --loglevel=error
echo "installed globally in $(( $(date +%s) - start )) s"
mkdir "$WORK/elsewhere" && cd "$WORK/elsewhere"
export PATH="$WORK/global/bin:$PATH"
echo "layertune on PATH: $(command -v layertune)"
layertune --version
layertune demo --epochs 1 > demo.txt 2>&1 || { cat demo.txt; exit 1; }
grep -E '^demo: ' demo.txt
tail -2 demo.txt
test -f runs/demo/model/model.json
layertune predict --model runs/demo/model "$ROOT/data/flowers/tulip/$(ls "$ROOT/data/flowers/tulip" | head -1)" 2>&1 | tail -4

step "consumer test passed"
