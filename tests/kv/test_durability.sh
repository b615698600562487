#!/usr/bin/env bash
# test_durability.sh - the key store's append-only file: keys and absolute
# deadlines survive a clean restart; with --kv-fsync always nothing
# acknowledged is lost to kill -9; a key whose deadline passes while the
# broker is down expires right after start and is announced on kv.expired; a
# torn last record is cut off with a log line; a rewrite (while writes go on)
# loses nothing.
. "$(dirname "$0")/lib.sh"

now_ms() { date +%s%3N; }

# dump: every key with its value and absolute deadline, sorted.
dump() {
    cli "$VPORT" --no-raw KEYS '*' | sed -E 's/^ *[0-9]+\) "(.*)"$/\1/' | grep -v '^(empty array)$' | sort >"$T/keys" || true
    while IFS= read -r k; do printf 'GET "%s"\nPEXPIRETIME "%s"\n' "$k" "$k"; done <"$T/keys" >"$T/dump.cmds"
    paste -d' ' "$T/keys" <(cli "$VPORT" --no-raw <"$T/dump.cmds" | paste -d' ' - -)
}

# 1. A clean restart keeps values and deadlines.
start_souk
cli "$VPORT" SET plain hello >/dev/null
cli "$VPORT" SET ttl v EX 1000 >/dev/null
cli "$VPORT" SET ms v PX 500000 >/dev/null
for i in 1 2 3; do cli "$VPORT" INCR counter >/dev/null; done
cli "$VPORT" SET persisted v EX 100 >/dev/null
cli "$VPORT" PERSIST persisted >/dev/null
cli "$VPORT" SET kept v EX 100 >/dev/null
cli "$VPORT" SET kept v2 KEEPTTL >/dev/null
cli "$VPORT" SET deleted v >/dev/null
cli "$VPORT" DEL deleted >/dev/null
cli "$VPORT" MSET m1 a m2 b >/dev/null
cli "$VPORT" SET "bin key" 'with
newline' >/dev/null
before=$(dump)
stop_souk
start_souk
after=$(dump)
[[ "$before" == "$after" ]] || fail "state changed across a restart:
before:
$before
after:
$after"
expect "counter" "$(cli "$VPORT" GET counter)" "3"
expect "persisted TTL" "$(cli "$VPORT" TTL persisted)" "-1"
log "clean restart: $(wc -l <<<"$after") keys with their deadlines intact"

# 2. A deadline that passes while the broker is down.
deadline=$(($(now_ms) + 1000))
cli "$VPORT" SET hold:42 '{"booking":42}' PXAT "$deadline" >/dev/null
stop_souk
sleep 1.5
start_souk
for ((i = 0; i < 50; i++)); do
    [[ $(cli "$VPORT" EXISTS hold:42) == 0 ]] && break
    sleep 0.1
