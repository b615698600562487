#!/usr/bin/env bash
# bench/analytics.sh - souk-analytics: index rate under load, search latency
# over a million events.
#
#   bench/analytics.sh [-n BOOKINGS] [-c CONCURRENCY] [-e EVENTS] [-q QUERIES] [-k]
#   env BUILD_DIR  release build directory (default ./build-rel)
#
# A benchmark, not a test: it prints figures and the targets, and fails only
# when something did not run.
#
#  1. Builds release binaries (meson setup BUILD_DIR --buildtype=release).
#  2. Starts souk-broker, auth, user, catalog, booking, payment (--auto-pay),
#     notification and analytics on free 127.0.0.1 ports in a temporary dir,
#     the services at --log-level info (every request's log line is shipped
#     to `logs` and indexed too).
#  3. Index rate under load: runs `souk load --bookings BOOKINGS (3000)
#     --concurrency CONCURRENCY (64) --pay auto` while sampling analytics'
#     /metrics (analytics_records_total, consumer_lag) every 0.25 s; reports
#     records indexed per second during the load, the largest lag seen, and
#     how long after the load ended the lag was back to 0 (target <= 5 s).
#  4. Search over a million events: writes EVENTS (1000000) generated
#     envelopes (user.registered, booking.created, payment.succeeded with
#     unique emails and ids) straight into the broker with kcat, waits until
#     analytics has indexed them (bulk index rate), then runs QUERIES (2000)
#     searches over HTTP on one keep-alive connection - a full-text search
#     for a random email, for a random booking id, a type filter, a
#     correlationId filter, a type + full-text search - and reports p50 / p95
#     / p99 per kind and overall (target p95 <= 50 ms).
#  -k keeps the temporary dir.
#
# Every process it starts is stopped by PID; the temporary dir is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=3000 conc=64 events=1000000 queries=2000 keep=0
while getopts "n:c:e:q:kh" opt; do
    case $opt in
    n) n=$OPTARG ;;
    c) conc=$OPTARG ;;
    e) events=$OPTARG ;;
    q) queries=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
    esac
done
build=${BUILD_DIR:-$root/build-rel}
# shellcheck source=lib.sh
source "$here/lib.sh"
command -v kcat >/dev/null || { say "kcat is needed (Debian package kcat)"; exit 1; }

bench_build
souk=$build/tools/souk
services=(auth user catalog booking payment notification analytics)
service_args() {
    # warn: its own request lines (this script polls /metrics) would feed
    # the very index whose lag is measured
    [ "$1" = analytics ] &&
        args+=(--web-dir "$root/web/dashboard" --auth-url "127.0.0.1:${port[auth]}" --log-level warn)
    return 0
}
bench_stop_extra() { stop "${load_pid:-}"; }
bench_up souk-analytics-bench info
an="http://127.0.0.1:${port[analytics]}"

metric() { # NAME: the value of an unlabelled series, or the sum of a family
    curl -sf "$an/metrics" | awk -v m="$1" '$1 == m || index($1, m"{") == 1 {s += $2} END {printf "%d\n", s}'
}

# ---- 1. index rate while souk load runs ----------------------------------------
load_args=(--auth-url "http://127.0.0.1:${port[auth]}" --catalog-url "http://127.0.0.1:${port[catalog]}"
           --booking-url "http://127.0.0.1:${port[booking]}" --payment-url "http://127.0.0.1:${port[payment]}"
           --notification-url "http://127.0.0.1:${port[notification]}"
           --admin-email "$admin_email" --admin-password "$admin_pw" --pay auto
           --timeout-s 300 --settle-s 60 --bookings "$n" --concurrency "$conc")
