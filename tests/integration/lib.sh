# lib.sh - shared helpers for souk's integration tests (sourced, not run).
#
# Each test script starts the real souk-broker on 127.0.0.1 in a temporary
# directory of its own and talks to it with real clients (kcat, librdkafka
# programs).  Paths come from the environment that tests/integration/
# meson.build sets:
#   SOUK_BROKER_BIN  the souk-broker binary
#   FREEPORT         tests/tools/freeport (prints free loopback ports)
#   KCAT             kcat
#   RDK_*            the librdkafka test programs built next to this file
#
# Every wait is bounded in iterations and time, every client runs under
# timeout(1), and every broker start, stop and kill checks the broker's
# stderr for sanitizer reports.  Knobs: SOUK_KEEP_TMP=1 keeps the temporary
# directory (SOUK_KEEP_TMP_ON_FAIL=1: only when the test fails), and
# CLIENT_TIMEOUT (default 120) is the seconds a client may run.
#
# Scripts call, in order: start_broker [PORT] [ARGS...]; clients through kc
# (kcat) or run_client; stop_broker or kill9_broker; and fail MESSAGE on any
# failed check.

set -euo pipefail

: "${SOUK_BROKER_BIN:?SOUK_BROKER_BIN is not set (run through meson test)}"
: "${FREEPORT:?FREEPORT is not set (run through meson test)}"
# These tests need no key store: keep it off unless a caller sets an address,
# so that nothing binds the default 127.0.0.1:6379.
export SOUK_KV_LISTEN=${SOUK_KV_LISTEN-}

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/souk-it-$TEST_NAME.XXXXXX")

BROKER_PID=""
BROKER_PORT=""
BROKER_ADDR=""
BROKER_DATA="$T/data"
BROKER_LOG="$T/broker.stderr"   # JSON log lines (and sanitizer reports), all runs appended
BROKER_OUT="$T/broker.stdout"
BROKER_RUNS=0
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120}

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

# fail MESSAGE...: reports the failure with the broker's log tail and exits 1.
fail() {
    printf '\n[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    if [[ -s $BROKER_LOG ]]; then
        printf '[%s] last lines of the broker log (%s):\n' "$TEST_NAME" "$BROKER_LOG" >&2
        tail -n 40 "$BROKER_LOG" | cut -c1-400 >&2
    fi
    exit 1
}

# check_sanitizers: fails if the broker wrote an ASan/UBSan/LSan report.
check_sanitizers() {
    [[ -f $BROKER_LOG ]] || return 0
    if grep -aqE 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$BROKER_LOG"; then
        grep -aE -A30 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$BROKER_LOG" |
            head -n 80 >&2
        fail "sanitizer report in the broker's stderr"
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ $rc -eq 0 && -f $BROKER_LOG ]] &&
        grep -aqE 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$BROKER_LOG"; then
        printf '[%s] FAIL: sanitizer report in the broker log\n' "$TEST_NAME" >&2
        rc=1
    fi
    if [[ ${SOUK_KEEP_TMP:-0} = 1 || $rc -ne 0 && ${SOUK_KEEP_TMP_ON_FAIL:-0} = 1 ]]; then
        printf '[%s] kept %s\n' "$TEST_NAME" "$T" >&2
    else
        rm -rf "$T"
    fi
    if [[ $rc -eq 0 ]]; then printf '[%s] PASS\n' "$TEST_NAME" >&2; fi
    exit "$rc"
}
trap cleanup EXIT

# free_port: prints one free port on 127.0.0.1.
free_port() {
    "$FREEPORT" 1 || fail "freeport failed"
}

