#!/usr/bin/env bash
# The outbox relay against the real broker:
#   1. rows are published in id order (per key) and each exactly once, and
#      the outbox is empty afterwards;
#   2. with the broker stopped, rows stay in the outbox (nothing is deleted
#      without a delivery report) while the relay keeps trying;
#   3. when the broker comes back, the waiting relay publishes them - no
#      loss, no duplicate (no request ever reached the stopped broker, so no
#      acknowledgement could be lost);
#   4. the relay process killed with -9 mid-stream: the rows it had not
#      deleted are published by the next run - no loss; duplicates only for
#      rows whose delivery was acknowledged but not yet deleted (a lost
#      report from the database's point of view), at most about the
#      in-flight window (100 rows here, to slow the relay down enough to be
#      killed mid-stream).
source "$(dirname "$0")/lib.sh"

DB="$T/relay.db"
TOPIC=ev.relay

# check_topic N: the topic holds seq 1..N, each once, in order per key.
check_topic() {
    local n=$1 dump
    dump=$(topic_dump "$TOPIC")
    local total dups missing disorder
    total=$(printf '%s\n' "$dump" | grep -c . || true)
    dups=$(printf '%s\n' "$dump" | cut -f4 | "$JQ" -r .seq | sort -n | uniq -d | wc -l)
    missing=$(comm -23 <(seq 1 "$n" | sort) <(printf '%s\n' "$dump" | cut -f4 | "$JQ" -r .seq | sort -u) | wc -l)
    # per key (the Kafka key is the row's key), seq must increase in offset order
    disorder=$(printf '%s\n' "$dump" | sort -t$'\t' -k1,1n -k2,2n |
        awk -F'\t' '{ split($4, a, "\"seq\":"); s = a[2] + 0; if ($3 in last && s <= last[$3]) bad++; last[$3] = s } END { print bad + 0 }')
    log "topic $TOPIC: $total records, $dups duplicated seqs, $missing missing, $disorder out of order"
    [[ $missing -eq 0 ]] || fail "$missing of $n rows never reached the topic"
    [[ $dups -eq 0 ]] || fail "$dups rows were published more than once"
    [[ $total -eq $n ]] || fail "expected $n records, found $total"
    [[ $disorder -eq 0 ]] || fail "$disorder records out of order within their key"
}

start_broker "" --partitions 3

log "1. 500 rows over 7 keys, published in order and deleted"
ev fill "$DB" "$TOPIC" 500 7 >/dev/null
[[ $(ev count "$DB") -eq 500 ]] || fail "fill did not leave 500 rows"
out=$(ev relay "$DB" "$BROKER_ADDR" --until-empty 60)
log "$out"
[[ $out == *"delivered=500 "*"broker_up=1 reports=500"* ]] || fail "unexpected relay counters: $out"
[[ $(ev count "$DB") -eq 0 ]] || fail "the outbox is not empty after the relay"
check_topic 500

log "1b. an idle relay sleeps (no busy polling): CPU time over 4 s"
TIMEFORMAT='%U %S'
cpu=$({ time "$EV_TOOL" relay "$DB" "$BROKER_ADDR" --for 4 >/dev/null 2>>"$EV_ERR"; } 2>&1)
log "  user/sys seconds: $cpu"
awk -v u="${cpu% *}" -v s="${cpu#* }" 'BEGIN { exit (u + s < 0.8) ? 0 : 1 }' ||
    fail "an idle relay used $cpu s of CPU in 4 s"

log "2. broker stopped: 300 more rows stay in the outbox"
stop_broker
ev fill "$DB" "$TOPIC" 300 7 501 >/dev/null
out=$(ev relay "$DB" "$BROKER_ADDR" --for 3)
log "$out"
[[ $out == *"delivered=0 "* ]] || fail "rows were reported delivered with the broker stopped: $out"
[[ $out == *"broker_up=0 "* ]] || fail "the relay says the stopped broker is up: $out"
[[ $(ev count "$DB") -eq 300 ]] || fail "rows left the outbox while the broker was stopped"

log "3. a relay waiting for the broker publishes everything once it is back"
timeout "$CLIENT_TIMEOUT" "$EV_TOOL" relay "$DB" "$BROKER_ADDR" --until-empty 90 >"$T/relay3.out" 2>>"$EV_ERR" &
RELAY_PID=$!
sleep 2
kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay gave up while the broker was away"
[[ $(ev count "$DB") -eq 300 ]] || fail "rows left the outbox while the broker was away"
start_broker "$BROKER_PORT" --partitions 3
wait_exit "$RELAY_PID" 90 || fail "the relay did not finish within 90 s of the broker's return"
[[ $EXIT_STATUS -eq 0 ]] || fail "the relay exited with $EXIT_STATUS"
ev_check_sanitizers
log "$(cat "$T/relay3.out")"
[[ $(ev count "$DB") -eq 0 ]] || fail "the outbox is not empty"
check_topic 800

log "4. the relay killed with -9 mid-stream; the next run completes"
TOPIC=ev.relay4
ev fill "$DB" "$TOPIC" 20000 5 >/dev/null
"$EV_TOOL" relay "$DB" "$BROKER_ADDR" --until-empty 120 --max-in-flight 100 >"$T/relay4.out" 2>>"$EV_ERR" &
RELAY_PID=$!
for ((i = 0; i < 200; i++)); do
    left=$(ev count "$DB")
    [[ $left -lt 19000 ]] && break
    sleep 0.02
done
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
left=$(ev count "$DB")
log "killed the relay with $left of 20000 rows left"
[[ $left -gt 0 ]] || fail "the relay finished before it could be killed; the test proves nothing"
ev relay "$DB" "$BROKER_ADDR" --until-empty 120 >/dev/null
[[ $(ev count "$DB") -eq 0 ]] || fail "the outbox is not empty"
dump=$(topic_dump "$TOPIC")
total=$(printf '%s\n' "$dump" | grep -c .)
distinct=$(printf '%s\n' "$dump" | cut -f4 | "$JQ" -r .seq | sort -u | wc -l)
log "topic $TOPIC: $total records, $distinct distinct rows, $((total - distinct)) re-sent after the kill"
[[ $distinct -eq 20000 ]] || fail "rows were lost: $distinct of 20000 distinct"
[[ $((total - distinct)) -le 200 ]] || fail "more duplicates than the in-flight window allows"
# first occurrences stay in order per key
disorder=$(printf '%s\n' "$dump" | sort -t$'\t' -k1,1n -k2,2n |
    awk -F'\t' '{ split($4, a, "\"seq\":"); s = a[2] + 0; if (seen[s]++) next; if ($3 in last && s <= last[$3]) bad++; last[$3] = s } END { print bad + 0 }')
[[ $disorder -eq 0 ]] || fail "$disorder first deliveries out of order within their key"

stop_broker
