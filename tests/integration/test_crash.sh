#!/usr/bin/env bash
# test_crash.sh - kill -9 of the broker while a producer with acks=all is
# writing (rdk_produce_acked.c records every acknowledged key): after a
# restart every acknowledged message must be readable, no corrupt batch may
# be served, and the partitions must take new messages at the right offsets.
# Runs with the default --flush-ms 1000 (acknowledged data is in the page
# cache, which survives the process) and with --flush-ms 0 (fsync before the
# acknowledgement).  First, a deterministic case: a torn batch at the end of
# a segment (as a write cut short by the kill leaves it) must cost only the
# torn bytes.
. "$(dirname "$0")/lib.sh"
: "${RDK_PRODUCE_ACKED:?RDK_PRODUCE_ACKED is not set (run through meson test)}"

TOPIC=crash-t
TAB=$(printf '\t')

# lines FILE: number of lines in FILE (0 if it does not exist yet).
lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

crash_once() {
    local flush=$1 acked="$T/acked-$1.txt" prod_pid rc i n0 n1
    BROKER_DATA="$T/data-flush$flush"
    start_broker "" --partitions 4 --flush-ms "$flush"
    local port=$BROKER_PORT

    timeout 120 "$RDK_PRODUCE_ACKED" "$BROKER_ADDR" "$TOPIC" "$acked" 60 2>"$T/producer-$flush.err" &
    prod_pid=$!
    # Let it run about a second, with acknowledgements flowing.
    for ((i = 0; i < 100; i++)); do
        [[ $(lines "$acked") -ge 1000 ]] && break
        kill -0 "$prod_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ $(lines "$acked") -ge 1000 ]] || fail "flush-ms $flush: fewer than 1000 acknowledgements in 10 s: $(cat "$T/producer-$flush.err")"
    sleep 1
    n0=$(lines "$acked")
    sleep 0.2
    n1=$(lines "$acked")
    [[ $n1 -gt $n0 ]] || fail "flush-ms $flush: acknowledgements stopped before the kill ($n0 then $n1)"
    kill -0 "$prod_pid" 2>/dev/null || fail "flush-ms $flush: the producer stopped before the kill"

    kill9_broker
    wait_exit "$prod_pid" 90 || { kill -KILL "$prod_pid"; fail "flush-ms $flush: the producer did not finish within 90 s of the kill"; }
    rc=$EXIT_STATUS
    [[ $rc -eq 0 ]] || fail "flush-ms $flush: producer exited with $rc: $(tail -n 5 "$T/producer-$flush.err")"
    tail -n 1 "$T/producer-$flush.err" >&2
    local nacked
    nacked=$(lines "$acked")
    log "flush-ms $flush: $nacked messages acknowledged before the kill"

    start_broker "$port" --partitions 4 --flush-ms "$flush"
    rc=0
    kc -C -t "$TOPIC" -o beginning -e -q -X check.crcs=true -f '%p\t%o\t%k\n' >"$T/consumed-$flush.txt" \
        2>"$T/consume-$flush.err" || rc=$?
    [[ $rc -eq 0 ]] || fail "flush-ms $flush: kcat -C after the crash exited with $rc: $(head -c 2000 "$T/consume-$flush.err")"
    grep -q 'ERROR' "$T/consume-$flush.err" && fail "flush-ms $flush: kcat -C reported: $(grep ERROR "$T/consume-$flush.err" | head -n 3)"

    # Offsets without gaps in every partition.
    awk -F'\t' '{ if ($2 != next_off[$1] + 0) { print "partition " $1 ": offset " $2 " after " next_off[$1] - 1; exit 1 }
                  next_off[$1] = $2 + 1 }' "$T/consumed-$flush.txt" >&2 ||
        fail "flush-ms $flush: offsets after recovery have gaps"
    cut -f3 "$T/consumed-$flush.txt" | LC_ALL=C sort -u >"$T/consumed-keys-$flush.txt"
    LC_ALL=C sort -u "$acked" >"$T/acked-sorted-$flush.txt"
    local nconsumed nlost
    nconsumed=$(lines "$T/consumed-$flush.txt")
    nlost=$(LC_ALL=C comm -23 "$T/acked-sorted-$flush.txt" "$T/consumed-keys-$flush.txt" | wc -l)
    if [[ $nlost -ne 0 ]]; then
        fail "flush-ms $flush: $nlost of $nacked acknowledged messages are lost, e.g. $(LC_ALL=C comm -23 "$T/acked-sorted-$flush.txt" "$T/consumed-keys-$flush.txt" | head -n 5 | tr '\n' ' ')"
    fi
    [[ $nconsumed -ge $nacked ]] || fail "flush-ms $flush: consumed $nconsumed messages, fewer than the $nacked acknowledged"
    log "flush-ms $flush: all $nacked acknowledged messages are there ($nconsumed consumed)"

    # The recovered partitions take new messages right after their last offset.
    local p2_end
    p2_end=$(awk -F'\t' '$1 == 2 { n++ } END { print n + 0 }' "$T/consumed-$flush.txt")
    printf 'after-crash\tx%d\n' $(seq 1 50) | kc -P -t "$TOPIC" -K "$TAB" -p 2 -X acks=all 2>"$T/produce2.err" ||
        fail "flush-ms $flush: kcat -P after recovery failed: $(cat "$T/produce2.err")"
    kc -C -t "$TOPIC" -p 2 -o "$p2_end" -e -q -X check.crcs=true -f '%o\t%k\t%s\n' >"$T/new-$flush.txt" 2>"$T/new.err" ||
        fail "flush-ms $flush: kcat -C of the new messages failed: $(cat "$T/new.err")"
    awk -F'\t' -v base="$p2_end" '
        { if ($1 != base + NR - 1 || $2 != "after-crash" || $3 != "x" NR) { print "bad line " NR ": " $0; bad = 1 } }
        END { if (NR != 50) { print NR " messages, expected 50"; bad = 1 }; exit bad }' "$T/new-$flush.txt" >&2 ||
        fail "flush-ms $flush: messages produced after recovery are not at offsets $p2_end.. of partition 2"
    stop_broker
}

