# lib.sh - helpers for the key store's integration tests (sourced, not run).
#
# Each script starts the real souk-broker on free loopback ports in a
# temporary directory of its own and talks to its key store with real
# clients.  Paths come from the environment that tests/kv/meson.build sets:
#   SOUK_BROKER_BIN, FREEPORT, REDIS_CLI, REDIS_SERVER, KCAT, KV_TEST_DIR,
#   KV_PIPELINE, KV_ASYNC (the hiredis programs)
# Every wait is bounded in iterations and time, every client runs under
# timeout(1), servers are stopped by PID, and the broker's stderr is checked
# for sanitizer reports.  SOUK_KEEP_TMP=1 keeps the temporary directory.

set -euo pipefail

: "${SOUK_BROKER_BIN:?SOUK_BROKER_BIN is not set (run through meson test)}"
: "${FREEPORT:?FREEPORT is not set (run through meson test)}"
: "${REDIS_CLI:?REDIS_CLI is not set}"

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/souk-kv-$TEST_NAME.XXXXXX")
SOUK_PID=""
REDIS_PID=""
KPORT=""
VPORT=""
RPORT=""
SOUK_DATA="$T/data"
SOUK_LOG="$T/broker.stderr"
SOUK_OUT="$T/broker.stdout"

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
    printf '\n[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    if [[ -s $SOUK_LOG ]]; then
        printf '[%s] last lines of the broker log:\n' "$TEST_NAME" >&2
        tail -n 30 "$SOUK_LOG" | cut -c1-400 >&2
    fi
    exit 1
}

sanitizer_report() {
    [[ -f $SOUK_LOG ]] && grep -aqE 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$SOUK_LOG"
}

check_sanitizers() {
    if sanitizer_report; then
        grep -aE -A30 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$SOUK_LOG" | head -n 80 >&2
        fail "sanitizer report in the broker's stderr"
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT
    for pid in $SOUK_PID $REDIS_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ $rc -eq 0 ]] && sanitizer_report; then
        printf '[%s] FAIL: sanitizer report in the broker log\n' "$TEST_NAME" >&2
        rc=1
    fi
    if [[ ${SOUK_KEEP_TMP:-0} = 1 ]]; then
        printf '[%s] kept %s\n' "$TEST_NAME" "$T" >&2
    else
        rm -rf "$T"
    fi
    [[ $rc -eq 0 ]] && printf '[%s] PASS\n' "$TEST_NAME" >&2
    exit "$rc"
}
trap cleanup EXIT

# cli PORT ARGS...: redis-cli against 127.0.0.1:PORT, bounded in time.
cli() {
    local port=$1
    shift
    timeout 30 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
}

# wait_ping PORT PID: waits up to 10 s until PING is answered.
wait_ping() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        case $(timeout 2 "$REDIS_CLI" -h 127.0.0.1 -p "$port" PING 2>&1) in
        PONG | NOAUTH*) return 0 ;; # up (NOAUTH: it wants a password)
        esac
        sleep 0.1
    done
    return 1
}

# start_souk [OPTIONS...]: starts souk-broker with its Kafka protocol on
# $KPORT and the key store on $VPORT (picked on the first start, kept across
# restarts) and data in $SOUK_DATA.
start_souk() {
    [[ -z $SOUK_PID ]] || fail "start_souk: broker $SOUK_PID is already running"
    if [[ -z $KPORT ]]; then
        local ports
        ports=$("$FREEPORT" 2) || fail "freeport failed"
        KPORT=$(echo "$ports" | sed -n 1p)
        VPORT=$(echo "$ports" | sed -n 2p)
    fi
    printf '=== start: %s\n' "$*" >>"$SOUK_LOG"
    "$SOUK_BROKER_BIN" --data-dir "$SOUK_DATA" --kafka-listen "127.0.0.1:$KPORT" --kv-listen "127.0.0.1:$VPORT" \
        "$@" >>"$SOUK_OUT" 2>>"$SOUK_LOG" &
    SOUK_PID=$!
    wait_ping "$VPORT" "$SOUK_PID" || fail "souk-broker did not answer PING on 127.0.0.1:$VPORT within 10 s"
    log "souk-broker pid $SOUK_PID: kafka 127.0.0.1:$KPORT, kv 127.0.0.1:$VPORT $*"
}

# stop_souk: SIGTERM, and a clean exit (status 0) within 15 s.
stop_souk() {
    [[ -n $SOUK_PID ]] || return 0
    kill -TERM "$SOUK_PID"
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$SOUK_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SOUK_PID" 2>/dev/null && fail "souk-broker did not exit within 15 s of SIGTERM"
    local rc=0
    wait "$SOUK_PID" || rc=$?
    SOUK_PID=""
    [[ $rc -eq 0 ]] || fail "souk-broker exited with status $rc after SIGTERM"
    check_sanitizers
}

# kill_souk: kill -9, as a crash.
kill_souk() {
    [[ -n $SOUK_PID ]] || return 0
    kill -KILL "$SOUK_PID"
    wait "$SOUK_PID" 2>/dev/null || true
    SOUK_PID=""
}

# start_redis: Debian's redis-server on a free port, no persistence.
start_redis() {
    [[ -n ${REDIS_SERVER:-} ]] || fail "redis-server not found"
    RPORT=$("$FREEPORT" 1) || fail "freeport failed"
    mkdir -p "$T/redis"
    "$REDIS_SERVER" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/redis" \
        >"$T/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_ping "$RPORT" "$REDIS_PID" || fail "redis-server did not start on port $RPORT"
    log "redis-server pid $REDIS_PID on 127.0.0.1:$RPORT"
}

stop_redis() {
    [[ -n $REDIS_PID ]] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
}

# expect WHAT GOT WANT
expect() {
    [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"
}

# kcat_expired: every kv.expired record as "key<TAB>value", in offset order per partition.
kcat_expired() {
    timeout 30 "$KCAT" -b "127.0.0.1:$KPORT" -C -t kv.expired -o beginning -e -q -f '%k\t%s\n' 2>>"$T/kcat.err"
}