say "souk load --bookings $n --concurrency $conc (services at --log-level info)"
r0=$(metric analytics_records_total)
t0=$(date +%s.%N)
"$souk" load "${load_args[@]}" >"$tmp/load.txt" 2>"$tmp/load.err" &
load_pid=$!
maxlag=0
while kill -0 "$load_pid" 2>/dev/null; do
    lag=$(metric consumer_lag)
    [ "$lag" -gt "$maxlag" ] && maxlag=$lag
    sleep 0.25
done
load_rc=0
wait "$load_pid" || load_rc=$?
load_pid=
t1=$(date +%s.%N)
r1=$(metric analytics_records_total)
sed 's/^/  | /' "$tmp/load.txt" >&2
[ "$load_rc" = 0 ] || say "souk load exited $load_rc (see $tmp/load.err)"
zero_at=
for i in $(seq 600); do
    lag=$(metric consumer_lag)
    [ "$lag" -gt "$maxlag" ] && maxlag=$lag
    if [ "$lag" = 0 ]; then zero_at=$(date +%s.%N); break; fi
    sleep 0.1
done
r2=$(metric analytics_records_total)
load_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
rate_load=$(awk -v a="$r0" -v b="$r1" -v s="$load_s" 'BEGIN {printf "%.0f", (b - a) / s}')
zero_s=$( [ -n "$zero_at" ] && awk -v a="$t1" -v b="$zero_at" 'BEGIN {printf "%.2f", b - a}' || echo never)

# ---- 2. a million events, then searches -----------------------------------------
say "writing $events generated events with kcat"
gen_t0=$(date +%s.%N)
python3 - "$events" <<'EOF' | kcat -P -b "127.0.0.1:$kport" -t bench.events -z lz4 -X queue.buffering.max.messages=1000000 -X linger.ms=50
# Times: the last n * 2 ms before now (inside --retention-days, which would
# otherwise prune them); ids: uuids from a seeded generator (the query
# driver below makes the same ones).
import json, sys, random, time
n = int(sys.argv[1]); rnd = random.Random(7); out = sys.stdout
now = int(time.time() * 1000)
def uuid():
    u = "%032x" % rnd.getrandbits(128)
    return "%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:])
for i in range(n):
    k = i % 3; uid = uuid()
    if k == 0:
        t, d = "user.registered", {"userId": uid, "email": "user-%d@bench.souk" % i, "role": "USER"}
    elif k == 1:
        t, d = "booking.created", {"bookingId": uid, "userId": uid, "catalogId": "c-%d" % (i % 100), "ticketId": None,
                                   "status": "PENDING", "expiresAt": "2030-01-01T00:00:00.000Z"}
    else:
        t, d = "payment.succeeded", {"bookingId": uid, "paymentId": "p-%d" % i, "userId": uid, "amount": 2500, "currency": "EUR"}
    ms = now - (n - i) * 2
    out.write(json.dumps({"id": "bench-%d" % i, "type": t, "version": 1,
                          "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000),
                          "source": "bench", "correlationId": "corr-%d" % i, "causationId": None, "data": d},
                         separators=(",", ":")) + "\n")
EOF
gen_t1=$(date +%s.%N)
base=$(metric analytics_stored_total)
say "waiting until analytics has indexed them"
idx_t0=$gen_t0
for i in $(seq 3600); do
    lag=$(metric consumer_lag)
    [ "$lag" = 0 ] && [ "$(metric analytics_records_total)" -ge $((r2 + events)) ] && break
    sleep 0.5
done
idx_t1=$(date +%s.%N)
idx_s=$(awk -v a="$idx_t0" -v b="$idx_t1" 'BEGIN {printf "%.1f", b - a}')
idx_rate=$(awk -v s="$idx_s" -v n="$events" 'BEGIN {printf "%.0f", n / s}')
dbsize=$(du -sm "$tmp/analytics" | cut -f1)

