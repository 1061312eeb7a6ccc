#!/usr/bin/env bash
# Two zt4ai builds side by side on one MCP upstream: direct, build A, build B in
# turn, at saturation (four rounds) and then at 1,000 calls/s (six rounds), 15 s
# per run after a 2 s warm-up. Every other round runs B before A, so that
# the machine's drift during a run favours neither (with the same binary as A
# and B, single pairs differed by up to 0.036 ms at the median, 2026-12-03:
# compare medians over many rounds, not one pair). Prints p50/p99,
# calls/s and CPU per call of the process under test, and for A and B what
# they add to the direct run just before (latency at the fixed rate; share of
# direct's calls/s at saturation); then, per build, the median of each over
# its rounds.
# Loopback only; uses oha from target/tools (installed by
# scripts/mcp-loadtest.sh).
#
# Usage: scripts/mcp-compare.sh BINARY_A BINARY_B
# (ZT4AI_CMP_RATE_ROUNDS, default 6; ZT4AI_CMP_SAT_ROUNDS, default 4;
# ZT4AI_CMP_SECONDS per run, default 15)
# e.g. build an older commit, copy its target/release/zt4ai to /tmp/zt4ai-a,
# then: scripts/mcp-compare.sh /tmp/zt4ai-a target/release/zt4ai
#
# BINARY_A may be the word `nginx`: A is then nginx as a plain reverse proxy
# in front of the same upstream (two workers, keep-alive upstream connections,
# no buffering; no policy, inspection or audit): what forwarding alone costs
# on this machine. It needs nginx on the PATH (Debian: apt-get install
# nginx-light); the script installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# == 2 ]] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
declare -A BIN=([a]="$1" [b]="$2") PORT=([a]=18290 [b]=18291 [direct]=18281) URL SID TOK PID
OHA=target/tools/bin/oha
[[ -x $OHA ]] || { echo "oha is missing: run scripts/mcp-loadtest.sh once" >&2; exit 2; }
NGINX=""
if [[ $1 == nginx ]]; then
  NGINX=$(command -v nginx || true)
  [[ -n $NGINX ]] || { echo "nginx is not installed (Debian: apt-get install nginx-light)" >&2; exit 2; }
fi
WORK=$(mktemp -d)
trap '[[ -n $NGINX ]] && "$NGINX" -c "$WORK/nginx.conf" -s stop 2>/dev/null
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
ZT4AI_LOG=warn "${BIN[b]}" mcp-demo crm --http "127.0.0.1:${PORT[direct]}" >"$WORK/up.log" 2>&1 &
PID[direct]=$!
sed 's|^settings:|mcp_servers:\n  - id: crm\n    url: http://127.0.0.1:'"${PORT[direct]}"'/mcp\nsettings:|' \
  examples/acme/inventory.yaml >"$WORK/inventory.yaml"
