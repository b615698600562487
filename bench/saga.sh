#!/usr/bin/env bash
# bench/saga.sh - the booking saga under load: throughput, latency, memory.
#
#   bench/saga.sh [-n BOOKINGS] [-c CONCURRENCY] [-r RATE] [-a] [-g] [-k] [-p PROCESS]
#   env BUILD_DIR   release build directory (default ./build-rel)
#   env SVC_ARGS    extra flags for every service (e.g. "--log-level warn")
#   env LOAD_ARGS   extra flags for both souk load runs (e.g. "--poll-ms 25")
#   env BOOKING_ARGS, PAYMENT_ARGS, CATALOG_ARGS, NOTIFICATION_ARGS, ANALYTICS_ARGS,
#       BROKER_ARGS extra flags for one process (for tuning experiments)
#
# A benchmark, not a test: it prints figures and the targets, and fails only
# when something did not run or `souk load` found an invariant broken.
#
#  1. Builds release binaries (meson setup BUILD_DIR --buildtype=release).
#  2. Starts souk-broker and every service - auth, user, catalog, booking,
#     payment (--auto-pay), notification (no SMTP: .eml files in its data
#     dir) and the gateway - on free 127.0.0.1 ports in a temporary dir, each
#     with its defaults and --log-level warn.
#  3. Runs a warm-up `souk load --bookings 300` (not reported), then
#     `souk load --bookings BOOKINGS (5000) --concurrency CONCURRENCY
#     (64) --pay auto` (closed loop; -g: through the gateway) and then
#     `souk load --bookings BOOKINGS --rate RATE (500)` (open loop), both
#     with their invariant checks, including one email per booking.
#  4. Reads each process's CPU time (/proc/PID/stat utime + stime) around
#     each run and its VmRSS / VmHWM (/proc/PID/status) at the end, and
#     prints confirmed bookings/s, p50/p99 POST->CONFIRMED, CPU per process
#     and the summed RSS, against the targets: >= 1,000 bookings/s; p99 <=
#     100 ms at 500/s offered; total RSS <= 100 MiB.
#  -a also runs souk-analytics (which indexes every event and log line), as
#     souk up does.
#  -k keeps the temporary dir (logs, databases, .eml files).
#  -p PROCESS (booking, broker, ...) records that process with `perf record
#     -g` during the closed-loop run and prints the top of `perf report`.
#
# Every process it starts is stopped by PID; the temporary dir is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=5000 conc=64 rate=500 via_gw=0 keep=0 profile= with_an=0
while getopts "n:c:r:agkp:h" opt; do
    case $opt in
    n) n=$OPTARG ;;
    c) conc=$OPTARG ;;
    r) rate=$OPTARG ;;
    a) with_an=1 ;;
    g) via_gw=1 ;;
    k) keep=1 ;;
    p) profile=$OPTARG ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
    esac
done
build=${BUILD_DIR:-$root/build-rel}
# shellcheck source=lib.sh
source "$here/lib.sh"

# ---- build ---------------------------------------------------------------
bench_build
souk=$build/tools/souk
services=(auth user catalog booking payment notification gateway)
[ "$with_an" = 1 ] && services=(auth user catalog booking payment notification analytics gateway)

# ---- processes -------------------------------------------------------------
service_args() { # each at --log-level warn; SVC_ARGS and <NAME>_ARGS added
    local extra= u
    case $1 in
    payment) extra=${PAYMENT_ARGS:-} ;;
    booking) extra=${BOOKING_ARGS:-} ;;
    catalog) extra=${CATALOG_ARGS:-} ;;
    notification) extra=${NOTIFICATION_ARGS:-} ;;
    analytics) extra=${ANALYTICS_ARGS:-} ;;
    gateway)
        for u in auth user catalog booking payment notification; do
            args+=("--$u-url" "127.0.0.1:${port[$u]}")
        done ;;
    esac
    # shellcheck disable=SC2206
    args+=(${SVC_ARGS:-} $extra)
}
bench_stop_extra() { stop "${pid[sampler]:-}"; }
bench_up souk-saga warn

