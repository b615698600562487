# shellcheck shell=bash
# grouplib.sh - helpers for the consumer group tests (sourced, not run), on
# top of tests/integration/lib.sh (temporary directory $T, start_broker,
# stop_broker, kill9_broker, fail, sanitizer checks of the broker's stderr).
#
# Members are tests/groups/rdk_member processes (one librdkafka high-level
# consumer each), known by a NAME:
#   $T/NAME.out     C/K/F lines: consumed, committed, commit failed (rdk_member.c)
#   $T/NAME.state   rebalance count, assigned partitions, assigned|revoked
#   $T/NAME.stderr  the member's own log
# Every member is started in the background with its PID kept in MEMBER_PID,
# stopped by that PID (SIGTERM, or SIGKILL for kill9_member), and killed at
# exit if still running; every wait is bounded.

. "$(dirname "$0")/../integration/lib.sh"
: "${RDK_MEMBER:?RDK_MEMBER is not set (run through meson test)}"

# The broker's key store listens on a fixed port (6379) by default: give it
# a free one so that brokers of tests running side by side do not collide
# (the same one for every start of this test's broker).
export SOUK_KV_LISTEN=${SOUK_KV_LISTEN-127.0.0.1:$(free_port)}

# Seconds a member runs at most (rdk_member stops itself after that).
MEMBER_MAX_S=${MEMBER_MAX_S:-420}
TAB=$(printf '\t')
declare -A MEMBER_PID=()
BG_PIDS=()

