#!/usr/bin/env bash
# bench/run.sh - souk-broker throughput and memory against Redis XADD.
#
#   bench/run.sh [-n MESSAGES] [-s VALUE_BYTES] [-r ROUNDS]
#   env BUILD_DIR  release build directory (default ./build-bench)
#
# A benchmark, not a test: it prints figures and checks them against the
# targets, but only fails when something did not run.
#
#  1. Builds a release build (meson setup BUILD_DIR -Dbuildtype=release).
#  2. Starts souk-broker on a free 127.0.0.1 port with a temporary data dir,
#     samples its idle RSS, then, ROUNDS times (default 3), runs `kbench
#     produce` (librdkafka, acks=all, no compression) of MESSAGES (default
#     1000000) of VALUE_BYTES (default 128) to a new topic and `kbench
#     consume` (assign() from the beginning) of the same messages; the table
#     shows the median round (runs of well under a second are noisy on a
#     shared 2-core machine).  Then it reads the broker's peak RSS (VmHWM)
#     and reports its CPU time per 1,000,000 messages in each phase.
#  3. Starts Debian's redis-server on another free port (no persistence) and
#     runs redis-benchmark -P 16 -c 50 -n MESSAGES with XADD of the same value.
#  4. Prints a table and the targets: produce >= 2x XADD, consume >= produce,
#     broker RSS < 32 MiB idle and < 128 MiB under load.
#
# Every process it starts is stopped by PID; temporary files are removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=1000000
vlen=128
rounds=3
while getopts "n:s:r:h" opt; do
    case $opt in
    n) n=$OPTARG ;;
    s) vlen=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
build=${BUILD_DIR:-$root/build-bench}

say() { echo "bench: $*" >&2; }

# ---- build ---------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" -Dbuildtype=release >/dev/null
fi
ninja -C "$build" broker/souk-broker tests/tools/freeport >/dev/null
kbench=$build/bench/kbench
if ninja -C "$build" -t targets all 2>/dev/null | grep -q '^bench/kbench:'; then
    ninja -C "$build" bench/kbench >/dev/null
else
    # The root meson.build does not include bench/ yet: build it by hand.
    mkdir -p "$build/bench"
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$kbench" "$here/kbench.c" \
        $(pkg-config --cflags --libs rdkafka)
fi
broker_bin=$build/broker/souk-broker
freeport=$build/tests/tools/freeport