all=(broker "${services[@]}")
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

load_args=(--auth-url "http://127.0.0.1:${port[auth]}" --catalog-url "http://127.0.0.1:${port[catalog]}"
           --booking-url "http://127.0.0.1:${port[booking]}" --payment-url "http://127.0.0.1:${port[payment]}"
           --notification-url "http://127.0.0.1:${port[notification]}"
           --admin-email "$admin_email" --admin-password "$admin_pw" --pay auto --check-emails yes
           --timeout-s 300 --settle-s 60 --brokers "127.0.0.1:$kport")
# shellcheck disable=SC2206
[ -n "${LOAD_ARGS:-}" ] && load_args+=(${LOAD_ARGS})
[ "$via_gw" = 1 ] && load_args+=(--gateway "http://127.0.0.1:${port[gateway]}")

cpu_pids=$(for s in "${all[@]}"; do printf '%s=%s,' "$s" "${pid[$s]}"; done)
cpu_pids=${cpu_pids%,}
# run NAME ARGS...: souk load, with the CPU time of every process while the
# bookings run (souk load --cpu-pids reads /proc/PID/stat around that phase)
run() {
    local name=$1 rc=0
    shift
    say "souk load $*"
    local perf_pid=
    if [ -n "$profile" ] && [ "$name" = closed ]; then
        perf record ${PERF_ARGS:--F 999 -g} -p "${pid[$profile]}" -o "$tmp/perf.data" >/dev/null 2>"$tmp/perf.err" &
        perf_pid=$!
    fi
    "$souk" load "${load_args[@]}" "$@" --cpu-pids "$cpu_pids" --json "$tmp/$name.json" \
        >"$tmp/$name.txt" 2>"$tmp/$name.err" || rc=$?
    sed 's/^/  | /' "$tmp/$name.txt" >&2
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"; wait "$perf_pid" || true
        perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -40 >"$tmp/perf.txt" || true
        say "perf: the top of $profile's profile during the closed run"; cat "$tmp/perf.txt" >&2
    fi
    [ "$rc" = 0 ] || { say "souk load $name exited $rc"; tail -5 "$tmp/$name.err" >&2; exit 1; }
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); 
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$@"; }

# warm-up (not reported): the consumer groups form, the first catalogs
# reach every projection, SQLite and the page cache warm up
# the summed VmRSS of every process, sampled every 0.2 s through the runs
# (setup included: souk-auth's argon2id hashes of the load's users)
rss_pids=$(for s in "${all[@]}"; do printf '%s ' "${pid[$s]}"; done)
(
    max=0
    while :; do
        sum=0
        for p in $rss_pids; do
            r=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
            sum=$((sum + ${r:-0}))
        done
        [ "$sum" -gt "$max" ] && { max=$sum; echo "$max" >"$tmp/rss-max"; }
        sleep 0.2
    done
) &
pid[sampler]=$!
run warmup --bookings 300 --concurrency 16
run closed --bookings "$n" --concurrency "$conc"
run open --bookings "$n" --rate "$rate"
stop "${pid[sampler]}"
pid[sampler]=

# ---- memory ----------------------------------------------------------------
# VmRSS counts the pages of shared libraries (libcrypto, librdkafka, libc,
# SQLite: ~8 MiB per service) in every process that maps them; Pss (from
# smaps_rollup) divides each shared page among its processes, so the sum of
# Pss is what the marketplace takes from the machine.
rss_sum=0 hwm_sum=0 pss_sum=0 anon_sum=0 mem_lines=""
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
for s in "${all[@]}"; do
    r=$(kib "${pid[$s]}" VmRSS) h=$(kib "${pid[$s]}" VmHWM) a=$(kib "${pid[$s]}" RssAnon)
    ps=$(awk '$1 == "Pss:" {print $2}' "/proc/${pid[$s]}/smaps_rollup")
    rss_sum=$((rss_sum + r)) hwm_sum=$((hwm_sum + h)) pss_sum=$((pss_sum + ps)) anon_sum=$((anon_sum + a))
    mem_lines+=$(printf '  %-14s VmRSS %6s MiB (anon %5s, files %5s)   VmHWM %6s MiB   Pss %6s MiB' "$s" \
        "$(mib "$r")" "$(mib "$a")" "$(mib $((r - a)))" "$(mib "$h")" "$(mib "$ps")")$'\n'
