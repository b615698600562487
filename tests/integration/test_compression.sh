#!/usr/bin/env bash
# test_compression.sh - librdkafka produces 2,000 keyed messages with acks=all
# under each compression.codec (none, gzip, snappy, lz4, zstd) and consumes
# them back exactly once and intact (rdk_compression.c); the broker must
# store the batches with the codec they were sent with.
. "$(dirname "$0")/lib.sh"
: "${RDK_COMPRESSION:?RDK_COMPRESSION is not set (run through meson test)}"

start_broker "" --partitions 3
run_client rdk_compression "$RDK_COMPRESSION" "$BROKER_ADDR" comp 2000 "$BROKER_DATA"
broker_alive
grep -aq '"level":"error"' "$BROKER_LOG" && fail "the broker logged errors"
stop_broker
