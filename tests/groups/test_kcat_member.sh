#!/usr/bin/env bash
# test_kcat_member.sh - `kcat -G GROUP TOPIC` (kcat 1.7.1's high-level
# consumer) and a librdkafka member (rdk_member) in one group on a
# 4-partition topic: both get partitions (disjoint, together all 4),
# together they consume every message, and when kcat exits (SIGTERM ->
# LeaveGroup) the other member takes all 4 partitions.
. "$(dirname "$0")/grouplib.sh"

TOPIC=kg-t
GROUP=kg-g

start_broker "" --partitions 4
produce "$TOPIC" a 200 || fail "produce a failed"

start_member r1 "$GROUP" "$TOPIC"
timeout 300 "${KCAT:-kcat}" -b "$BROKER_ADDR" -G "$GROUP" -X auto.offset.reset=earliest -X session.timeout.ms=6000 \
    -X heartbeat.interval.ms=500 -X broker.address.family=v4 -u -f 'C %p %o %k\n' "$TOPIC" \
    >"$T/extra.consumed" 2>"$T/kcat.stderr" &
KCAT_PID=$!
BG_PIDS+=("$KCAT_PID")

# kcat prints "assigned: TOPIC [p], ..." on stderr at each rebalance.
kcat_parts() {
    { grep -a 'assigned:' "$T/kcat.stderr" || true; } | tail -n 1 | { grep -o '\[[0-9]*\]' || true; } |
        tr -d '[]' | sort -n | tr '\n' ' '
}
ok=0
for ((i = 0; i < 600; i++)); do
    member_alive r1
    kill -0 "$KCAT_PID" 2>/dev/null || fail "kcat -G exited: $(tail -n 5 "$T/kcat.stderr")"
    kp=$(kcat_parts)
    rp=$(member_parts r1)
    if [[ -n $kp && -n $rp && $(sed -n 3p "$T/r1.state") == assigned ]] &&
        [[ $(echo "$kp $rp" | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ') == "0 1 2 3 " ]]; then
        ok=1
        break
    fi
    sleep 0.1
done
[[ $ok = 1 ]] || fail "kcat [$(kcat_parts)] and r1 [$(member_parts r1)] did not share the 4 partitions; kcat: $(tail -n 5 "$T/kcat.stderr")"
log "kcat holds [$(kcat_parts)], r1 holds [$(member_parts r1)]"

produce "$TOPIC" b 400 || fail "produce b failed"
wait_all_consumed 90 r1
# Both consumed part of the second batch, each from its own partitions.
kb=$(awk '$1 == "C" && $4 ~ /^b-/' "$T/extra.consumed" | wc -l)
rb=$(awk '$1 == "C" && $4 ~ /^b-/' "$T/r1.out" | wc -l)
((kb > 0 && rb > 0)) || fail "kcat consumed $kb and r1 $rb messages of the second batch"
for p in $(awk '$1 == "C" && $4 ~ /^b-/ { print $2 }' "$T/extra.consumed" | sort -u); do
    [[ " $(kcat_parts)" == *" $p "* ]] || fail "kcat consumed from partition $p, not assigned to it"
done
log "second batch: kcat consumed $kb, r1 consumed $rb"

kill -TERM "$KCAT_PID"
wait_exit "$KCAT_PID" 30 || fail "kcat -G did not exit within 30 s of SIGTERM"
log "kcat -G exited with status $EXIT_STATUS"
wait_covered 30 4 r1
produce "$TOPIC" c 100 || fail "produce c failed"
wait_all_consumed 60 r1
stop_member r1
broker_alive
stop_broker
