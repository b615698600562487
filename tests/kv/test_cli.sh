#!/usr/bin/env bash
# test_cli.sh - every command of the key store through redis-cli.
#
# cli_script.txt is run through `redis-cli --no-raw` against souk-broker and
# against Debian's redis-server, and both outputs must equal
# cli_expected.txt, which proves that the expectations are Redis's own.
# Then what cannot be compared byte for byte (ids, times, INFO, COMMAND,
# HELLO 3, SELECT 1, AUTH with a password, Pub/Sub between two clients) is
# checked against souk alone.
. "$(dirname "$0")/lib.sh"

script="$KV_TEST_DIR/cli_script.txt"
expected="$KV_TEST_DIR/cli_expected.txt"

start_souk
cli "$VPORT" --no-raw <"$script" >"$T/souk.out" 2>&1 || true
if ! diff -u "$expected" "$T/souk.out" >"$T/souk.diff"; then
    cat "$T/souk.diff" >&2
    fail "souk's replies differ from cli_expected.txt"
fi
log "souk: $(wc -l <"$T/souk.out") reply lines as expected"

if [[ -n ${REDIS_SERVER:-} ]]; then
    start_redis
    cli "$RPORT" --no-raw <"$script" >"$T/redis.out" 2>&1 || true
    if ! diff -u "$expected" "$T/redis.out" >"$T/redis.diff"; then
        cat "$T/redis.diff" >&2
        fail "redis-server's replies differ from cli_expected.txt (the expectations are wrong)"
    fi
    log "redis-server: the same replies"
    stop_redis
else
    log "redis-server not installed: the reference run is skipped"
fi

# ---- souk only --------------------------------------------------------------
expect "SELECT 1" "$(cli "$VPORT" SELECT 1 2>&1)" "ERR DB index is out of range"
expect "HELLO 3" "$(cli "$VPORT" HELLO 3 2>&1)" "NOPROTO unsupported protocol version"
hello=$(cli "$VPORT" HELLO 2 SETNAME hi | tr '\n' ' ')
[[ $hello == "server redis version "*" proto 2 id "*" mode standalone role master modules "* ]] || fail "HELLO 2: $hello"
[[ $(cli "$VPORT" CLIENT ID) =~ ^[0-9]+$ ]] || fail "CLIENT ID is not an integer"
mapfile -t tm < <(cli "$VPORT" TIME)
[[ ${#tm[@]} -eq 2 && ${tm[0]} =~ ^[0-9]+$ && ${tm[1]} =~ ^[0-9]+$ ]] || fail "TIME: ${tm[*]}"
now=$(date +%s)
((tm[0] >= now - 5 && tm[0] <= now + 5)) || fail "TIME is ${tm[0]}, the clock says $now"
n=$(cli "$VPORT" COMMAND COUNT)
((n >= 40)) || fail "COMMAND COUNT is $n"
cli "$VPORT" COMMAND DOCS get | grep -q '^summary$' || fail "COMMAND DOCS get has no summary"
cli "$VPORT" COMMAND INFO get | grep -qx 'get' || fail "COMMAND INFO get"
[[ $(cli "$VPORT" COMMAND | grep -c '^set$') -ge 1 ]] || fail "COMMAND lists no set"
expect "CONFIG GET appendonly" "$(cli "$VPORT" CONFIG GET appendonly | tr '\n' ' ')" "appendonly yes "
cli "$VPORT" SET a 1 >/dev/null
cli "$VPORT" SET b 2 EX 100 >/dev/null
info=$(cli "$VPORT" INFO)
for want in 'redis_version:' 'connected_clients:' 'used_memory:' 'maxmemory:' 'total_commands_processed:' \
    'expired_keys:0' 'db0:keys=2,expires=1,avg_ttl=0' 'aof_enabled:1'; do
    grep -q "$want" <<<"$info" || fail "INFO has no '$want'"
done
[[ $(cli "$VPORT" INFO keyspace | tr -d '\r' | head -1) == "# Keyspace" ]] || fail "INFO keyspace"
pttl=$(cli "$VPORT" PTTL b)
((pttl > 90000 && pttl <= 100000)) || fail "PTTL b is $pttl"
ttl=$(cli "$VPORT" TTL b)
((ttl == 100 || ttl == 99)) || fail "TTL b is $ttl"
[[ $(cli "$VPORT" CLIENT LIST) == id=* ]] || fail "CLIENT LIST"

# Pub/Sub between two clients: SUBSCRIBE and PSUBSCRIBE see PUBLISH.
timeout 10 "$REDIS_CLI" -p "$VPORT" SUBSCRIBE news >"$T/sub.out" 2>&1 &
sub=$!
timeout 10 "$REDIS_CLI" -p "$VPORT" PSUBSCRIBE 'n*s' >"$T/psub.out" 2>&1 &
psub=$!
for ((i = 0; i < 100; i++)); do
    [[ $(cli "$VPORT" PUBLISH news hello) == 2 ]] && break
    sleep 0.1
done
((i < 100)) || fail "PUBLISH never reached both subscribers"
for ((i = 0; i < 50; i++)); do
    grep -q hello "$T/sub.out" && grep -q hello "$T/psub.out" && break
    sleep 0.1
done
kill "$sub" "$psub" 2>/dev/null || true
wait "$sub" "$psub" 2>/dev/null || true
expect "SUBSCRIBE output" "$(head -6 "$T/sub.out" | tr '\n' ' ')" "subscribe news 1 message news hello "
expect "PSUBSCRIBE output" "$(head -7 "$T/psub.out" | tr '\n' ' ')" "psubscribe n*s 1 pmessage n*s news hello "
expect "PUBLISH after the subscribers left" "$(cli "$VPORT" PUBLISH news bye)" "0"

# A password (--kv-password): NOAUTH until AUTH, WRONGPASS for a wrong one.
stop_souk
start_souk --kv-password s3cret
expect "no AUTH" "$(cli "$VPORT" GET a 2>&1)" "NOAUTH Authentication required."
expect "wrong AUTH" "$(printf 'AUTH nope\nGET a\n' | cli "$VPORT" 2>&1 | grep -v "^$" | tr "\n" "|")" \
    "WRONGPASS invalid username-password pair or user is disabled.|NOAUTH Authentication required.|"
expect "AUTH" "$(printf 'AUTH s3cret\nGET a\n' | cli "$VPORT" 2>&1 | grep -v "^$" | tr "\n" "|")" "OK|1|"
expect "AUTH default" "$(printf 'AUTH default s3cret\nGET b\n' | cli "$VPORT" 2>&1 | grep -v "^$" | tr "\n" "|")" "OK|2|"
expect "HELLO AUTH" "$(cli "$VPORT" HELLO 2 AUTH default s3cret | sed -n 6p)" "2"
expect "-a" "$(cli "$VPORT" -a s3cret --no-auth-warning GET a)" "1"
cli "$VPORT" -a s3cret --no-auth-warning INFO memory | grep -q '^maxmemory:268435456' || fail "the default --kv-maxmemory is not 256m"
stop_souk
