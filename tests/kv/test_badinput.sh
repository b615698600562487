#!/usr/bin/env bash
# test_badinput.sh - bad input never hurts anyone but its sender.
# Protocol errors answer "-ERR Protocol error: ..." and close that one
# connection; arity, unknown commands and bad integers answer Redis's error
# and the connection goes on; random bytes never crash the broker.
. "$(dirname "$0")/lib.sh"

start_souk

# raw BYTES: sends BYTES on a new connection and prints everything the server
# answers until it closes the connection (or 3 s pass), CRs as '|'.
raw() {
    exec 3<>"/dev/tcp/127.0.0.1/$VPORT"
    printf '%b' "$1" >&3
    timeout 3 cat <&3 | tr '\r\n' '|.' || true
    exec 3<&- 3>&-
}

# closes BYTES WANT: the reply is WANT and the server closed the connection.
closes() {
    local got
    got=$(raw "$1")
    [[ $got == "$2" ]] || fail "for '$1': got '$got', want '$2'"
}

closes '*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\nPING\r\n' "-ERR Protocol error: expected '\$', got 'f'|."
closes '*20000000\r\nPING\r\n' '-ERR Protocol error: invalid multibulk length|.'
closes '*1\r\n$-1\r\n' '-ERR Protocol error: invalid bulk length|.'
closes '*1\r\n$536870913\r\n' '-ERR Protocol error: invalid bulk length|.'
closes '*1\r\n$abc\r\n' '-ERR Protocol error: invalid bulk length|.'
closes 'SET a "b\r\nPING\r\n' '-ERR Protocol error: unbalanced quotes in request|.'
closes "$(printf 'x%.0s' $(seq 1 70000))" '-ERR Protocol error: too big inline request|.'
closes "*$(printf '1%.0s' $(seq 1 70000))" '-ERR Protocol error: too big mbulk count string|.'
closes 'PING\r\nQUIT\r\nPING\r\n' '+PONG|.+OK|.'

# Errors that keep the connection: the PING after them is answered.
exec 3<>"/dev/tcp/127.0.0.1/$VPORT"
printf 'GET\r\nNOSUCH a b\r\nINCRBY k x\r\nSET k v EX 0\r\nSET k v BAD\r\n*-1\r\n\r\nPING\r\n' >&3
want=("-ERR wrong number of arguments for 'get' command"
    "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    "-ERR value is not an integer or out of range"
    "-ERR invalid expire time in 'set' command"
    "-ERR syntax error"
    "+PONG")
for w in "${want[@]}"; do
    IFS= read -r -t 5 line <&3 || fail "no reply (want '$w')"
    expect "reply" "${line%$'\r'}" "$w"
done
exec 3<&- 3>&-

# A pipeline split at every byte still works (the server reassembles it).
exec 3<>"/dev/tcp/127.0.0.1/$VPORT"
req='*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$3\r\nyes\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n'
bytes=$(printf '%b.' "$req")
bytes=${bytes%.}
for ((i = 0; i < ${#bytes}; i++)); do printf '%s' "${bytes:i:1}" >&3; done
IFS= read -r -t 5 a <&3 || fail "no reply to the split SET"
IFS= read -r -t 5 b <&3 && IFS= read -r -t 5 c <&3 || fail "no reply to the split GET"
expect "split" "${a%$'\r'} ${b%$'\r'} ${c%$'\r'}" '+OK $3 yes'
exec 3<&- 3>&-

# Random bytes on many connections; the broker stays up and correct.
for ((i = 0; i < 200; i++)); do
    exec 3<>"/dev/tcp/127.0.0.1/$VPORT"
    head -c $((RANDOM % 4096 + 1)) /dev/urandom >&3 2>/dev/null || true
    exec 3<&- 3>&-
done
for ((i = 0; i < 50; i++)); do
    exec 3<>"/dev/tcp/127.0.0.1/$VPORT"
    { printf '*%d\r\n' $((RANDOM % 5 + 1)); head -c $((RANDOM % 300)) /dev/urandom; } >&3 2>/dev/null || true
    exec 3<&- 3>&-
done
expect "PING after garbage" "$(cli "$VPORT" PING)" "PONG"
expect "GET after garbage" "$(cli "$VPORT" GET split)" "yes"
stop_souk
