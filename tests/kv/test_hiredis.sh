#!/usr/bin/env bash
# test_hiredis.sh - the services' client library against the key store:
# 10,000 pipelined commands, and the async API on a libevent loop.
. "$(dirname "$0")/lib.sh"
: "${KV_PIPELINE:?hiredis programs not built}"

start_souk
timeout 60 "$KV_PIPELINE" "$VPORT" || fail "pipelined commands"
expect "keys after the pipeline" "$(cli "$VPORT" DBSIZE)" "2501"
expect "counter" "$(cli "$VPORT" GET counter)" "2500"
timeout 60 "$KV_ASYNC" "$VPORT" || fail "async client"
expect "async keys" "$(cli "$VPORT" GET k999)" "v999"
stop_souk
