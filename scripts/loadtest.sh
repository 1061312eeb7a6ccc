#!/usr/bin/env bash
# Load test: AuthZEN decisions over HTTP with a real load generator (wrk), on the
# synthetic inventory (100 agents, 1,000 tools, 200 policies) and a request mix
# over ~10,000 sessions, each request with a delegated token (verified per request). Reports throughput, latency percentiles and the server's
# resident memory idle, under load, and with every session live.
#
# Usage: scripts/loadtest.sh [DURATION_SECONDS] [CONNECTIONS]
#   ZT4AI_DECISION_CACHE=0 scripts/loadtest.sh …   every decision evaluated afresh
# Installs wrk from Debian's packages if missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-20}"
CONNS="${2:-64}"
PORT="${ZT4AI_LOADTEST_PORT:-18080}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)…"
  (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
fi

cargo build --release -p zt4ai-cli --locked >/dev/null
BIN=${ZT4AI_BIN:-target/release/zt4ai}
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" gen-inventory "$WORK" --sessions-per-agent 140
cat > "$WORK/mix.lua" <<LUA
local bodies = {}
for line in io.lines("$WORK/requests.jsonl") do bodies[#bodies + 1] = line end
local tokens = {}
for line in io.lines("$WORK/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/access/v1/evaluation",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i]}, bodies[i])
end
LUA

ZT4AI_LOG=warn "$BIN" serve --inventory "$WORK/inventory.yaml" --data-dir "$WORK/data" \
  --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
# Every request carries a delegated token for its chain, signed with the server's
# key (created at startup); tokens of suspended agents are refused with 401.
"$BIN" token mint --data-dir "$WORK/data" --for-requests "$WORK/requests.jsonl" > "$WORK/tokens.txt"
echo "tokens: $(sort -u "$WORK/tokens.txt" | wc -l) distinct delegated tokens for $(wc -l < "$WORK/tokens.txt") requests"

rss() {
  awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status"
  awk '/^Anonymous/ {printf " (anonymous %.1f MiB)", $2/1024}' "/proc/$PID/smaps_rollup"
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "idle RSS: $(rss)"

echo "warm-up (5 s): every session in the mix becomes live"
wrk -t1 -c"$CONNS" -d5s -s "$WORK/mix.lua" "http://127.0.0.1:$PORT" >/dev/null
echo "after warm-up: $(curl -s "http://127.0.0.1:$PORT/healthz"), RSS $(rss)"

echo "measured run (${DURATION} s, ${CONNS} connections, 1 wrk thread):"
( sleep "$((DURATION / 2))"; echo "RSS under load: $(rss)" ) &
SAMPLER=$!
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/mix.lua" "http://127.0.0.1:$PORT"
wait "$SAMPLER"
echo "after run: $(curl -s "http://127.0.0.1:$PORT/healthz"), RSS $(rss)"
# The verdicts since start (warm-up included), from the server's metrics: a
# change of policy semantics changes the mix, and approvals cost a disk write.
echo "verdicts: $(curl -s "http://127.0.0.1:$PORT/metrics" -H "authorization: Bearer $(cat "$WORK/data/admin-token")" |
  awk '/^zt4ai_decisions_total\{/ { match($0, /decision="[a-z_]+"/); d = substr($0, RSTART + 10, RLENGTH - 11); n[d] += $2; t += $2 }
       END { for (d in n) printf "%s %.1f%%  ", d, 100 * n[d] / t }')"