# Stops what this file started, then runs lib.sh's cleanup (which keeps
# the exit status, kills the broker and checks its stderr for sanitizer
# reports).
group_cleanup() {
    local rc=$? name pid
    set +e # a failing command here must not skip lib.sh's cleanup
    for name in "${!MEMBER_PID[@]}"; do
        pid=${MEMBER_PID[$name]}
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # The test programs are built with the sanitizers too (-Dsanitize=true).
    if [[ $rc -eq 0 ]] && grep -lqE 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.stderr "$T"/*.out 2>/dev/null; then
        grep -aE -A20 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.stderr "$T"/*.out 2>/dev/null | head -n 60 >&2
        printf '[%s] FAIL: sanitizer report from a test program\n' "$TEST_NAME" >&2
        rc=1
    fi
    if [[ $rc -ne 0 ]]; then
        for name in "${!MEMBER_PID[@]}"; do
            [[ -f $T/$name.stderr ]] || continue
            printf '[%s] last lines of member %s:\n' "$TEST_NAME" "$name" >&2
            tail -n 15 "$T/$name.stderr" >&2
        done
    fi
    (exit "$rc") # hands the status on to cleanup, which reads $?
    cleanup
}
trap group_cleanup EXIT

# start_member NAME GROUP TOPIC: starts an rdk_member in the background.
start_member() {
    local name=$1 group=$2 topic=$3
    [[ -z ${MEMBER_PID[$name]:-} ]] || fail "member $name is already running"
    rm -f "$T/$name.state"
    "$RDK_MEMBER" "$BROKER_ADDR" "$group" "$topic" "$T/$name.out" "$T/$name.state" "$MEMBER_MAX_S" "$name" \
        2>>"$T/$name.stderr" &
    MEMBER_PID[$name]=$!
    log "member $name (pid ${MEMBER_PID[$name]}) started in group $group"
}

# member_alive NAME: fails if the member exited.
member_alive() {
    local pid=${MEMBER_PID[$1]:-}
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null ||
        fail "member $1 is not running any more: $(tail -n 5 "$T/$1.stderr" 2>/dev/null)"
}

# stop_member NAME: SIGTERM; the member must close (LeaveGroup) and exit 0
# within 30 s.
stop_member() {
    local name=$1 pid=${MEMBER_PID[$1]:-}
    [[ -n $pid ]] || fail "stop_member: no member $name"
    kill -TERM "$pid" 2>/dev/null || fail "member $name (pid $pid) is gone already"
    wait_exit "$pid" 30 || fail "member $name (pid $pid) did not exit within 30 s of SIGTERM"
    unset "MEMBER_PID[$name]"
    [[ $EXIT_STATUS -eq 0 ]] || fail "member $name exited with status $EXIT_STATUS: $(tail -n 5 "$T/$name.stderr")"
    log "member $name closed cleanly"
}

# kill9_member NAME: SIGKILL (no LeaveGroup, no commit in flight finishes).
kill9_member() {
    local name=$1 pid=${MEMBER_PID[$1]:-}
    [[ -n $pid ]] || fail "kill9_member: no member $name"
    kill -KILL "$pid" 2>/dev/null || fail "member $name (pid $pid) is gone already"
    wait_exit "$pid" 10 || fail "member $name survived SIGKILL"
    unset "MEMBER_PID[$name]"
    log "member $name killed with SIGKILL"
}

# member_parts NAME: prints the member's assigned partitions ("" if none).
member_parts() {
    [[ -f $T/$1.state ]] || return 0
    sed -n 2p "$T/$1.state"
}

# member_rebalances NAME: prints the number of rebalance_cb calls so far.
member_rebalances() {
    [[ -f $T/$1.state ]] || {
        echo 0
        return
    }
    sed -n 1p "$T/$1.state"
}

# covered NPARTS NAME...: true when every named member holds at least one
# partition and together they hold 0..NPARTS-1, each exactly once.
covered() {
    local n=$1 name parts all=""
    shift
    for name in "$@"; do
        [[ $(sed -n 3p "$T/$name.state" 2>/dev/null) == assigned ]] || return 1
        parts=$(member_parts "$name")
        [[ -n $parts ]] || return 1
        all="$all $parts"
    done
    [[ $(tr ' ' '\n' <<<"$all" | sed '/^$/d' | sort -n | tr '\n' ' ') == "$(seq 0 $((n - 1)) | tr '\n' ' ')" ]]
}

# wait_covered SECONDS NPARTS NAME...: waits until covered(); fails with the
# members' states after SECONDS.  Sets WAITED_MS.
WAITED_MS=0
wait_covered() {
    local secs=$1 n=$2 i name t0 desc=""
    shift 2
    t0=$(date +%s%N)
    for ((i = 0; i < secs * 10; i++)); do
        for name in "$@"; do member_alive "$name"; done
        if covered "$n" "$@"; then
            WAITED_MS=$((($(date +%s%N) - t0) / 1000000))
            for name in "$@"; do desc="$desc $name=[$(member_parts "$name")]"; done
            log "partitions after ${WAITED_MS} ms:$desc"
            return 0
        fi
        sleep 0.1
    done
    for name in "$@"; do desc="$desc $name=[$(member_parts "$name")]($(sed -n 3p "$T/$name.state" 2>/dev/null))"; done
    fail "members $* did not hold disjoint sets covering all $n partitions within $secs s:$desc"
}

# produce TOPIC KEYPREFIX COUNT: produces COUNT messages with keys
# KEYPREFIX-0.. (acks=all) and appends the keys to $T/produced.keys once
# kcat reports them all delivered.  Returns 1 (without failing) if kcat does
# not.
produce() {
    local topic=$1 prefix=$2 count=$3 f
    f=$(mktemp "$T/batch.XXXXXX")
    seq 0 $((count - 1)) | sed "s/.*/$prefix-&${TAB}value-$prefix-&/" >"$f"
    if timeout 60 "${KCAT:-kcat}" -b "$BROKER_ADDR" -P -t "$topic" -K "$TAB" -X acks=all \
        -X message.timeout.ms=30000 <"$f" 2>"$f.err" && ! grep -q 'Delivery failed' "$f.err"; then
        cut -f1 "$f" >>"$T/produced.keys"
        rm -f "$f" "$f.err"
        return 0
    fi
    log "kcat -P of $prefix failed: $(head -n 3 "$f.err")"
    return 1
}

# start_producer TOPIC: produces batches of 25 messages every 0.2 s in the
# background until $T/stop-producer exists (at most 2000 batches).  A failed
# batch is counted in $T/produce.failures.
start_producer() {
    local topic=$1
    rm -f "$T/stop-producer"
    (
        trap - EXIT
        for ((b = 0; b < 2000; b++)); do
            [[ -e $T/stop-producer ]] && break
            produce "$topic" "bg$b" 25 || echo "bg$b" >>"$T/produce.failures"
            sleep 0.2
        done
    ) &
    PRODUCER_PID=$!
    BG_PIDS+=("$PRODUCER_PID")
}

