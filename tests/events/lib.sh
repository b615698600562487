# lib.sh - helpers for the libevents integration tests (sourced, not run).
#
# Builds on tests/integration/lib.sh (broker start/stop by PID on free
# ports, temporary directory, sanitizer checks, bounded waits); adds:
#   EV_TOOL, JQ   from tests/events/meson.build
#   ev ARGS...    ev_tool bounded by CLIENT_TIMEOUT, stderr kept in $T/ev_tool.stderr
#   topic_dump TOPIC   every record of TOPIC as "partition<TAB>offset<TAB>key<TAB>value"
#   sanitizer checks of ev_tool's stderr as well

: "${EV_TOOL:?EV_TOOL is not set (run through meson test)}"
: "${JQ:=jq}"

# shellcheck source=../integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

EV_ERR="$T/ev_tool.stderr"
: >"$EV_ERR"

ev_check_sanitizers() {
    if grep -aqE 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$EV_ERR"; then
        grep -aE -A40 'AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer' "$EV_ERR" | head -n 80 >&2
        fail "sanitizer report in ev_tool's stderr"
    fi
}

# ev ARGS...: runs ev_tool; fails the test on a non-zero exit.
ev() {
    local rc=0
    timeout "$CLIENT_TIMEOUT" "$EV_TOOL" "$@" 2>>"$EV_ERR" || rc=$?
    ev_check_sanitizers
    if [[ $rc -ne 0 ]]; then
        tail -n 30 "$EV_ERR" | cut -c1-400 >&2
        fail "ev_tool $1 exited with status $rc"
    fi
}

# ev_status ARGS...: runs ev_tool (stdout to $T/ev_status.out) and prints
# its exit status (never fails).
ev_status() {
    local rc=0
    timeout "$CLIENT_TIMEOUT" "$EV_TOOL" "$@" >"$T/ev_status.out" 2>>"$EV_ERR" || rc=$?
    ev_check_sanitizers
    echo "$rc"
}

# topic_dump TOPIC: all records, "partition TAB offset TAB key TAB value".
topic_dump() {
    kc -C -t "$1" -o beginning -e -q -f '%p\t%o\t%k\t%s\n' 2>>"$T/kcat.err"
}

# topic_count TOPIC: the number of records of TOPIC.
topic_count() {
    topic_dump "$1" | wc -l
}
