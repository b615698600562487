#!/usr/bin/env bash
# test_bad_input.sh - group requests a real client never sends, over a raw
# socket (grp_raw.c): a JoinGroup with a protocol type that differs from the
# group's, with an empty protocol list or type, with 1 MiB + 1 bytes of
# member metadata; a SyncGroup and a Heartbeat from a non-member; an invalid
# session timeout; malformed group requests.  The broker answers each with
# the Kafka error code (or closes the connection of a malformed request),
# the group's real member is unaffected, and the broker keeps serving
# (kcat -L, then a real group member).
# Then held responses and closed connections (grp_raw abandon): a member whose
# connection closed while its JoinGroup was held stays in the group until
# its session expires (and its request is never answered); and SIGTERM while
# a JoinGroup is held (grp_raw hold): the broker still stops cleanly.
. "$(dirname "$0")/grouplib.sh"
: "${GRP_RAW:?GRP_RAW is not set (run through meson test)}"

start_broker "" --partitions 4
run_client grp_raw "$GRP_RAW" 127.0.0.1 "$BROKER_PORT" bad-g >"$T/grp_raw.out" ||
    fail "grp_raw: $(grep FAIL "$T/grp_raw.out")"
cat "$T/grp_raw.out" >&2
grep -q '^FAIL' "$T/grp_raw.out" && fail "grp_raw: $(grep FAIL "$T/grp_raw.out")"
broker_alive
kc -L >"$T/meta.txt" 2>"$T/meta.err" || fail "kcat -L after the bad input: $(cat "$T/meta.err")"
grep -q "broker 1 at $BROKER_ADDR" "$T/meta.txt" || fail "kcat -L: $(cat "$T/meta.txt")"
# The same group still works for a real client.
produce bad-t a 50 || fail "produce failed"
start_member m1 bad-g bad-t
wait_covered 60 4 m1
wait_all_consumed 60 m1
stop_member m1
broker_alive

run_client grp_raw-abandon "$GRP_RAW" 127.0.0.1 "$BROKER_PORT" abandon-g abandon >"$T/abandon.out" ||
    fail "grp_raw abandon: $(grep FAIL "$T/abandon.out")"
cat "$T/abandon.out" >&2
broker_alive
stop_broker

# A long initial delay keeps the JoinGroup held while the broker stops.
start_broker "$BROKER_PORT" --partitions 4 --group-initial-rebalance-delay-ms 60000
"$GRP_RAW" 127.0.0.1 "$BROKER_PORT" hold-g hold >"$T/hold.out" 2>&1 &
HOLD_PID=$!
BG_PIDS+=("$HOLD_PID")
for ((i = 0; i < 100; i++)); do
    grep -q '^holding' "$T/hold.out" && break
    sleep 0.1
done
grep -q '^holding' "$T/hold.out" || fail "grp_raw hold: $(cat "$T/hold.out")"
sleep 0.5
stop_broker
wait_exit "$HOLD_PID" 30 || fail "grp_raw hold still waits after the broker stopped"
cat "$T/hold.out" >&2
grep -q '^closed' "$T/hold.out" || fail "grp_raw hold: $(cat "$T/hold.out")"