# stop_producer: ends the background producer after its current batch.
stop_producer() {
    touch "$T/stop-producer"
    wait_exit "$PRODUCER_PID" 90 || fail "the background producer did not stop"
    log "producer stopped: $(sort -u "$T/produced.keys" | wc -l) messages produced"
}

# consumed_keys NAME...: prints the keys the members (and $T/extra.consumed,
# "C p o key" lines from other consumers) consumed, sorted and unique.
consumed_keys() {
    local name files=()
    for name in "$@"; do [[ -f $T/$name.out ]] && files+=("$T/$name.out"); done
    [[ -f $T/extra.consumed ]] && files+=("$T/extra.consumed")
    [[ ${#files[@]} -gt 0 ]] || return 0
    cat "${files[@]}" | awk '$1 == "C" { print $4 }' | sort -u
}

# wait_all_consumed SECONDS NAME...: waits until every key in
# $T/produced.keys has been consumed by one of the members.
wait_all_consumed() {
    local secs=$1 i missing
    shift
    sort -u "$T/produced.keys" >"$T/produced.sorted"
    for ((i = 0; i < secs * 2; i++)); do
        consumed_keys "$@" >"$T/consumed.sorted"
        missing=$(comm -23 "$T/produced.sorted" "$T/consumed.sorted" | wc -l)
        if [[ $missing -eq 0 ]]; then
            log "all $(wc -l <"$T/produced.sorted") produced messages consumed"
            return 0
        fi
        sleep 0.5
    done
    fail "$missing of $(wc -l <"$T/produced.sorted") produced messages were never consumed, e.g. $(comm -23 "$T/produced.sorted" "$T/consumed.sorted" | head -n 5 | tr '\n' ' ')"
}

# check_duplicates ALLOWED_PARTS NAME...: across the members' output files
# (whose lines carry a monotonic timestamp shared by all members):
#   - no message (partition, offset) is consumed after a commit of it
#     succeeded (resuming from committed offsets, across rebalances and
#     restarts);
#   - a message consumed more than once is on one of ALLOWED_PARTS
#     (space-separated: the partitions of a killed member) or has a failed
#     commit (F line) on record;
#   - a (partition, offset) always carries the same key.
check_duplicates() {
    local allowed=$1 name files=() report
    shift
    for name in "$@"; do [[ -f $T/$name.out ]] && files+=("$T/$name.out"); done
    report=$(cat "${files[@]}" | awk -v allowed="$allowed" '
        BEGIN { n = split(allowed, a, " "); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
        $1 == "C" {
            id = $2 " " $3; c[id]++
            if (id in key && key[id] != $4) printf "KEY %s: keys %s and %s\n", id, key[id], $4
            key[id] = $4
            if (!(id in cmax) || $5 > cmax[id]) cmax[id] = $5
        }
        $1 == "K" { id = $2 " " $3; if (!(id in kmin) || $5 < kmin[id]) kmin[id] = $5 }
        $1 == "F" { f[$2 " " $3] = 1 }
        END {
            for (id in c) {
                if ((id in kmin) && kmin[id] < cmax[id]) printf "COMMITTED %s consumed again after its commit succeeded\n", id
                if (c[id] < 2) continue
                split(id, pp, " ")
                if (!(pp[1] in ok) && !(id in f)) printf "DUP %s consumed %d times\n", id, c[id]
                else ndup++
            }
            printf "ALLOWED %d\n", ndup
        }')
    if grep -qE '^(KEY|COMMITTED|DUP)' <<<"$report"; then
        fail "duplicate or inconsistent consumption: $(grep -E '^(KEY|COMMITTED|DUP)' <<<"$report" | head -n 10 | tr '\n' ';')"
    fi
    log "messages consumed twice: $(sed -n 's/^ALLOWED //p' <<<"$report") (allowed: partitions [$allowed] of a killed member, or after a failed commit); failed commits: $(cat "${files[@]}" | grep -c '^F ' || true)"
}