echo '{"subject":{"type":"agent","id":"report-agent","properties":{"user":"alice"}},"action":{"name":"call_tool"},"resource":{"type":"tool","id":"crm.query"},"context":{"session":"s"}}' >"$WORK/req.jsonl"
ACCEPT="accept: application/json, text/event-stream"
CT="content-type: application/json"
PV="mcp-protocol-version: 2025-11-25"
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"compare","version":"0"}}}'
open_session() {
  local url=$1 auth=${2:-} h sid
  h=$(curl -s -D - -o /dev/null -X POST "$url" -H "$ACCEPT" -H "$CT" ${auth:+-H "authorization: Bearer $auth"} -d "$INIT")
  sid=$(printf '%s' "$h" | awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
  curl -s -o /dev/null -X POST "$url" -H "$ACCEPT" -H "$CT" -H "$PV" -H "mcp-session-id: $sid" \
    ${auth:+-H "authorization: Bearer $auth"} -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s\n' "$sid"
}
for v in a b; do
  if [[ $v == a && -n $NGINX ]]; then
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx/pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream mcp { server 127.0.0.1:${PORT[direct]}; keepalive 64; }
  server {
    listen 127.0.0.1:${PORT[a]};
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:${PORT[direct]};
      proxy_buffering off;
    }
  }
}
EOF
    "$NGINX" -c "$WORK/nginx.conf" 2>/dev/null
    for _ in $(seq 50); do [[ -s $WORK/nginx/pid ]] && break; sleep 0.1; done
    PID[a]=nginx TOK[a]="" URL[a]="http://127.0.0.1:${PORT[a]}/mcp"
    continue
  fi
  ZT4AI_LOG=warn "${BIN[$v]}" serve --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
    --data-dir "$WORK/data-$v" --listen "127.0.0.1:${PORT[$v]}" >"$WORK/$v.log" 2>&1 &
  PID[$v]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PORT[$v]}/healthz" >/dev/null && break; sleep 0.1; done
  TOK[$v]=$("${BIN[$v]}" token mint --inventory "$WORK/inventory.yaml" --policies examples/acme/policies \
    --data-dir "$WORK/data-$v" --for-requests "$WORK/req.jsonl")
  URL[$v]="http://127.0.0.1:${PORT[$v]}/mcp"
  SID[$v]=$(open_session "${URL[$v]}" "${TOK[$v]}")
done
URL[direct]="http://127.0.0.1:${PORT[direct]}/mcp"
SID[direct]=$(open_session "${URL[direct]}")
TOK[direct]=""
# nginx passes the upstream's session through.
[[ -n $NGINX ]] && SID[a]=${SID[direct]}
# One tools/call per line, each with its own id.
python3 - "$WORK" <<'PY'
import sys
for name, tool in (("direct", "query"), ("gw", "crm.query")):
    with open(f"{sys.argv[1]}/{name}.txt", "w") as f:
        for i in range(600000):
            f.write('{"jsonrpc":"2.0","id":"r-%d","method":"tools/call","params":{"name":"%s","arguments":{"table":"customers"}}}\n' % (i, tool))
