#!/usr/bin/env bash
# test_garbage.sh - malformed input closes only the connection it came on:
# oversized, negative and too-small size prefixes, unknown API keys and
# versions, malformed bodies and half-sent frames.  The oversized prefix is
# logged; a connection opened before the garbage still gets answers, and
# kcat still lists, produces and consumes afterwards.
. "$(dirname "$0")/lib.sh"

MAX=65536
start_broker "" --max-request-bytes "$MAX"

# expect_close NAME BYTES WHY: sends BYTES (printf format) on a new
# connection and expects the broker to close it within 5 s, logging
# "closing connection: WHY..." (WHY is a grep pattern).
expect_close() {
    local name=$1 fmt=$2 why=$3 rc=0 before
    before=$(grep -ac "closing connection: $why" "$BROKER_LOG" || true)
    port_open "$BROKER_PORT" || fail "$name: the broker no longer accepts connections"
    exec 5<>"/dev/tcp/127.0.0.1/$BROKER_PORT"
    # The broker may close while we write: a SIGPIPE ends only the subshell.
    (printf "$fmt" >&5; head -c 4096 /dev/zero | tr '\0' 'G' >&5) 2>/dev/null || true
    timeout 5 cat <&5 >"$T/reply-$name" 2>/dev/null || rc=$?
    exec 5<&- 5>&-
    [[ $rc -ne 124 ]] || fail "$name: the broker kept the connection open for 5 s"
    [[ ! -s $T/reply-$name ]] || fail "$name: the broker answered garbage with $(wc -c <"$T/reply-$name") bytes"
    broker_alive
    [[ $(grep -ac "closing connection: $why" "$BROKER_LOG" || true) -gt $before ]] ||
        fail "$name: the broker did not log \"closing connection: $why\""
    log "$name: connection closed ($why)"
}

# api_versions FD CORRELATION_ID VERSION WANT_ERROR [REST] (two hex digits
# each, the error four; REST is a printf format for what follows client_id:
# the header's tag buffer from v3 on, then the body): sends an ApiVersions
# request on FD, reads the whole response frame and checks its correlation
# id and error code.
api_versions() {
    local fd=$1 corr=$2 ver=$3 want_err=$4 rest=${5:-} size body n
    n=$(printf "$rest" | wc -c)
    printf "\x00\x00\x00\x$(printf %02x $((14 + n)))\x00\x12\x00\x$ver\x00\x00\x00\x$corr\x00\x04test$rest" >&"$fd"
    size=$(timeout 5 head -c 4 <&"$fd" | od -An -tu1 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    [[ -n $size && $size -ge 6 && $size -lt 65536 ]] || fail "ApiVersions v$ver on fd $fd: bad response size '$size'"
    body=$(timeout 5 head -c "$size" <&"$fd" | od -An -tx1 | tr -d ' \n')
    [[ ${#body} -eq $((size * 2)) ]] || fail "ApiVersions v$ver on fd $fd: short response"
    [[ ${body:0:12} = "000000${corr}${want_err}" ]] ||
        fail "ApiVersions v$ver on fd $fd: response starts with '${body:0:12}', expected correlation id $corr and error $want_err"
}

# A connection opened before the garbage, used after it.
exec 4<>"/dev/tcp/127.0.0.1/$BROKER_PORT"
api_versions 4 01 00 0000

expect_close huge-size '\x7f\xff\xff\xff' "request size 2147483647 outside 10..$MAX bytes"
expect_close over-max '\x00\x01\x00\x01' "request size 65537 outside 10..$MAX bytes" # --max-request-bytes + 1
expect_close negative-size '\xff\xff\xff\xff' 'request size -1 outside'
expect_close tiny-size '\x00\x00\x00\x05\x00\x12\x00\x00\x00' 'request size 5 outside'
expect_close unknown-api '\x00\x00\x00\x0e\x42\x42\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00' \
    'unsupported API key 16962'
expect_close produce-v99 '\x00\x00\x00\x0e\x00\x00\x00\x63\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00' \
    'unsupported version 99 of Produce'
expect_close bad-client-id '\x00\x00\x00\x0a\x00\x03\x00\x04\x00\x00\x00\x01\x7f\xff' 'malformed request header'
expect_close metadata-huge-array '\x00\x00\x00\x0e\x00\x03\x00\x04\x00\x00\x00\x01\x00\x00\x7f\xff\xff\xff' \
    'malformed Metadata v4'
expect_close produce-truncated \
    '\x00\x00\x00\x16\x00\x00\x00\x07\x00\x00\x00\x01\x00\x00\xff\xff\xff\xff\x00\x00\x75\x30\x00\x00\x00\x05' \
    'malformed Produce v7'
# Random bytes behind a size prefix that is too large.
rand=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/../\\x&/g')
expect_close random-bytes "\\x40$rand" 'request size [0-9]* outside'

# Half a frame, then hang up; and many connections that come and go.
exec 5<>"/dev/tcp/127.0.0.1/$BROKER_PORT"
printf '\x00\x00\x00\x64\x00\x03\x00\x04' >&5
exec 5<&- 5>&-
for ((i = 0; i < 50; i++)); do
    exec 5<>"/dev/tcp/127.0.0.1/$BROKER_PORT"
    exec 5<&- 5>&-
done
broker_alive

# The connection opened first still works, a fresh one too, and an
# unsupported ApiVersions version gets UNSUPPORTED_VERSION (35), not a close.
api_versions 4 02 00 0000
exec 4<&- 4>&-
exec 6<>"/dev/tcp/127.0.0.1/$BROKER_PORT"
api_versions 6 03 63 0023 '\x00'                     # v99: UNSUPPORTED_VERSION
api_versions 6 04 03 002a '\x00'                     # v3 without its body: INVALID_REQUEST
api_versions 6 05 03 0000 '\x00\x05souk\x02\x31\x00'  # v3 as librdkafka sends it
exec 6<&- 6>&-


# Real clients are still served.
kc -L >"$T/meta.txt" 2>&1 || fail "kcat -L after the garbage failed: $(cat "$T/meta.txt")"
grep -q "broker 1 at $BROKER_ADDR" "$T/meta.txt" || fail "kcat -L after the garbage: $(cat "$T/meta.txt")"
seq 1 100 | kc -P -t after-garbage -X acks=all 2>"$T/p.err" || fail "kcat -P after the garbage failed: $(cat "$T/p.err")"
n=$(kc -C -t after-garbage -o beginning -e -q | wc -l)
[[ $n -eq 100 ]] || fail "kcat -C after the garbage read $n messages, expected 100"
stop_broker
