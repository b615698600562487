#!/usr/bin/env bash
# The key-store client (hiredis async on libevent) against souk-broker's
# key store: commands, TTLs and expiry, the INCR+EXPIRE rate-limit window,
# errors; then a client that starts before the server, and survives the
# server going away and coming back (reconnect with backoff).
source "$(dirname "$0")/lib.sh"

VPORT=$(free_port)
KV="127.0.0.1:$VPORT"

start_broker "" --kv-listen "$KV"
log "1. commands"
ev kv "$KV" basic

log "2. reconnects"
stop_broker
"$EV_TOOL" kv "$KV" reconnect >"$T/reconnect.out" 2>>"$EV_ERR" &
KV_PID=$!
sleep 1
kill -0 "$KV_PID" 2>/dev/null || fail "the client gave up while the key store was not there yet"
start_broker "$BROKER_PORT" --kv-listen "$KV"
wait_for() { # PATTERN SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -q "$1" "$T/reconnect.out" && return 0
        kill -0 "$KV_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
wait_for 'phase connected' 30 || fail "the client did not connect once the key store started"
stop_broker
wait_for 'phase down' 30 || fail "the client did not notice the key store going away"
start_broker "$BROKER_PORT" --kv-listen "$KV"
wait_exit "$KV_PID" 60 || fail "the client did not come back within 60 s"
[[ $EXIT_STATUS -eq 0 ]] || fail "the reconnect client exited with $EXIT_STATUS"
ev_check_sanitizers
log "$(tr '\n' ' ' <"$T/reconnect.out")"
grep -q 'phase up (value v)' "$T/reconnect.out" || fail "the value did not survive the restart"
stop_broker
