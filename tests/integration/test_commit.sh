#!/usr/bin/env bash
# test_commit.sh - committed offsets survive broker restarts (rdk_commit.c):
# a consumer with a group.id and rd_kafka_assign() commits part of each
# partition synchronously; after a clean restart, and after a kill -9 with
# --flush-ms 0, a new consumer of the same group resumes exactly at the
# committed offsets.
. "$(dirname "$0")/lib.sh"
: "${RDK_COMMIT:?RDK_COMMIT is not set (run through meson test)}"

TOPIC=commit-t
TAB=$(printf '\t')
start_broker "" --partitions 4
port=$BROKER_PORT

for i in $(seq 0 1999); do printf 'key-%d\tvalue-%d\n' $((i % 50)) "$i"; done >"$T/in.txt"
kc -P -t "$TOPIC" -K "$TAB" -X acks=all <"$T/in.txt" 2>"$T/produce.err" ||
    fail "kcat -P failed: $(cat "$T/produce.err")"
grep -q 'Delivery failed' "$T/produce.err" && fail "kcat -P: $(head -n 3 "$T/produce.err")"

# Clean restart (SIGTERM): the commits are flushed on the way out.
run_client commit-first-g1 "$RDK_COMMIT" first "$BROKER_ADDR" "$TOPIC" g1 "$T/g1.offsets"
run_client commit-second-g1-live "$RDK_COMMIT" second "$BROKER_ADDR" "$TOPIC" g1 "$T/g1.offsets"
stop_broker
start_broker "$port" --partitions 4
run_client commit-second-g1 "$RDK_COMMIT" second "$BROKER_ADDR" "$TOPIC" g1 "$T/g1.offsets"
log "group g1 resumed at its committed offsets after a restart"

# Crash (SIGKILL) with --flush-ms 0: a commit is on disk before its response.
stop_broker
start_broker "$port" --partitions 4 --flush-ms 0
run_client commit-first-g2 "$RDK_COMMIT" first "$BROKER_ADDR" "$TOPIC" g2 "$T/g2.offsets"
kill9_broker
start_broker "$port" --partitions 4
run_client commit-second-g2 "$RDK_COMMIT" second "$BROKER_ADDR" "$TOPIC" g2 "$T/g2.offsets"
run_client commit-second-g1-again "$RDK_COMMIT" second "$BROKER_ADDR" "$TOPIC" g1 "$T/g1.offsets"
log "group g2 resumed at its committed offsets after kill -9"
stop_broker
