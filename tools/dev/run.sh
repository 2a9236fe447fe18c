#!/usr/bin/env bash
# Runs the Go API gateway and the AI Worker together on loopback for local development:
# the gateway forwards POST /v1/ai/complete to the Worker, the Worker resolves modules from the
# gateway and answers with a stand-in for Workers AI. Ctrl-C (or any exit) stops both.
#
# Usage: tools/dev/run.sh            run until Ctrl-C
#        tools/dev/run.sh --smoke    start both, send one completion through both, stop
#
# Environment: GATEWAY_PORT (8080), WORKER_PORT (8787), DEV_API_TOKEN (random per run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
gateway_dir="$root/apps/api-gateway"
worker_dir="$root/workers/ai-worker"
gateway_port="${GATEWAY_PORT:-8080}"
worker_port="${WORKER_PORT:-8787}"
gateway_url="http://127.0.0.1:$gateway_port"
worker_url="http://127.0.0.1:$worker_port"
token="${DEV_API_TOKEN:-dev-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')}"
smoke=false
case "${1:-}" in
  --smoke) smoke=true ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

say() { printf 'dev: %s\n' "$*" >&2; }
go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
node_bin="$(command -v node)"
work="$(mktemp -d "${TMPDIR:-/tmp}/platform-dev.XXXXXX")"
pids=()

# shellcheck disable=SC2317  # invoked through the EXIT trap
stop() {
  local status=$?
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    say "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "$gateway_port" "$worker_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port on 127.0.0.1 is already in use (set GATEWAY_PORT / WORKER_PORT)"
    exit 1
  fi
done

say "building the gateway (go build) and the Worker bundle (esbuild)"
# A built binary rather than `go run`, so that the signal reaches the server itself.
(cd "$gateway_dir" && "$go_bin" build -o "$work/api-gateway" ./)
if [[ ! -d "$worker_dir/node_modules" ]]; then
  (cd "$worker_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$worker_dir" && npm run --silent build)

# Each process's output is prefixed with its name; $! stays the process itself.
PORT="$gateway_port" CATALOG_PATH="$gateway_dir/catalog.json" WORKER_URL="$worker_url" \
  WORKER_API_TOKEN="$token" SHUTDOWN_DRAIN=0s SHUTDOWN_TIMEOUT=5s \
  "$work/api-gateway" > >(trap '' INT; sed -u 's/^/[gateway] /') 2>&1 &
pids+=($!)
HOST=127.0.0.1 PORT="$worker_port" GATEWAY_URL="$gateway_url" API_TOKEN="$token" \
  "$node_bin" "$worker_dir/local/serve.mjs" > >(trap '' INT; sed -u 's/^/[worker]  /') 2>&1 &
pids+=($!)

wait_healthy() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 150); do
    if curl -fsS -m 1 -o /dev/null "$url/healthz" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then say "$name exited during startup"; exit 1; fi
    sleep 0.2
  done
  say "$name did not become healthy on $url"
  exit 1
}
wait_healthy gateway "$gateway_url" "${pids[0]}"
wait_healthy worker "$worker_url" "${pids[1]}"

cat >&2 <<EOF

  gateway  $gateway_url   GET /v1/modules, POST /v1/ai/complete
  worker   $worker_url   POST /v1/complete (Authorization: Bearer $token)

  curl -s $gateway_url/v1/ai/complete -H 'content-type: application/json' \\
    -d '{"module":"summarize","prompt":"Hello"}'

EOF

if $smoke; then
  answer="$(curl -fsS -m 10 "$gateway_url/v1/ai/complete" -H 'content-type: application/json' \
    -d '{"module":"summarize","prompt":"Hello from tools/dev"}')"
  say "completion through both: $answer"
  [[ "$answer" == *'"output":"[@cf/'*'Hello from tools/dev"'* ]] || { say "unexpected answer"; exit 1; }
  exit 0
fi

say "running; Ctrl-C stops both"
# If either process stops on its own, stop the other one too.
wait -n "${pids[@]}"
say "a process exited"
exit 1
