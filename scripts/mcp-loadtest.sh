#!/usr/bin/env bash
# MCP gateway load test, side by side in one run: `tools/call` returning about
# 1 KiB, straight to the upstream MCP server (`zt4ai mcp-demo crm` over Streamable
# HTTP) and through the zt4ai gateway (delegated token verified, pin checked,
# policy decided, the result's label absorbed into the session). Both run at a
# saturation, then at a fixed 1,000 calls/s. Last, the gateway's resident memory
# with 1,000 concurrent MCP sessions, each of which has made a call.
#
# Usage: scripts/mcp-loadtest.sh [DURATION_SECONDS] [CONNECTIONS]
# (ZT4AI_MCP_ROUNDS: saturation rounds, default 5; ZT4AI_MCP_RATE_ROUNDS: pairs
# of 5 s runs at the fixed rate, default 9; ZT4AI_MCP_SESSIONS: 1000;
# ZT4AI_BIN: the zt4ai binary, default target/release/zt4ai)
# Installs the load generator oha (fixed-rate mode, latency correction) from
# crates.io into target/tools if missing. Loopback only. The load generator, the
# upstream and the gateway share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNS="${2:-32}"
UP_PORT="${ZT4AI_UPSTREAM_PORT:-18181}"
GW_PORT="${ZT4AI_GATEWAY_PORT:-18180}"
SESSIONS="${ZT4AI_MCP_SESSIONS:-1000}"
ROUNDS="${ZT4AI_MCP_ROUNDS:-5}"
RATE_ROUNDS="${ZT4AI_MCP_RATE_ROUNDS:-9}"
RATE_DURATION=5
OHA=target/tools/bin/oha

if [[ ! -x "$OHA" ]]; then
  echo "installing oha (crates.io) into target/tools…"
  cargo install oha --locked --root target/tools >/dev/null
fi
cargo build -q --release -p zt4ai-cli --locked
BIN=${ZT4AI_BIN:-target/release/zt4ai}
WORK="$(mktemp -d)"
cleanup() {
  kill "${GW_PID:-}" "${UP_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ZT4AI_LOG=warn "$BIN" mcp-demo crm --http "127.0.0.1:$UP_PORT" >"$WORK/up.log" 2>&1 &
UP_PID=$!
sed 's|^settings:|mcp_servers:\n  - id: crm\n    url: http://127.0.0.1:'"$UP_PORT"'/mcp\nsettings:|' \
  examples/acme/inventory.yaml >"$WORK/inventory.yaml"
ZT4AI_LOG=warn "$BIN" serve --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
  --data-dir "$WORK/data" --listen "127.0.0.1:$GW_PORT" >"$WORK/serve.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && grep -q listening "$WORK/up.log" && break
  sleep 0.1
done
echo '{"subject":{"type":"agent","id":"report-agent","properties":{"user":"alice"}},"action":{"name":"call_tool"},"resource":{"type":"tool","id":"crm.query"},"context":{"session":"s"}}' >"$WORK/req.jsonl"
TOKEN=$("$BIN" token mint --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
  --data-dir "$WORK/data" --for-requests "$WORK/req.jsonl")

ACCEPT="accept: application/json, text/event-stream"
CT="content-type: application/json"
PV="mcp-protocol-version: 2025-11-25"
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"loadtest","version":"0"}}}'