# torn_tail: appends part of a batch to two partitions' segments of a
# stopped broker; on restart only those bytes may go.
torn_tail() {
    local p n
    BROKER_DATA="$T/data-torn"
    start_broker "" --partitions 2
    local port=$BROKER_PORT
    for p in 0 1; do
        seq 1 3000 | sed "s/^/p$p-/" |
            kc -P -t torn-t -p "$p" -X acks=all -X batch.num.messages=50 -X linger.ms=1 2>"$T/torn-p.err" ||
            fail "kcat -P failed: $(cat "$T/torn-p.err")"
    done
    stop_broker
    local seg0="$BROKER_DATA/torn-t-0/00000000000000000000.log" seg1="$BROKER_DATA/torn-t-1/00000000000000000000.log"
    [[ -s $seg0 && -s $seg1 ]] || fail "torn tail: segment files not found: $(ls -R "$BROKER_DATA")"
    head -c 100 "$seg0" >>"$seg0.tmp" && cat "$seg0.tmp" >>"$seg0" && rm "$seg0.tmp" # header and part of a batch
    head -c 30 "$seg1" >>"$seg1.tmp" && cat "$seg1.tmp" >>"$seg1" && rm "$seg1.tmp"   # less than a batch header
    start_broker "$port" --partitions 2
    grep -aq 'torn-t-0: truncated 100 bytes' "$BROKER_LOG" || fail "torn tail: the 100 torn bytes of partition 0 were not truncated alone"
    grep -aq 'torn-t-1: truncated 30 bytes' "$BROKER_LOG" || fail "torn tail: the 30 torn bytes of partition 1 were not truncated alone"
    for p in 0 1; do
        timeout 30 "${KCAT:-kcat}" -b "$BROKER_ADDR" -C -t torn-t -p "$p" -o beginning -e -q -X check.crcs=true \
            -f '%o %s\n' >"$T/torn-$p.txt" 2>"$T/torn-c.err" ||
            fail "torn tail: kcat -C of partition $p failed or hung: $(cat "$T/torn-c.err")"
        awk -v p="$p" '{ if ($1 != NR - 1 || $2 != "p" p "-" NR) { print "bad line " NR ": " $0; exit 1 } }
                       END { if (NR != 3000) { print NR " messages, expected 3000"; exit 1 } }' "$T/torn-$p.txt" >&2 ||
            fail "torn tail: partition $p lost messages"
        printf 'new-%d\n' $(seq 1 10) | kc -P -t torn-t -p "$p" -X acks=all 2>"$T/torn-p.err" ||
            fail "torn tail: kcat -P after recovery failed: $(cat "$T/torn-p.err")"
        n=$(kc -C -t torn-t -p "$p" -o 3000 -e -q -f '%o %s\n' | awk '$1 == 2999 + NR && $2 == "new-" NR' | wc -l)
        [[ $n -eq 10 ]] || fail "torn tail: new messages in partition $p are not at offsets 3000..3009"
    done
    log "torn tail: only the torn bytes were truncated"
    stop_broker
}

torn_tail
crash_once 1000
crash_once 0