# port_open PORT: true if 127.0.0.1:PORT accepts a TCP connection.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_broker [PORT] [BROKER_ARGS...]: starts souk-broker in the
# background on 127.0.0.1:PORT (a free port when PORT is empty or absent)
# with --data-dir $BROKER_DATA, and waits up to 10 s until it accepts
# connections.  Sets BROKER_PID, BROKER_PORT and BROKER_ADDR.
start_broker() {
    local port=${1:-}
    [[ $# -gt 0 ]] && shift
    [[ -n $port ]] || port=$(free_port)
    [[ -z $BROKER_PID ]] || fail "start_broker: a broker (pid $BROKER_PID) is already running"
    BROKER_RUNS=$((BROKER_RUNS + 1))
    printf '=== start %d: --kafka-listen 127.0.0.1:%s %s\n' "$BROKER_RUNS" "$port" "$*" >>"$BROKER_LOG"
    "$SOUK_BROKER_BIN" --data-dir "$BROKER_DATA" --kafka-listen "127.0.0.1:$port" "$@" \
        >>"$BROKER_OUT" 2>>"$BROKER_LOG" &
    BROKER_PID=$!
    BROKER_PORT=$port
    BROKER_ADDR="127.0.0.1:$port"
    local i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            local rc=0
            wait "$BROKER_PID" || rc=$?
            BROKER_PID=""
            fail "souk-broker exited with status $rc while starting on port $port"
        fi
        if port_open "$port"; then
            log "broker pid $BROKER_PID listening on $BROKER_ADDR $*"
            check_sanitizers
            return 0
        fi
        sleep 0.1
    done
    fail "souk-broker did not accept connections on $BROKER_ADDR within 10 s"
}

# wait_exit PID SECONDS: waits for a child of this shell to exit and sets
# EXIT_STATUS; returns 1 if it is still running after SECONDS.  (Not to be
# called in a $(...) subshell: only the parent shell can reap its child.)
EXIT_STATUS=""
wait_exit() {
    local pid=$1 secs=$2 i
    EXIT_STATUS=""
    for ((i = 0; i < secs * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            EXIT_STATUS=0
            wait "$pid" || EXIT_STATUS=$?
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# stop_broker: SIGTERM, then waits up to 20 s; the broker must exit 0 and
# say that it stopped cleanly.
stop_broker() {
    [[ -n $BROKER_PID ]] || fail "stop_broker: no broker running"
    local pid=$BROKER_PID rc
    kill -TERM "$pid" 2>/dev/null || fail "stop_broker: broker pid $pid is gone already"
    if ! wait_exit "$pid" 20; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        BROKER_PID=""
        fail "souk-broker (pid $pid) did not exit within 20 s of SIGTERM"
    fi
    BROKER_PID=""
    rc=$EXIT_STATUS
    check_sanitizers
    [[ $rc -eq 0 ]] || fail "souk-broker exited with status $rc after SIGTERM (expected 0)"
    tail -n 5 "$BROKER_LOG" | grep -aq '"stopped cleanly"' ||
        fail "souk-broker's log does not end with \"stopped cleanly\""
    log "broker pid $pid stopped cleanly"
}

# kill9_broker: SIGKILL, as a crash or power cut of the process.
kill9_broker() {
    [[ -n $BROKER_PID ]] || fail "kill9_broker: no broker running"
    local pid=$BROKER_PID rc
    kill -KILL "$pid" 2>/dev/null || fail "kill9_broker: broker pid $pid is gone already"
    wait_exit "$pid" 10 || fail "souk-broker (pid $pid) survived SIGKILL for 10 s"
    BROKER_PID=""
    rc=$EXIT_STATUS
    [[ $rc -eq 137 ]] || fail "souk-broker exited with status $rc instead of being killed"
    check_sanitizers
    log "broker pid $pid killed with SIGKILL"
}

# broker_alive: fails unless the broker process is still running.
broker_alive() {
    [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null || fail "souk-broker is not running any more"
}

# kc ARGS...: kcat against the broker, bounded by CLIENT_TIMEOUT.
kc() {
    timeout "$CLIENT_TIMEOUT" "${KCAT:-kcat}" -b "$BROKER_ADDR" "$@"
}

# run_client NAME ARGS...: runs a program bounded by CLIENT_TIMEOUT; its
# stderr also goes to $T/NAME.stderr.  Fails on a non-zero exit.
run_client() {
    local name=$1 rc=0
    shift
    timeout "$CLIENT_TIMEOUT" "$@" 2> >(tee "$T/$name.stderr" >&2) || rc=$?
    [[ $rc -ne 124 ]] || fail "$name timed out after $CLIENT_TIMEOUT s"
    [[ $rc -eq 0 ]] || fail "$name exited with status $rc"
}