PY
cpu() { # CPU ticks of a process (of every nginx process for `nginx`)
  if [[ $1 == nginx ]]; then
    for p in $(pgrep -x nginx); do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{n += $1} END {print n + 0}'
  else
    awk '{print $14 + $15}' "/proc/$1/stat"
  fi
}
# Calls the gateway allowed so far: a JSON-RPC error is an HTTP 200 to oha, so
# the share of calls allowed is checked here (a denied call is cheaper).
allowed() {
  [[ $1 == direct || ${PID[$1]} == nginx ]] && { echo 0; return; }
  curl -s "http://127.0.0.1:${PORT[$1]}/metrics" -H "authorization: Bearer $(cat "$WORK/data-$1/admin-token")" |
    awk '/^zt4ai_decisions_total\{.*decision="allow"/ {n += $2} END {printf "%d\n", n}'
}
run() { # run a|b|direct [RATE]
  local v=$1 rate=${2:-} auth=() body=$WORK/gw.txt c0
  [[ $v == direct || ${PID[$v]} == nginx ]] && body=$WORK/direct.txt
  [[ -n ${TOK[$v]} ]] && auth=(-H "authorization: Bearer ${TOK[$v]}")
  local args=(-c 32 ${rate:+-q "$rate" --latency-correction} --no-tui -m POST -H "$ACCEPT" -H "$CT" -H "$PV"
    -H "mcp-session-id: ${SID[$v]}" "${auth[@]}" -Z "$body" "${URL[$v]}")
  "$OHA" -z 2s "${args[@]}" >/dev/null
  c0=$(cpu "${PID[$v]}") a0=$(allowed "$v")
  "$OHA" -z "${ZT4AI_CMP_SECONDS:-15}s" --output-format json "${args[@]}" >"$WORK/r.json"
  python3 - "$WORK/r.json" "$v" "${rate:-saturation}" "$(($(cpu "${PID[$v]}") - c0))" "$WORK/direct.last" "$WORK/summary.jsonl" \
    "$(($(allowed "$v") - a0))" "$([[ $v == direct || ${PID[$v]} == nginx ]] && echo other || echo gateway)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v, last = sys.argv[2], sys.argv[5]
p, s = r["latencyPercentiles"], r["summary"]
n = max(1, sum(r.get("statusCodeDistribution", {}).values()))
line = f"{v:<7} {sys.argv[3]:<11} {s['requestsPerSec']:8.0f} calls/s  p50 {p['p50']*1e3:6.3f} ms  p99 {p['p99']*1e3:7.3f} ms  HTTP 200 {r.get('statusCodeDistribution', {}).get('200', 0) / n * 100:5.1f}%  CPU/call {int(sys.argv[4])*10/n:.3f} ms"
# Only runs whose calls were all answered and allowed measure the gateway's
# work; the others are marked and left out of the medians.
ok = r.get("statusCodeDistribution", {}).get("200", 0) >= 0.99 * n
if sys.argv[8] == "gateway":
    line += f"  allowed {int(sys.argv[7]) / n * 100:5.1f}%"
    ok = ok and int(sys.argv[7]) >= 0.99 * n
if not ok:
    line += "  [NOT ALL ALLOWED: left out of the medians]"
# Against the direct run just before: added latency at the fixed rate, share
# of direct's calls/s at saturation.
cpu = int(sys.argv[4]) * 10 / n
if v == "direct":
    json.dump([p["p50"], p["p99"], s["requestsPerSec"]], open(last, "w"))
else:
    try:
        d50, d99, drate = json.load(open(last))
        with open(sys.argv[6], "a") as out:
            if sys.argv[3] == "saturation":
                share = s['requestsPerSec'] / max(drate, 1) * 100
                line += f"  {share:5.1f}% of direct"
                out.write(json.dumps({"v": v, "sat": share, "cpu": cpu, "ok": ok}) + "\n")
            else:
                line += f"  added p50 {(p['p50'] - d50)*1e3:+.3f} p99 {(p['p99'] - d99)*1e3:+.3f} ms"
                out.write(json.dumps({"v": v, "p50": (p['p50'] - d50)*1e3, "p99": (p['p99'] - d99)*1e3, "cpu": cpu, "ok": ok}) + "\n")
    except (OSError, ValueError):
        pass
print(line, flush=True)
PY
}
echo "A: ${BIN[a]}  B: ${BIN[b]}  (CPU/call: the upstream for direct, the gateway for A and B)"
order() { if (($1 % 2)); then echo "direct b a"; else echo "direct a b"; fi; }
# Saturation first: continuous verification learns each agent's call rate,
# and after five active minutes at 1,000 calls/s a jump to saturation is a
# burst that raises the agent's risk until calls are refused (measured
# 2026-12-03: 0-22 % of the calls allowed).
for r in $(seq "${ZT4AI_CMP_SAT_ROUNDS:-4}"); do for v in $(order "$r"); do run "$v"; done; done
for r in $(seq "${ZT4AI_CMP_RATE_ROUNDS:-6}"); do for v in $(order "$r"); do run "$v" 1000; done; done
python3 - "$WORK/summary.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])] if __import__("os").path.exists(sys.argv[1]) else []
for v in ("a", "b"):
    rate = [r for r in rows if r["v"] == v and "p50" in r and r["ok"]]
    sat = [r for r in rows if r["v"] == v and "sat" in r and r["ok"]]
    left = sum(1 for r in rows if r["v"] == v and not r["ok"])
    med = lambda k, rs: statistics.median(r[k] for r in rs)
    out = f"{v.upper()} median over rounds:"
    if rate:
        out += f"  added p50 {med('p50', rate):+.3f} ms  p99 {med('p99', rate):+.3f} ms  CPU/call {med('cpu', rate):.3f} ms ({len(rate)} rounds)"
    if sat:
        out += f"  saturation {med('sat', sat):.1f}% of direct ({len(sat)} rounds)"
    if left:
        out += f"  ({left} runs left out: not every call allowed)"
    print(out)
PY