say "running $queries searches"
python3 - "$an" "${port[auth]}" "$admin_email" "$admin_pw" "$events" "$queries" >"$tmp/queries.txt" <<'EOF'
import http.client, json, random, sys, time, urllib.parse
an, auth_port, email, pw, n, q = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
a = http.client.HTTPConnection("127.0.0.1", auth_port, timeout=30)
a.request("POST", "/auth/login", json.dumps({"email": email, "password": pw}), {"Content-Type": "application/json"})
tok = json.loads(a.getresponse().read())["accessToken"]
host, port = an[7:].split(":")
c = http.client.HTTPConnection(host, int(port), timeout=60)
gen = random.Random(7)
uids = []
for i in range(n):
    u = "%032x" % gen.getrandbits(128)
    uids.append("%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:]))
rnd = random.Random(11)
def pick(k):
    while True:
        i = rnd.randrange(n)
        if i % 3 == k: return i
kinds = {
    "fts email": lambda: "q=" + urllib.parse.quote("user-%d@bench.souk" % pick(0)),
    "fts id": lambda: "q=" + uids[pick(1)],
    "type filter": lambda: "type=" + rnd.choice(["booking.created", "payment.succeeded", "user.registered"]) + "&page=%d" % rnd.randrange(5),
    "correlationId": lambda: "correlationId=corr-%d" % rnd.randrange(n),
    "type + fts": lambda: "type=payment.succeeded&q=" + uids[pick(2)],
}
lat = {k: [] for k in kinds}
found = 0
for j in range(q):
    k = list(kinds)[j % len(kinds)]
    path = "/analytics/events?size=20&" + kinds[k]()
    t = time.perf_counter()
    c.request("GET", path, headers={"Authorization": "Bearer " + tok})
    r = c.getresponse(); body = r.read()
    lat[k].append((time.perf_counter() - t) * 1000)
    assert r.status == 200, (r.status, body[:200])
    found += json.loads(body)["totalElements"] > 0
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1)]
allv = [x for v in lat.values() for x in v]
for k, v in list(lat.items()) + [("all", allv)]:
    print("%-14s n=%5d  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms" % (k, len(v), pct(v, 50), pct(v, 95), pct(v, 99)))
print("found %d of %d" % (found, q))
print("P95ALL %.2f" % pct(allv, 95))
EOF
p95=$(awk '$1 == "P95ALL" {print $2}' "$tmp/queries.txt")
total=$(curl -sf -H "Authorization: Bearer $(curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"email\":\"$admin_email\",\"password\":\"$admin_pw\"}" "http://127.0.0.1:${port[auth]}/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')" "$an/analytics/events?size=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["totalElements"])')

met() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {exit !(op == "<=" ? a + 0 <= b + 0 : a + 0 >= b + 0)}' && echo met || echo "NOT met"; }
printf '\nsouk-analytics benchmark: %s cores, %s\n' "$(nproc)" "$(date -u +%F)"
printf '%-52s %12s\n' "souk load: bookings, concurrency" "$n, $conc"
printf '%-52s %12s s\n' "  load duration" "$load_s"
printf '%-52s %12s /s\n' "  records indexed during the load" "$rate_load"
printf '%-52s %12s\n' "  largest consumer lag seen" "$maxlag"
printf '%-52s %12s s   <= 5 s  %s\n' "  lag back to 0 after the load ended" "$zero_s" "$( [ "$zero_s" = never ] && echo 'NOT met' || met "$zero_s" "<=" 5)"
printf '%-52s %12s\n' "generated events written with kcat" "$events"
printf '%-52s %12s s\n' "  written + indexed in" "$idx_s"
printf '%-52s %12s /s\n' "  bulk index rate" "$idx_rate"
printf '%-52s %12s\n' "events in the index" "$total"
printf '%-52s %12s MiB\n' "analytics data dir" "$dbsize"
sed 's/^/  /' "$tmp/queries.txt" | grep -v P95ALL
printf '%-52s %12s ms  <= 50 ms %s\n' "search p95 over all kinds" "$p95" "$(met "$p95" "<=" 50)"
: "$base" "$gen_t1"