done
expect "hold:42 after restart" "$(cli "$VPORT" EXISTS hold:42)" "0"
rec=$(kcat_expired | grep '^hold:42	') || fail "hold:42 is not on kv.expired"
want_at=$(date -u -d "@$((deadline / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((deadline % 1000)))Z
expect "kv.expired record" "$rec" "hold:42	{\"key\":\"hold:42\",\"value\":\"{\\\"booking\\\":42}\",\"expiredAt\":\"$want_at\"}"
stop_souk
start_souk
expect "announced once" "$(kcat_expired | grep -c '^hold:42	')" "1"
stop_souk

# 3. kill -9 under --kv-fsync always: every acknowledged write is there.
start_souk --kv-fsync always
for ((i = 0; i < 20000; i++)); do printf 'SET ack:%d %d\n' "$i" "$i"; done >"$T/acks.cmds"
timeout 60 "$REDIS_CLI" -p "$VPORT" <"$T/acks.cmds" >"$T/acks.out" 2>&1 &
client=$!
sleep 0.7
kill_souk
wait "$client" 2>/dev/null || true
acked=$(grep -c '^OK$' "$T/acks.out" || true)
log "kill -9 after $acked acknowledged SETs"
((acked > 0)) || fail "no SET was acknowledged before kill -9"
start_souk --kv-fsync always
for ((i = 0; i < acked; i++)); do printf 'GET ack:%d\n' "$i"; done >"$T/check.cmds"
cli "$VPORT" <"$T/check.cmds" >"$T/check.out"
seq 0 $((acked - 1)) | diff -q - "$T/check.out" >/dev/null || fail "acknowledged writes were lost after kill -9"
stop_souk

# 4. A torn last record is cut off with a log line.
printf '*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$5\r\nval' >>"$SOUK_DATA/kv.aof"
size_torn=$(stat -c %s "$SOUK_DATA/kv.aof")
start_souk
grep -q 'torn last record' "$SOUK_LOG" || fail "no log line for the torn record"
expect "torn key" "$(cli "$VPORT" EXISTS torn)" "0"
expect "keys before it" "$(cli "$VPORT" GET counter)" "3"
(($(stat -c %s "$SOUK_DATA/kv.aof") < size_torn)) || fail "the torn record was not cut off"
# A corrupt record in the middle is refused, not skipped.
stop_souk
cp "$SOUK_DATA/kv.aof" "$T/good.aof"
{ printf 'garbage\r\n'; cat "$T/good.aof"; } >"$SOUK_DATA/kv.aof"
"$SOUK_BROKER_BIN" --data-dir "$SOUK_DATA" --kafka-listen "127.0.0.1:$KPORT" --kv-listen "127.0.0.1:$VPORT" \
    >/dev/null 2>"$T/corrupt.err" &
pid=$!
for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    fail "the broker started on a corrupt AOF"
fi
wait "$pid" || true
grep -q 'corrupt record at offset 0' "$T/corrupt.err" || fail "no error for the corrupt AOF"
cp "$T/good.aof" "$SOUK_DATA/kv.aof"

# 5. A rewrite (BGREWRITEAOF) while writes go on loses nothing.
start_souk
for ((i = 0; i < 30000; i++)); do
    printf 'SET r:%d v%d EX %d\n' "$i" "$i" $((1000 + i))
    printf 'SET r:%d w%d KEEPTTL\n' "$i" "$i"
done >"$T/load.cmds"
timeout 120 "$REDIS_CLI" -p "$VPORT" --pipe <"$T/load.cmds" >/dev/null || fail "loading"
for ((i = 0; i < 30000; i += 3)); do printf 'DEL r:%d\nSET n:%d x\nINCR cnt\n' "$i" "$i"; done >"$T/more.cmds"
expect "BGREWRITEAOF" "$(cli "$VPORT" BGREWRITEAOF)" "Background append only file rewriting started"
timeout 120 "$REDIS_CLI" -p "$VPORT" --pipe <"$T/more.cmds" >/dev/null || fail "writing during the rewrite"
for ((i = 0; i < 200; i++)); do
    cli "$VPORT" INFO persistence | tr -d '\r' | grep -q '^aof_rewrite_in_progress:0' && break
    sleep 0.1
done
info=$(cli "$VPORT" INFO persistence | tr -d '\r')
grep -q '^aof_rewrites:[1-9]' <<<"$info" || fail "no rewrite happened: $info"
before=$(dump)
stop_souk
start_souk
after=$(dump)
[[ "$before" == "$after" ]] || fail "state changed across a rewrite and restart ($(diff <(echo "$before") <(echo "$after") | head -5))"
log "rewrite: $(wc -l <<<"$after") keys intact; AOF now $(stat -c %s "$SOUK_DATA/kv.aof") bytes"
stop_souk

# 6. The automatic rewrite: the file grows past twice the live data.
start_souk --kv-aof-rewrite-min-size 1k
cli "$VPORT" FLUSHALL >/dev/null
for ((i = 0; i < 3000; i++)); do printf 'INCR hot\n'; done | cli "$VPORT" >/dev/null
for ((i = 0; i < 50; i++)); do
    cli "$VPORT" INFO persistence | tr -d '\r' | grep -q '^aof_rewrites:[1-9]' && break
    sleep 0.1
done
size=$(stat -c %s "$SOUK_DATA/kv.aof")
((size < 1000)) || fail "the AOF was not rewritten automatically ($size bytes)"
stop_souk
start_souk
expect "hot after the automatic rewrite" "$(cli "$VPORT" GET hot)" "3000"
stop_souk