done
emls=$(find "$tmp/notification" -name '*.eml' 2>/dev/null | wc -l)

# ---- report ----------------------------------------------------------------
check() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {exit !(op == ">=" ? a + 0 >= b + 0 : a + 0 <= b + 0)}' && echo met || echo "NOT met"; }
cps=$(jget "$tmp/closed.json" confirmed_per_s)
p50=$(jget "$tmp/closed.json" confirm_ms.p50) p99=$(jget "$tmp/closed.json" confirm_ms.p99)
o_p50=$(jget "$tmp/open.json" confirm_ms.p50) o_p99=$(jget "$tmp/open.json" confirm_ms.p99)
o_cps=$(jget "$tmp/open.json" confirmed_per_s) o_off=$(jget "$tmp/open.json" offered_per_s)
rss_mib=$(awk -v k="$rss_sum" 'BEGIN {printf "%.1f", k / 1024}')
hwm_mib=$(awk -v k="$hwm_sum" 'BEGIN {printf "%.1f", k / 1024}')

printf '\nsouk saga benchmark: %s bookings, %s cores, %s, %s\n' "$n" "$(nproc)" "$(date -u +%F)" \
    "$([ "$via_gw" = 1 ] && echo 'through the gateway' || echo 'each service directly')"
printf '%-46s %10s %8s   %s\n' "figure" "value" "unit" "target"
printf '%-46s %10.0f %8s   >= 1000  %s\n' "confirmed bookings/s (closed loop, c=$conc)" "$cps" "/s" "$(check "$cps" ">=" 1000)"
printf '%-46s %10.1f %8s\n' "  p50 POST->CONFIRMED" "$p50" "ms"
printf '%-46s %10.1f %8s\n' "  p99 POST->CONFIRMED" "$p99" "ms"
printf '%-46s %10.0f %8s\n' "offered rate (open loop)" "$o_off" "/s"
printf '%-46s %10.0f %8s\n' "  confirmed bookings/s" "$o_cps" "/s"
printf '%-46s %10.1f %8s\n' "  p50 POST->CONFIRMED" "$o_p50" "ms"
printf '%-46s %10.1f %8s   <= 100   %s\n' "  p99 POST->CONFIRMED at ${rate}/s" "$o_p99" "ms" "$(check "$o_p99" "<=" 100)"
printf '%-46s %10s %8s   <= 100   %s\n' "total RSS now (sum of VmRSS, ${#all[@]} processes)" "$rss_mib" "MiB" "$(check "$rss_mib" "<=" 100)"
printf '%-46s %10s %8s\n' "highest sum of VmRSS during the runs" "$(mib "$(cat "$tmp/rss-max" 2>/dev/null || echo 0)")" "MiB"
printf '%-46s %10s %8s\n' "total peak RSS (sum of VmHWM)" "$hwm_mib" "MiB"
printf '%-46s %10s %8s\n' "  of RSS now: anonymous (heap, stacks)" "$(mib "$anon_sum")" "MiB"
printf '%-46s %10s %8s\n' "total Pss (shared library pages split)" "$(mib "$pss_sum")" "MiB"
printf '%-46s %10s\n' ".eml files written by souk-notification" "$emls"
printf '%s' "$mem_lines"
for name in closed open; do
    printf 'CPU while the %s run'"'"'s bookings ran:' "$name"
    grep -A2 '^CPU while' "$tmp/$name.txt" | tail -n +2 | tr -s ' ' | tr '\n' ' '
    echo
done