# ---- processes -------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/souk-bench.XXXXXX")
broker_pid= redis_pid=
stop() { # PID: TERM, wait up to 5 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$broker_pid"
    stop "$redis_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for CMD...: retries for up to 10 s.
wait_for() {
    local i
    for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

ports=($("$freeport" 3))
kport=${ports[0]} kvport=${ports[1]} rport=${ports[2]}
broker_args=(--data-dir "$tmp/data" --kafka-listen "127.0.0.1:$kport" --log-level warn)
# Newer brokers also serve a key store (default 127.0.0.1:6379): keep it on a
# free port so the figures are for the default configuration.
if "$broker_bin" --help 2>&1 | grep -q -- '--kv-listen'; then broker_args+=(--kv-listen "127.0.0.1:$kvport"); fi
"$broker_bin" "${broker_args[@]}" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
if ! wait_for grep -q 'Kafka protocol on' "$tmp/broker.out"; then
    say "souk-broker did not start:"; cat "$tmp/broker.err" >&2; exit 1
fi
sleep 1
rss_idle=$(kib "$broker_pid" VmRSS)
say "souk-broker pid $broker_pid on 127.0.0.1:$kport, idle RSS ${rss_idle} KiB"

# Each round produces n messages to a new topic and consumes them back.
# "produce: N msgs B B in S s: X msgs/s Y MB/s"
field() { awk -v k="$2" '{for (i = 1; i < NF; i++) if ($(i + 1) == k) print $i}' <<<"$1"; }
# The broker's own CPU time (user + system, in clock ticks) per phase: the
# clients run on the same CPUs, so this says what the broker costs apart from
# them.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
prods=() conss=() pars=()
p_ticks=0 c_ticks=0
for r in $(seq "$rounds"); do
    topic=kbench-$r
    say "round $r/$rounds: kbench produce $n x ${vlen} B to $topic, then kbench consume"
    t0=$(ticks "$broker_pid")
    prod=$("$kbench" produce "127.0.0.1:$kport" "$topic" "$n" "$vlen")
    t1=$(ticks "$broker_pid")
    echo "  $prod" >&2
    cons=$("$kbench" consume "127.0.0.1:$kport" "$topic" "$n")
    t2=$(ticks "$broker_pid")
    echo "  $cons" >&2
    # The same messages read by two consumers at once (partitions 0,2 and
    # 1,3): one librdkafka consumer thread is the limit of a single reader,
    # so this shows what the broker serves to readers that scale out.
    c0=$(date +%s%N)
    "$kbench" consume "127.0.0.1:$kport" "$topic" 0 0,2 >"$tmp/c1.out" &
    k1=$!
    "$kbench" consume "127.0.0.1:$kport" "$topic" 0 1,3 >"$tmp/c2.out" &
    k2=$!
    wait $k1 && wait $k2 || { say "a parallel consumer failed"; exit 1; }
    c_ns=$(( $(date +%s%N) - c0 ))
    sed 's/^/  [parallel] /' "$tmp/c1.out" "$tmp/c2.out" >&2
    par=$(awk -v n="$n" -v ns="$c_ns" -v b="$vlen" 'BEGIN {printf "%.0f %.2f", n / (ns / 1e9), n * b / (ns / 1e9) / 1e6}')
    echo "  [parallel] 2 consumers together: $n msgs in $(awk -v ns="$c_ns" 'BEGIN {printf "%.3f", ns / 1e9}') s: ${par% *} msgs/s" >&2
    pars+=("$par")
    p_ticks=$((p_ticks + t1 - t0)) c_ticks=$((c_ticks + t2 - t1))
    prods+=("$(field "$prod" msgs/s) $(field "$prod" MB/s)")
    conss+=("$(field "$cons" msgs/s) $(field "$cons" MB/s)")
done
hz=$(getconf CLK_TCK)
# broker CPU ms per 1,000,000 messages
p_cpu=$(awk -v t="$p_ticks" -v hz="$hz" -v n="$n" -v r="$rounds" 'BEGIN {printf "%.0f", t * 1000 / hz / (n * r / 1e6)}')
c_cpu=$(awk -v t="$c_ticks" -v hz="$hz" -v n="$n" -v r="$rounds" 'BEGIN {printf "%.0f", t * 1000 / hz / (n * r / 1e6)}')
rss_after=$(kib "$broker_pid" VmRSS)
rss_peak=$(kib "$broker_pid" VmHWM)
stop "$broker_pid"
broker_pid=

# median of "msgs/s MB/s" lines, by msgs/s
median() { printf '%s\n' "$@" | sort -n | awk '{l[NR] = $0} END {print l[int((NR + 1) / 2)]}'; }
read -r p_mps p_mbs <<<"$(median "${prods[@]}")"
read -r c_mps c_mbs <<<"$(median "${conss[@]}")"
read -r c2_mps c2_mbs <<<"$(median "${pars[@]}")"

# ---- Redis XADD ------------------------------------------------------------
value=$(head -c "$vlen" /dev/zero | tr '\0' 'v')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    --daemonize no --loglevel warning >"$tmp/redis.log" 2>&1 &
redis_pid=$!
if ! wait_for redis-cli -h 127.0.0.1 -p "$rport" ping; then
    say "redis-server did not start:"; cat "$tmp/redis.log" >&2; exit 1
fi
say "redis-benchmark -h 127.0.0.1 -p $rport -P 16 -c 50 -n $n -q XADD souk-bench '*' v <${vlen} B>"
rb=$(redis-benchmark -h 127.0.0.1 -p "$rport" -P 16 -c 50 -n "$n" -q XADD souk-bench '*' v "$value" | tr '\r' '\n' |
     grep 'requests per second' | tail -1)
echo "${rb:0:60}...${rb: -70}" >&2
xadd=$(sed -E 's/.*: ([0-9.]+) requests per second.*/\1/' <<<"$rb")
stop "$redis_pid"
redis_pid=

# ---- report ----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# check A OP B: "met" or "NOT met" (OP is >= or <)
check() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {exit !(op == ">=" ? a + 0 >= b + 0 : a + 0 < b + 0)}' && echo met || echo "NOT met"; }
r_px=$(ratio "$p_mps" "$xadd")
r_cp=$(ratio "$c_mps" "$p_mps")
r_c2p=$(ratio "$c2_mps" "$p_mps")
idle_mib=$(awk -v k="$rss_idle" 'BEGIN {printf "%.1f", k / 1024}')
peak_mib=$(awk -v k="$rss_peak" 'BEGIN {printf "%.1f", k / 1024}')
after_mib=$(awk -v k="$rss_after" 'BEGIN {printf "%.1f", k / 1024}')

printf '\nsouk-broker benchmark: %s messages of %s bytes, median of %s rounds, %s cores, %s\n' "$n" "$vlen" \
    "$rounds" "$(nproc)" "$(date -u +%F)"
printf '%-34s %14s %10s   %s\n' "figure" "value" "unit" "target"
printf '%-34s %14.0f %10s\n' "souk produce (acks=all)" "$p_mps" "msgs/s"
printf '%-34s %14.2f %10s\n' "souk produce" "$p_mbs" "MB/s"
printf '%-34s %14.0f %10s\n' "souk consume" "$c_mps" "msgs/s"
printf '%-34s %14.2f %10s\n' "souk consume" "$c_mbs" "MB/s"
printf '%-34s %14.0f %10s\n' "souk consume, 2 consumers" "$c2_mps" "msgs/s"
printf '%-34s %14.2f %10s\n' "souk consume, 2 consumers" "$c2_mbs" "MB/s"
printf '%-34s %14.0f %10s\n' "redis XADD (-P 16 -c 50)" "$xadd" "ops/s"
printf '%-34s %14s %10s   >= 2     %s\n' "ratio produce / XADD" "$r_px" "x" "$(check "$r_px" ">=" 2)"
printf '%-34s %14s %10s   >= 1     %s\n' "ratio consume / produce" "$r_cp" "x" "$(check "$r_cp" ">=" 1)"
printf '%-34s %14s %10s   >= 1     %s\n' "ratio consume (2 readers) / produce" "$r_c2p" "x" "$(check "$r_c2p" ">=" 1)"
printf '%-34s %14s %10s   < 32     %s\n' "broker RSS idle" "$idle_mib" "MiB" "$(check "$idle_mib" "<" 32)"
printf '%-34s %14s %10s   < 128    %s\n' "broker RSS peak (VmHWM)" "$peak_mib" "MiB" "$(check "$peak_mib" "<" 128)"
printf '%-34s %14s %10s\n' "broker RSS after the load" "$after_mib" "MiB"
printf '%-34s %14s %10s\n' "broker CPU per 1M produced" "$p_cpu" "ms"
printf '%-34s %14s %10s\n' "broker CPU per 1M consumed" "$c_cpu" "ms"
