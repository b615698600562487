#!/usr/bin/env bash
# The broker killed with -9 (a crash) while a service writes rows and the
# relay publishes them, then restarted on the same port and data:
#   - no row is lost: every seq reaches the topic;
#   - the outbox ends empty;
#   - first deliveries stay in order per key;
#   - duplicates are possible only where an acknowledgement was lost (the
#     broker stored a batch whose response never arrived, and librdkafka
#     sent it again); they are counted and reported, and bounded.
# The broker runs with --flush-ms 0 so that what it acknowledged is on disk
# (acks=all) - a kill -9 keeps the page cache anyway, but this is the setting
# whose promise is tested.
source "$(dirname "$0")/lib.sh"

DB="$T/crash.db"
TOPIC=ev.crash
N=4000

start_broker "" --partitions 3 --flush-ms 0
"$EV_TOOL" relay "$DB" "$BROKER_ADDR" --until-empty 150 --live "$TOPIC" "$N" 9 800 >"$T/relay.out" 2>>"$EV_ERR" &
RELAY_PID=$!
sleep 2
kill9_broker
log "broker killed; rows left in the outbox: $(ev count "$DB")"
sleep 2
kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay exited while the broker was down"
start_broker "$BROKER_PORT" --partitions 3 --flush-ms 0
sleep 1
kill9_broker
sleep 1
start_broker "$BROKER_PORT" --partitions 3 --flush-ms 0
wait_exit "$RELAY_PID" 150 || fail "the relay did not empty the outbox within 150 s"
[[ $EXIT_STATUS -eq 0 ]] || fail "the relay exited with status $EXIT_STATUS"
ev_check_sanitizers
log "$(cat "$T/relay.out")"
[[ $(ev count "$DB") -eq 0 ]] || fail "the outbox is not empty"

dump=$(topic_dump "$TOPIC")
total=$(printf '%s\n' "$dump" | grep -c .)
distinct=$(printf '%s\n' "$dump" | cut -f4 | "$JQ" -r .seq | sort -u | wc -l)
missing=$(comm -23 <(seq 1 "$N" | sort) <(printf '%s\n' "$dump" | cut -f4 | "$JQ" -r .seq | sort -u) | wc -l)
log "topic $TOPIC: $total records, $distinct distinct, $missing missing, $((total - distinct)) duplicates (lost acknowledgements)"
[[ $missing -eq 0 ]] || fail "$missing rows were lost"
[[ $distinct -eq $N ]] || fail "expected $N distinct rows, found $distinct"
[[ $((total - distinct)) -le 2000 ]] || fail "too many duplicates for two crashes: $((total - distinct))"
disorder=$(printf '%s\n' "$dump" | sort -t$'\t' -k1,1n -k2,2n |
    awk -F'\t' '{ split($4, a, "\"seq\":"); s = a[2] + 0; if (seen[s]++) next; if ($3 in last && s <= last[$3]) bad++; last[$3] = s } END { print bad + 0 }')
[[ $disorder -eq 0 ]] || fail "$disorder first deliveries out of order within their key"
stop_broker
