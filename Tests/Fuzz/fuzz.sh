#!/usr/bin/env bash
# libFuzzer targets for Porthole (see Tests/Fuzz/README.md).
#
#   fuzz.sh build [TARGET...]      build .build-fuzz/bin/fuzz-TARGET (libFuzzer + AddressSanitizer)
#   fuzz.sh run [TARGET...]        fuzz each target for FUZZ_SECONDS (default 180), one at a time, then merge new
#                                  coverage into Tests/Fuzz/corpus/TARGET; crashes land in Tests/Fuzz/crashes/TARGET
#   fuzz.sh replay [TARGET...]     run every corpus and crash file once through the sanitizer build
#   fuzz.sh minimize [TARGET...]   rewrite Tests/Fuzz/corpus/TARGET as the smallest set with the same coverage
#
# No TARGET means all of them. FUZZ_ARGS adds libFuzzer flags to `run` (e.g. FUZZ_ARGS=-dict=...).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The Swift sources the harnesses test, by directory: Tunnel and the one-sided parsers of the agent and the
# controller the AgentTests and ControllerTests harnesses reach. The fuzz build compiles them all as one module
# named Tunnel (their `import Tunnel` is then ignored, with a warning), so they must not need anything else of
# Agent or Controller; when a tested file moves, add or change its directory here.
TUNNEL_SOURCE_DIRS=(Sources/Tunnel Sources/Agent/Config Sources/Agent/Kubernetes Sources/Controller/Config Sources/Controller/Identity)
SHIM_SOURCES=(Sources/CTunnelShims/shims.c)
# The harnesses, compiled together into every fuzz executable; those of AgentTests and ControllerTests import
# Agent or Controller only `#if canImport(...)`, so here they see those types in Tunnel.
HARNESS_DIRS=(Tests/TunnelTests/FuzzHarness Tests/AgentTests/FuzzHarness Tests/ControllerTests/FuzzHarness)
FUZZ_DIR=Tests/Fuzz
OUT=${FUZZ_BUILD_DIR:-.build-fuzz}
SWIFTC=${SWIFTC:-swiftc}
CLANG=${CLANG:-$(dirname "$(command -v "$SWIFTC")")/clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-180}
ALL_TARGETS=(http1 kubeconfig service-token jose config controller-config http2-server http2-client websocket)

max_len() {
    case "$1" in
        http1) echo 4096 ;;
        kubeconfig) echo 8192 ;;
        service-token | jose) echo 2048 ;;
        config | controller-config) echo 4096 ;;
        websocket) echo 4096 ;;
        http2-*) echo 4096 ;;
        *) echo "error: unknown target $1" >&2; exit 64 ;;
    esac
}

INCLUDES=(-I Sources/COpenSSL -I Sources/CNGHTTP2 -I "$OUT/include" -I "$OUT/modules")
LIBS=(-lssl -lcrypto -lnghttp2)

# The Tunnel module, once: one object and a testable module (the harnesses use @testable import).
build_tunnel() {
    mkdir -p "$OUT/obj" "$OUT/modules" "$OUT/include" "$OUT/bin"
    local sources
    mapfile -t sources < <(find "${TUNNEL_SOURCE_DIRS[@]}" -name '*.swift' | sort)
    if [[ -f "$OUT/obj/Tunnel.o" ]] && [[ -z "$(find "${TUNNEL_SOURCE_DIRS[@]}" "${SHIM_SOURCES[@]}" "$0" \
            -newer "$OUT/obj/Tunnel.o" -print -quit)" ]]; then
        return
    fi
    echo "fuzz: building the Tunnel module (${#sources[@]} files)"
    printf 'module CTunnelShims {\n    header "%s"\n    export *\n}\n' \
        "$PWD/Sources/CTunnelShims/include/CTunnelShims.h" > "$OUT/include/module.modulemap"
    "$CLANG" -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CTunnelShims/include \
        -c "${SHIM_SOURCES[@]}" -o "$OUT/obj/shims.o"
    "$SWIFTC" -O -g -wmo -parse-as-library -swift-version 6 -enable-testing -sanitize=fuzzer,address \
        -module-name Tunnel -package-name porthole "${INCLUDES[@]}" \
        -emit-module -emit-module-path "$OUT/modules/Tunnel.swiftmodule" \
        -diagnostic-style=llvm -c "${sources[@]}" -o "$OUT/obj/Tunnel.o" 2>&1 |
        # The agent's and controller's files `import Tunnel`, which is themselves here: drop those warnings only.
        awk '/is part of module .Tunnel.; ignoring import/ { skip = 2; next } skip > 0 { skip--; next } { print }'
    touch "$OUT/obj/Tunnel.o"  # swiftc leaves an unchanged object's time alone; the check above needs it new
}

