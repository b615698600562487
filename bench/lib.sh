# bench/lib.sh - what bench/saga.sh and bench/analytics.sh share (sourced,
# not run): the release build, and the marketplace on free 127.0.0.1 ports in
# a temporary directory, every process stopped by PID on exit.
#
# The caller sets root, build (the release build dir), keep (1: keep the
# temporary dir) and services=(...) (started in that order after the
# broker), and may define:
#   service_args NAME   appends NAME's own flags to the array `args`
#                       (it sees port[...] of the services started before)
#   bench_stop_extra    stops what the caller started itself (runs first)
# and set BROKER_ARGS.  It gets:
#   say MSG...          a line on stderr
#   bin NAME            the path of souk-NAME
#   stop PID            TERM, wait up to 15 s, then KILL
#   wait_for S CMD...   retries CMD every 0.1 s for S seconds
#   http_ok PORT PATH   a 2xx from 127.0.0.1:PORT
#   bench_build         meson setup (release) if needed, then ninja
#   bench_up PREFIX LEVEL
#                       makes tmp ($TMPDIR/PREFIX.XXXXXX), starts souk-broker
#                       and the services at --log-level LEVEL (payment with
#                       --auto-pay, the admin from admin_email/admin_pw),
#                       each waited for until /ready; fills pid[NAME],
#                       port[NAME], kport, kvport.

say() { echo "bench: $*" >&2; }
bin() { echo "$build/services/$1/souk-$1"; }

stop() {
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

wait_for() {
    local t=$1 i
    shift
    for i in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

http_ok() { curl -sf -o /dev/null "http://127.0.0.1:$1$2"; }

bench_build() {
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release >/dev/null
    fi
    ninja -C "$build" >/dev/null
}

declare -A pid port
tmp=
admin_email=admin@souk.bench admin_pw=bench-admin-password-1

bench_cleanup() {
    local i
    if declare -F bench_stop_extra >/dev/null; then bench_stop_extra; fi
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop "${pid[${services[$i]}]:-}"; done
    stop "${pid[broker]:-}"
    [ -n "$tmp" ] || return 0
    if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}

bench_up() {
    local prefix=$1 level=$2 i s
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$prefix.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    local ports
    ports=($("$build/tests/tools/freeport" $((2 + ${#services[@]}))))
    kport=${ports[0]} kvport=${ports[1]}
    i=2
    for s in "${services[@]}"; do port[$s]=${ports[$i]}; i=$((i + 1)); done

    # shellcheck disable=SC2086
    "$build/broker/souk-broker" --data-dir "$tmp/broker" --kafka-listen "127.0.0.1:$kport" \
        --kv-listen "127.0.0.1:$kvport" --log-level warn ${BROKER_ARGS:-} >"$tmp/broker.out" 2>"$tmp/broker.err" &
    pid[broker]=$!
    wait_for 10 bash -c "echo > /dev/tcp/127.0.0.1/$kport" ||
        { say "souk-broker did not start"; cat "$tmp/broker.err" >&2; exit 1; }

    for s in "${services[@]}"; do
        args=(--http "127.0.0.1:${port[$s]}" --data-dir "$tmp/$s" --brokers "127.0.0.1:$kport"
              --kv "127.0.0.1:$kvport" --jwt-public-key "$tmp/auth/jwt-public.pem" --log-level "$level")
        [ "$s" = payment ] && args+=(--auto-pay)
        if declare -F service_args >/dev/null; then service_args "$s"; fi
        SOUK_ADMIN_EMAIL=$admin_email SOUK_ADMIN_PASSWORD=$admin_pw \
            "$(bin "$s")" "${args[@]}" >"$tmp/$s.out" 2>"$tmp/$s.err" &
        pid[$s]=$!
        if [ "$s" = auth ]; then
            wait_for 30 test -s "$tmp/auth/jwt-public.pem" || { say "auth did not start"; cat "$tmp/auth.err" >&2; exit 1; }
        fi
        if ! wait_for 30 http_ok "${port[$s]}" /ready; then
            say "souk-$s is not ready:"; tail -20 "$tmp/$s.err" >&2; exit 1
        fi
    done
    say "broker and ${#services[@]} services up in $tmp"
}