# Opens an MCP session at URL (with the bearer token if given); prints its id.
open_session() {
  local url=$1 auth=${2:-} h
  h=$(curl -s -D - -o /dev/null -X POST "$url" -H "$ACCEPT" -H "$CT" ${auth:+-H "authorization: Bearer $auth"} -d "$INIT")
  local sid
  sid=$(printf '%s' "$h" | awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
  curl -s -o /dev/null -X POST "$url" -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $sid" \
    ${auth:+-H "authorization: Bearer $auth"} -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s\n' "$sid"
}
call_body() { printf '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"%s","arguments":{"table":"customers"}}}' "$1"; }
# bodies FILE TOOL PREFIX LINES: one tools/call per line, each with its own
# JSON-RPC id. Ids must not repeat within a session (rmcp serves requests that
# share an id one after another, which would throttle the direct baseline).
bodies() {
  python3 - "$@" <<'PY'
import sys
path, tool, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(path, "w") as f:
    for i in range(n):
        f.write('{"jsonrpc":"2.0","id":"%s-%d","method":"tools/call","params":{"name":"%s","arguments":{"table":"customers"}}}\n' % (prefix, i, tool))
PY
}

DIRECT_URL="http://127.0.0.1:$UP_PORT/mcp"
GW_URL="http://127.0.0.1:$GW_PORT/mcp"
DIRECT_SID=$(open_session "$DIRECT_URL")
GW_SID=$(open_session "$GW_URL" "$TOKEN")
# Sanity: one call each way, and the result's size.
SIZE=$(curl -s -X POST "$DIRECT_URL" -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $DIRECT_SID" -d "$(call_body query)" | wc -c)
OUT=$(curl -s -X POST "$GW_URL" -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $GW_SID" \
  -H "authorization: Bearer $TOKEN" -d "$(call_body crm.query)")
grep -q ACME-001 <<<"$OUT" || { echo "the gateway did not answer the call: $OUT"; exit 1; }

# Calls the gateway has allowed so far (its metrics).
allowed() {
  curl -s "http://127.0.0.1:$GW_PORT/metrics" -H "authorization: Bearer $(cat "$WORK/data/admin-token")" |
    awk '/^zt4ai_decisions_total\{.*decision="allow"/ {n += $2} END {printf "%d\n", n}'
}
# CPU time (user + system, clock ticks) of process $1.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$GW_PID/status"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "answer size: direct $SIZE bytes (JSON-RPC framed as SSE), through zt4ai ${#OUT} bytes (JSON); gateway idle RSS: $(rss)"

# run NAME URL SID TOOL [RATE [SECONDS]] → one summary line.
RUNS=0
run() {
  local name=$1 url=$2 sid=$3 tool=$4 rate=${5:-} secs=${6:-$DURATION} auth=()
  [[ $url == "$GW_URL" ]] && auth=(-H "authorization: Bearer $TOKEN")
  RUNS=$((RUNS + 1))
  bodies "$WORK/warm.txt" "$tool" "w$RUNS" 100000
  bodies "$WORK/bodies.txt" "$tool" "r$RUNS" 600000
  # warm-up, not measured
  "$OHA" -z 2s -c "$CONNS" ${rate:+-q "$rate" --latency-correction} --no-tui --output-format json \
    -m POST -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $sid" "${auth[@]}" \
    -Z "$WORK/warm.txt" "$url" >/dev/null
  "$OHA" -z "${secs}s" -c "$CONNS" ${rate:+-q "$rate" --latency-correction} --no-tui --output-format json \
    -m POST -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $sid" "${auth[@]}" \
    -Z "$WORK/bodies.txt" "$url" >"$WORK/run.json" &
  local oha=$! gw0 up0 al0
  gw0=$(cpu "$GW_PID"); up0=$(cpu "$UP_PID"); al0=$(allowed)
  wait "$oha"
  python3 - "$WORK/run.json" "$name" "$(($(cpu "$GW_PID") - gw0))" "$(($(cpu "$UP_PID") - up0))" \
    "$([[ $url == "$GW_URL" ]] && echo $(($(allowed) - al0)) || echo -)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
n = max(1, sum(codes.values()))
gw, up = (int(t) * 10 / n for t in sys.argv[3:5])  # clock ticks (10 ms) -> ms per call
# A JSON-RPC error (a refusal) is an HTTP 200 too: count the calls allowed.
allowed = "" if sys.argv[5] == "-" else f"  allowed {int(sys.argv[5]) / n * 100:5.1f}%"
print(f"{sys.argv[2]:<28} {s['requestsPerSec']:>9.0f} calls/s  p50 {p['p50']*1e3:6.3f} ms  p99 {p['p99']*1e3:6.3f} ms  success {s['successRate']*100:5.1f}%  statuses {codes}  CPU/call: gateway {gw:.3f} ms, upstream {up:.3f} ms{allowed}")
PY
}

# pct P: percentile P (p50, p99) of the last run, in ms.
pct() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latencyPercentiles"][sys.argv[2]]*1e3)' "$WORK/run.json" "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Saturation first: continuous verification learns the agent's call rate, and
# after five active minutes a jump from 1,000 calls/s to saturation is a burst
# that sends its calls to approval (they would be measured as refusals).
echo "== saturation: ${DURATION} s, ${CONNS} connections, ${ROUNDS} rounds of direct then through zt4ai"
# This VM's capacity drifts by tens of per cent over minutes, so the two are
# measured in alternation and the ratio is taken per round.
RATIOS=()
for round in $(seq "$ROUNDS"); do
  run "direct (saturation) #$round" "$DIRECT_URL" "$DIRECT_SID" query
  direct=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$WORK/run.json")
  if [[ $round == 1 ]]; then
    ( sleep "$((DURATION / 2 + 2))"; echo "gateway RSS under load: $(rss)" ) &
    SAMPLER=$!
  fi
  run "through zt4ai (saturation) #$round" "$GW_URL" "$GW_SID" crm.query
  through=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$WORK/run.json")
  RATIOS+=("$(python3 -c 'import sys; print(f"{100*float(sys.argv[2])/float(sys.argv[1]):.1f}")' "$direct" "$through")")
done
wait "$SAMPLER"
echo "through zt4ai / direct, per round: ${RATIOS[*]} % (median $(median "${RATIOS[@]}") %)"
# This VM's speed drifts within minutes, and a slow minute moves both
# percentiles by more than the gateway adds, so the fixed rate is measured in
# many short pairs (direct, then through zt4ai) and the added latency is the
# median of the pairs' differences.
echo "== fixed rate: 1,000 calls/s, ${RATE_ROUNDS} pairs of ${RATE_DURATION} s runs, ${CONNS} connections"
P50=(); P99=()
for round in $(seq "$RATE_ROUNDS"); do
  run "direct@1000/s #$round" "$DIRECT_URL" "$DIRECT_SID" query 1000 "$RATE_DURATION"
  d50=$(pct p50); d99=$(pct p99)
  run "through zt4ai@1000/s #$round" "$GW_URL" "$GW_SID" crm.query 1000 "$RATE_DURATION"
  P50+=("$(python3 -c 'import sys; print(f"{float(sys.argv[2])-float(sys.argv[1]):+.3f}")' "$d50" "$(pct p50)")")
  P99+=("$(python3 -c 'import sys; print(f"{float(sys.argv[2])-float(sys.argv[1]):+.3f}")' "$d99" "$(pct p99)")")
done
echo "added by zt4ai at 1,000 calls/s, p50 ms per pair: ${P50[*]} (median $(median "${P50[@]}"))"
echo "added by zt4ai at 1,000 calls/s, p99 ms per pair: ${P99[*]} (median $(median "${P99[@]}"))"
echo "CPU time used so far: gateway $(awk '{printf "%.1f s", ($14+$15)/100}' "/proc/$GW_PID/stat"), upstream $(awk '{printf "%.1f s", ($14+$15)/100}' "/proc/$UP_PID/stat")"
echo "gateway RSS after the load runs: $(rss)"

echo "== ${SESSIONS} concurrent MCP sessions through a freshly started gateway, one call each"
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
ZT4AI_LOG=warn "$BIN" serve --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
  --data-dir "$WORK/data" --listen "127.0.0.1:$GW_PORT" >>"$WORK/serve.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.1; done
echo "fresh gateway idle RSS: $(rss)"
# Each session presents its own delegated token, as distinct agents' tasks
# would, so each has its own information-flow session too.
for _ in $(seq "$SESSIONS"); do cat "$WORK/req.jsonl"; done >"$WORK/reqs.jsonl"
"$BIN" token mint --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
  --data-dir "$WORK/data" --for-requests "$WORK/reqs.jsonl" --each >"$WORK/tokens.txt"
export -f open_session call_body
export ACCEPT CT PV INIT GW_URL
ANSWERED=$(xargs -P 8 -I{} bash -c '
  sid=$(open_session "$GW_URL" "{}")
  curl -s -X POST "$GW_URL" -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $sid" \
    -H "authorization: Bearer {}" -d "$(call_body crm.query)" | grep -c ACME-001' <"$WORK/tokens.txt" | grep -c '^1$' || true)
echo "gateway RSS with ${SESSIONS} live MCP sessions, one token each: $(rss) (${ANSWERED} of them had their call answered)"
echo "health: $(curl -s "http://127.0.0.1:$GW_PORT/healthz")"