build_target() {
    local target=$1 binary="$OUT/bin/fuzz-$1"
    [[ -f "$FUZZ_DIR/$target.swift" ]] || { echo "error: no $FUZZ_DIR/$target.swift" >&2; exit 64; }
    if [[ -f "$binary" ]] && [[ -z "$(find "${HARNESS_DIRS[@]}" "$FUZZ_DIR/$target.swift" "$OUT/obj/Tunnel.o" \
            -newer "$binary" -print -quit)" ]]; then
        return
    fi
    echo "fuzz: building fuzz-$target"
    local harnesses
    mapfile -t harnesses < <(find "${HARNESS_DIRS[@]}" -name '*.swift' | sort)
    "$SWIFTC" -O -g -parse-as-library -swift-version 6 -sanitize=fuzzer,address \
        -module-name "FuzzTarget" -package-name porthole "${INCLUDES[@]}" \
        "${harnesses[@]}" "$FUZZ_DIR/$target.swift" "$OUT/obj/Tunnel.o" "$OUT/obj/shims.o" "${LIBS[@]}" \
        -use-ld=lld -o "$binary"
}

run_target() {
    local target=$1 binary="$OUT/bin/fuzz-$1"
    local corpus="$FUZZ_DIR/corpus/$target" crashes="$FUZZ_DIR/crashes/$target" work="$OUT/work/$target"
    mkdir -p "$corpus" "$crashes" "$work"
    echo "fuzz: $target for ${FUZZ_SECONDS}s (corpus $corpus, new inputs in $work)"
    local status=0
    # New inputs go to the scratch folder first; only those adding coverage are merged into the committed corpus.
    SWIFT_BACKTRACE=enable=no "$binary" -max_len="$(max_len "$target")" -max_total_time="$FUZZ_SECONDS" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
        ${FUZZ_ARGS:-} "$work" "$corpus" > "$OUT/work/$target.log" 2>&1 || status=$?
    grep -E '^(==[0-9]+==|SUMMARY|artifact_prefix|stat::|.*Fatal error)' "$OUT/work/$target.log" || true
    local executions
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/work/$target.log")
    echo "fuzz: $target ran ${executions:-?} inputs"
    # One line per run, so executions can be summed over a session.
    echo "$(date -u +%FT%TZ) $target ${FUZZ_SECONDS}s ${executions:-?}" >> "$OUT/executions.log"
    SWIFT_BACKTRACE=enable=no "$binary" -merge=1 -max_len="$(max_len "$target")" "$corpus" "$work" \
        > "$OUT/work/$target.merge.log" 2>&1 || echo "fuzz: merge of $target failed, see $OUT/work/$target.merge.log"
    return "$status"
}

replay_target() {
    local target=$1 binary="$OUT/bin/fuzz-$1"
    local corpus="$FUZZ_DIR/corpus/$target" crashes="$FUZZ_DIR/crashes/$target"
    local files=()
    [[ -d "$crashes" ]] && mapfile -t files < <(find "$crashes" -type f ! -name '.*' | sort)
    echo "fuzz: replaying $target ($(find "$corpus" -type f | wc -l) corpus files, ${#files[@]} crashes)"
    SWIFT_BACKTRACE=enable=no "$binary" -runs=0 -max_len="$(max_len "$target")" -artifact_prefix="$OUT/replay-" "$corpus" > "$OUT/replay.log" 2>&1 \
        || { cat "$OUT/replay.log"; return 1; }
    if (( ${#files[@]} > 0 )); then
        SWIFT_BACKTRACE=enable=no "$binary" -artifact_prefix="$OUT/replay-" "${files[@]}" > "$OUT/replay.log" 2>&1 || { cat "$OUT/replay.log"; return 1; }
    fi
}

minimize_target() {
    local target=$1 binary="$OUT/bin/fuzz-$1" corpus="$FUZZ_DIR/corpus/$1" fresh="$OUT/minimized/$1"
    rm -rf "$fresh" && mkdir -p "$fresh"
    # The hand-made seeds stay, under their names; the rest is kept only where it adds coverage to them.
    find "$corpus" -name 'seed-*' -exec cp {} "$fresh"/ \;
    SWIFT_BACKTRACE=enable=no "$binary" -merge=1 -max_len="$(max_len "$target")" "$fresh" "$corpus" \
        > "$OUT/minimize.log" 2>&1 || { cat "$OUT/minimize.log"; return 1; }
    echo "fuzz: $target corpus $(find "$corpus" -type f | wc -l) -> $(find "$fresh" -type f | wc -l) files"
    rm -f "$corpus"/* && cp "$fresh"/* "$corpus"/
}

command=${1:-run}
shift || true
targets=("$@")
(( ${#targets[@]} > 0 )) || targets=("${ALL_TARGETS[@]}")
build_tunnel
for target in "${targets[@]}"; do build_target "$target"; done
[[ "$command" == build ]] && exit 0
failed=()
for target in "${targets[@]}"; do
    case "$command" in
        run) run_target "$target" || failed+=("$target") ;;
        replay) replay_target "$target" || failed+=("$target") ;;
        minimize) minimize_target "$target" || failed+=("$target") ;;
        *) echo "error: unknown command $command (build, run, replay or minimize)" >&2; exit 64 ;;
    esac
done
if (( ${#failed[@]} > 0 )); then
    echo "fuzz: failed: ${failed[*]} (inputs in $FUZZ_DIR/crashes/TARGET)" >&2
    exit 1
fi
