#!/usr/bin/env bash
# test_expiry.sh - keys expire at their deadline, lazily and by the active
# cycle; subscribers get __keyevent@0__:expired; and every expiry becomes a
# record on the topic kv.expired (read back with kcat), within 100 ms of its
# deadline even with 100,000 keys in the store.
. "$(dirname "$0")/lib.sh"

now_ms() { date +%s%3N; }

start_souk
expect "CONFIG SET" "$(cli "$VPORT" CONFIG SET notify-keyspace-events Ex)" "OK"
timeout 20 "$REDIS_CLI" -p "$VPORT" PSUBSCRIBE '__keyevent@0__:expired' >"$T/psub.out" 2>&1 &
psub=$!
for ((i = 0; i < 50; i++)); do
    grep -q psubscribe "$T/psub.out" 2>/dev/null && break
    sleep 0.1
done

# SET k v PX 300: there before the deadline, gone after it.
t0=$(now_ms)
expect "SET PX" "$(cli "$VPORT" SET k v PX 300)" "OK"
expect "GET before" "$(cli "$VPORT" GET k)" "v"
pttl=$(cli "$VPORT" PTTL k)
((pttl > 0 && pttl <= 300)) || fail "PTTL k is $pttl"
# Nobody reads k from now on: the active cycle must expire it.
for ((i = 0; i < 100; i++)); do
    [[ $(cli "$VPORT" DBSIZE) == 0 ]] && break
    sleep 0.05
done
t1=$(now_ms)
expect "DBSIZE after the deadline" "$(cli "$VPORT" DBSIZE)" "0"
((t1 - t0 >= 300)) || fail "k was gone after $((t1 - t0)) ms, before its deadline"
expect "GET after" "$(cli "$VPORT" GET k)" ""
log "k expired after $((t1 - t0)) ms (deadline 300 ms)"

# Lazy expiry: a read after the deadline finds nothing (and announces it).
cli "$VPORT" SET lazy 'say "hi"
there' PX 100 >/dev/null
sleep 0.2
expect "GET lazy" "$(cli "$VPORT" GET lazy)" ""

# Deleted keys are not expiries.
cli "$VPORT" SET gone v EX 100 >/dev/null
cli "$VPORT" DEL gone >/dev/null
cli "$VPORT" SET gone2 v EX 100 >/dev/null
cli "$VPORT" EXPIRE gone2 0 >/dev/null

for ((i = 0; i < 50; i++)); do
    [[ $(grep -c '^__keyevent@0__:expired$' "$T/psub.out") -ge 2 ]] && break
    sleep 0.1
done
kill "$psub" 2>/dev/null || true
wait "$psub" 2>/dev/null || true
expect "keyspace notifications" "$(tr '\n' ' ' <"$T/psub.out")" \
    "psubscribe __keyevent@0__:expired 1 pmessage __keyevent@0__:expired __keyevent@0__:expired k pmessage __keyevent@0__:expired __keyevent@0__:expired lazy "

# The records on kv.expired.
kcat_expired >"$T/records"
cat "$T/records" >&2
expect "records" "$(wc -l <"$T/records")" "2"
grep -qE '^k	\{"key":"k","value":"v","expiredAt":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"\}$' \
    "$T/records" || fail "no record for k"
grep -qF '{"key":"lazy","value":"say \"hi\"\nthere","expiredAt":"' "$T/records" || fail "no record for lazy"
grep -q gone "$T/records" && fail "a deleted key was announced as expired"
expect "INFO expired_keys" "$(cli "$VPORT" INFO stats | tr -d '\r' | grep '^expired_keys:')" "expired_keys:2"

# 100,000 keys with TTLs in the store; a key expiring among them is on the
# log within 100 ms of its deadline (record timestamp - expiredAt).
for ((i = 0; i < 100000; i++)); do printf 'SET filler:%d v EX 3600\n' "$i"; done >"$T/fill.txt"
timeout 120 "$REDIS_CLI" -p "$VPORT" --pipe <"$T/fill.txt" >"$T/pipe.out" 2>&1 || fail "loading 100000 keys"
expect "DBSIZE filled" "$(cli "$VPORT" DBSIZE)" "100000"
for n in 1 2 3; do
    deadline=$(($(now_ms) + 400))
    cli "$VPORT" SET "probe$n" x PXAT "$deadline" >/dev/null
done
sleep 1
timeout 30 "$KCAT" -b "127.0.0.1:$KPORT" -C -t kv.expired -o beginning -e -q -f '%T %k %s\n' >"$T/timed" 2>>"$T/kcat.err"
for n in 1 2 3; do
    line=$(grep " probe$n " "$T/timed") || fail "probe$n not on kv.expired"
    ts=${line%% *}
    iso=$(sed -E 's/.*"expiredAt":"([^"]+)".*/\1/' <<<"$line")
    at=$(date -d "$iso" +%s%3N)
    lag=$((ts - at))
    log "probe$n: on the log $lag ms after its deadline (100,000 keys in the store)"
    ((lag >= 0 && lag <= 100)) || fail "probe$n appended $lag ms after its deadline"
done
stop_souk
