#!/usr/bin/env bash
# Long polling and fairness:
#  1. a consumer waiting at the end of a partition (Fetch with a long
#     MaxWaitMs) gets a new message as soon as it is produced, not when its
#     wait runs out;
#  2. a client that pipelines many Fetches and never reads the responses
#     stalls only itself: other clients produce, consume and list metadata.
. "$(dirname "$0")/lib.sh"

start_broker "" --partitions 1

# 1. Long poll woken by data.  The consumer waits up to 30 s per fetch; the
#    message must arrive well before that.
printf 'k:first\n' | kc -P -t lp -K: || fail "produce failed"
start=$(date +%s%N)
timeout 60 "${KCAT:-kcat}" -b "$BROKER_ADDR" -C -t lp -p 0 -o end -c 1 -f '%s\n' \
    -X fetch.wait.max.ms=30000 -X fetch.error.backoff.ms=30000 >"$T/lp.out" 2>"$T/lp.err" &
consumer=$!
sleep 2 # the consumer is now parked in a long poll at the end of the log
kill -0 $consumer 2>/dev/null || fail "the consumer exited before anything was produced: $(cat "$T/lp.err")"
sent=$(date +%s%N)
printf 'k:second\n' | kc -P -t lp -K: || fail "produce failed"
wait_exit $consumer 25 || fail "the waiting consumer did not get the new message within 25 s"
[[ $EXIT_STATUS -eq 0 ]] || fail "consumer exited with $EXIT_STATUS: $(cat "$T/lp.err")"
got=$(cat "$T/lp.out")
[[ $got == second ]] || fail "the waiting consumer got '$got', expected 'second'"
ms=$(( ($(date +%s%N) - sent) / 1000000 ))
log "long poll answered ${ms} ms after the produce (the fetch would have waited 30000 ms)"
(( ms < 15000 )) || fail "the long poll was not woken by the produce (${ms} ms)"
: "$start"

# 2. A client that never reads.  Fill a partition with ~4 MiB, then let the
#    slow client ask for it 200 times (far more than the socket buffers hold).
head -c 3000000 /dev/urandom | base64 -w 1000 | sed 's/^/k:/' | kc -P -t big -p 0 -K: -X message.max.bytes=2000000 \
    || fail "filling the topic failed"
"${PYTHON3:-python3}" "$(dirname "$0")/slow_client.py" 127.0.0.1 "$BROKER_PORT" big 200 </dev/null >"$T/slow.out" 2>"$T/slow.err" &
slow=$!
for ((i = 0; i < 100; i++)); do
    grep -q sent "$T/slow.out" 2>/dev/null && break
    kill -0 $slow 2>/dev/null || fail "slow client died: $(cat "$T/slow.err")"
    sleep 0.1
done
grep -q sent "$T/slow.out" || fail "the slow client did not manage to send its requests"
sleep 1
for round in 1 2 3; do
    kc -L -t big >/dev/null || fail "metadata failed while a client was not reading (round $round)"
    printf 'k:round%s\n' "$round" | kc -P -t other -K: || fail "produce failed while a client was not reading"
    n=$(kc -C -t other -o beginning -e -q -f '%s\n' | grep -c '^round') || true
    [[ $n -eq $round ]] || fail "consumed $n messages of $round while a client was not reading"
done
kill $slow 2>/dev/null || true
wait $slow 2>/dev/null || true
broker_alive
stop_broker
log "ok"
