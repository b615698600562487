#!/usr/bin/env bash
# bench/kv_bench.sh [BUILD_DIR] - the key store against Debian's redis-server.
#
# redis-benchmark -c 50 -n 200000 -r 100000 for SET, GET and
# "SET key:__rand_int__ v EX 600", each with -P 1 and -P 16, against
# souk-broker's key store (--kv-fsync everysec) and redis-server
# (--appendonly yes --appendfsync everysec), alternating server by server
# for every line, ROUNDS times (default 3).  Prints req/s and p50/p99 (ms) of
# each, the median over the rounds, and the souk/redis ratio of req/s; then
# both servers' RSS after loading 1,000,000 keys (SET key:N value EX 3600).
#
# Needs redis-server, redis-benchmark and redis-cli (Debian: redis-tools,
# redis-server) and a built souk-broker (default build dir: ./build).
# ROUNDS=1 for a quick look.  Not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BROKER="$BUILD/broker/souk-broker"
FREEPORT="$BUILD/tests/tools/freeport"
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
REQUESTS=${REQUESTS:-200000}
KEYSPACE=${KEYSPACE:-100000}
LOAD_KEYS=${LOAD_KEYS:-1000000}
for p in "$BROKER" "$FREEPORT"; do [[ -x $p ]] || { echo "kv_bench: $p not built (ninja -C $BUILD)" >&2; exit 2; }; done
for p in redis-server redis-benchmark redis-cli; do
    command -v "$p" >/dev/null || { echo "kv_bench: $p not installed (apt-get install redis-server redis-tools)" >&2; exit 2; }
done

T=$(mktemp -d /tmp/souk-kv-bench.XXXXXX)
SOUK_PID="" REDIS_PID=""
cleanup() {
    for pid in $SOUK_PID $REDIS_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $SOUK_PID $REDIS_PID; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

wait_ping() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(timeout 2 redis-cli -p "$1" PING 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    echo "kv_bench: no PONG on port $1" >&2
    exit 1
}

start_souk() {
    rm -rf "$T/souk"
    local ports
    ports=$("$FREEPORT" 2)
    SOUK_PORT=$(sed -n 2p <<<"$ports")
    "$BROKER" --data-dir "$T/souk" --kafka-listen "127.0.0.1:$(sed -n 1p <<<"$ports")" \
        --kv-listen "127.0.0.1:$SOUK_PORT" --kv-fsync everysec --kv-maxmemory 4g --log-level warn \
        >/dev/null 2>"$T/souk.log" &
    SOUK_PID=$!
    wait_ping "$SOUK_PORT"
}

start_redis() {
    rm -rf "$T/redis"
    mkdir -p "$T/redis"
    REDIS_PORT=$("$FREEPORT" 1)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
        --dir "$T/redis" --logfile "$T/redis.log" &
    REDIS_PID=$!
    wait_ping "$REDIS_PORT"
}

stop() { # PID
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run PORT PIPELINE TEST...: prints "req/s p50 p99" from redis-benchmark 7's CSV.
run() {
    local port=$1 pipe=$2
    shift 2
    local csv
    csv=$(timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$REQUESTS" -r "$KEYSPACE" \
        -P "$pipe" --csv "$@" 2>/dev/null | tail -n 1)
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    awk -F'"' '{printf "%s %s %s\n", $4, $10, $14}' <<<"$csv"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RES
TESTS=("SET:-t set" "GET:-t get" "SET EX:SET key:__rand_int__ v EX 600")
echo "kv_bench: $ROUNDS rounds, -c $CLIENTS -n $REQUESTS -r $KEYSPACE, $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3)"
start_souk
start_redis
for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${TESTS[@]}"; do
        name=${t%%:*}
        args=${t#*:}
        for pipe in 1 16; do
            for server in souk redis; do
                port=$SOUK_PORT
                [[ $server == redis ]] && port=$REDIS_PORT
                if [[ $name == "SET EX" ]]; then
                    r=$(run "$port" "$pipe" SET 'key:__rand_int__' v EX 600)
                else
                    # shellcheck disable=SC2086
                    r=$(run "$port" "$pipe" $args)
                fi
                RES["$name|$pipe|$server|$round"]=$r
                printf '  round %d %-7s -P %-2d %-5s %10s req/s  p50 %6s ms  p99 %6s ms\n' "$round" "$name" "$pipe" \
                    "$server" $r
            done
        done
    done
done

echo
echo "Median of $ROUNDS rounds (req/s; p50/p99 in ms):"
printf '%-8s %-4s | %12s %7s %7s | %12s %7s %7s | %6s\n' test -P "souk req/s" p50 p99 "redis req/s" p50 p99 ratio
for t in "${TESTS[@]}"; do
    name=${t%%:*}
    for pipe in 1 16; do
        line=()
        for server in souk redis; do
            for col in 1 2 3; do
                v=$(for ((round = 1; round <= ROUNDS; round++)); do
                    cut -d' ' -f"$col" <<<"${RES["$name|$pipe|$server|$round"]}"
                done | median)
                line+=("$v")
            done
        done
        ratio=$(awk -v a="${line[0]}" -v b="${line[3]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
        printf '%-8s %-4s | %12s %7s %7s | %12s %7s %7s | %6s\n' "$name" "$pipe" "${line[@]}" "$ratio"
    done
done

echo
echo "RSS after loading $LOAD_KEYS keys (SET key:N value-N EX 3600, pipelined):"
awk -v n="$LOAD_KEYS" 'BEGIN {for (i = 0; i < n; i++) printf "SET key:%d value-%d EX 3600\n", i, i}' >"$T/load.txt"
stop "$SOUK_PID"
stop "$REDIS_PID"
SOUK_PID="" REDIS_PID=""
start_souk
start_redis
for server in souk redis; do
    port=$SOUK_PORT pid=$SOUK_PID
    [[ $server == redis ]] && port=$REDIS_PORT pid=$REDIS_PID
    before=$(rss_kb "$pid")
    timeout 600 redis-cli -p "$port" --pipe <"$T/load.txt" >/dev/null
    keys=$(redis-cli -p "$port" DBSIZE)
    after=$(rss_kb "$pid")
    printf '  %-5s %8d keys: RSS %7.1f MiB (%.1f MiB at start; %.0f bytes per key)\n' "$server" "$keys" \
        "$(awk -v k="$after" 'BEGIN {print k / 1024}')" "$(awk -v k="$before" 'BEGIN {print k / 1024}')" \
        "$(awk -v a="$after" -v b="$before" -v n="$keys" 'BEGIN {print (a - b) * 1024 / n}')"
    eval "RSS_$server=$after"
done
awk -v s="$RSS_souk" -v r="$RSS_redis" 'BEGIN {printf "  RSS souk / redis: %.2f\n", s / r}'
