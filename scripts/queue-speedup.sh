#!/usr/bin/env bash
# The same search run in-process and through the Redis queue with 1, 2 and 3 `layertune worker` processes on this
# machine: wall time of each, speed-up over in-process, and whether the ranking is the in-process one.
#
#   npm run build && scripts/queue-speedup.sh            # needs redis-server on PATH (apt-get install redis-server)
#   TRIALS=12 EPOCHS=3 SIZE=128 WORKERS="1 2 4" scripts/queue-speedup.sh
#
# Median stopping is off: which trials get cut depends on which finished first, so only then is the ranking
# comparable. Each worker process pays the model load once (its sandboxed child keeps it for the next trial), so
# short searches understate the speed-up. Workers beyond the number of free cores cannot help: on a 2-core machine
# the best case is 2x. Run it on a quiet machine for numbers worth quoting.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-$ROOT/data/flowers-sample}"
TRIALS="${TRIALS:-6}"
EPOCHS="${EPOCHS:-2}"
SIZE="${SIZE:-96}"
BATCH="${BATCH:-16}"
WORKERS="${WORKERS:-1 2 3}"
BIN="$ROOT/bin/layertune.js"

command -v redis-server >/dev/null || { echo "error: redis-server is not on PATH (apt-get install redis-server)" >&2; exit 2; }
[ -f "$ROOT/dist/cli/main.js" ] || { echo "error: $ROOT/dist is missing: run npm run build first" >&2; exit 2; }

WORK="$(mktemp -d -t lt-speedup-XXXXXX)"
PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
URL="redis://127.0.0.1:$PORT/0"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
until node -e "require('net').connect($PORT,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"; do sleep 0.2; done

echo "{\"trials\": $TRIALS, \"seed\": 5, \"metric\": \"val_loss\", \"medianStop\": false}" >"$WORK/search.json"
search() { # out-folder [extra flags...]
  local out="$1"
  shift
  node "$BIN" search --data "$DATA" --size "$SIZE" --epochs "$EPOCHS" --batch "$BATCH" --out "$out" --search-config "$WORK/search.json" "$@"
}
now() { node -e 'console.log(Date.now())'; }
ranking() { node -e "console.log(JSON.parse(require('fs').readFileSync('$1/results.json','utf8')).ranking.join(','))"; }

echo "search: $TRIALS trials, $EPOCHS epoch(s) at ${SIZE}px, batch $BATCH, on $DATA; $(nproc) core(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
search "$WORK/local" >"$WORK/local.log" 2>&1
t1=$(now)
LOCAL_MS=$((t1 - t0))
LOCAL_RANK="$(ranking "$WORK/local")"
printf '%-14s %8s %9s  %s\n' "mode" "wall s" "speed-up" "ranking (same as in-process?)"
printf '%-14s %8.1f %9s  %s\n' "in-process" "$(echo "$LOCAL_MS / 1000" | bc -l)" "1.00x" "$LOCAL_RANK"

for n in $WORKERS; do
  WPIDS=()
  for i in $(seq 1 "$n"); do
    node "$BIN" worker --queue "$URL" >"$WORK/worker-$n-$i.log" 2>&1 &
    WPIDS+=("$!")
    PIDS+=("$!")
  done
  for i in $(seq 1 "$n"); do
    until grep -q '^worker on ' "$WORK/worker-$n-$i.log" 2>/dev/null; do sleep 0.2; done
  done
  t0=$(now)
  search "$WORK/queue-$n" --queue "$URL" >"$WORK/queue-$n.log" 2>&1 || { echo "error: the queued search with $n worker(s) failed:" >&2; tail -5 "$WORK/queue-$n.log" >&2; exit 1; }
  t1=$(now)
  MS=$((t1 - t0))
  RANK="$(ranking "$WORK/queue-$n")"
  SAME=$([ "$RANK" = "$LOCAL_RANK" ] && echo same || echo DIFFERENT)
  BUSY=$(grep -l ': done,' "$WORK"/worker-"$n"-*.log | wc -l)
  printf '%-14s %8.1f %8.2fx  %s (%s; %s of %s worker(s) ran trials)\n' "$n worker(s)" "$(echo "$MS / 1000" | bc -l)" "$(echo "$LOCAL_MS / $MS" | bc -l)" "$RANK" "$SAME" "$BUSY" "$n"
  # SIGTERM drains: the workers are idle, so they exit at once
  kill -TERM "${WPIDS[@]}"
  wait "${WPIDS[@]}" 2>/dev/null || true
done
