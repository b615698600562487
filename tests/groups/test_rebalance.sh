#!/usr/bin/env bash
# test_rebalance.sh - librdkafka high-level consumers (rdk_member) sharing a
# 4-partition topic through souk-broker's group coordinator, while messages
# are produced the whole time:
#   one member holds all 4 partitions; a second joins and the two hold
#   disjoint sets covering all 4; a third joins (three disjoint, covering);
#   the first closes cleanly (LeaveGroup) and the other two cover all 4;
#   the second is killed with SIGKILL and, once its session timeout (6 s)
#   has passed but not much later, the third holds all 4;
#   a fourth joins (two cover all 4), is killed, and a fifth joins right
#   away: the rebalance the fifth starts waits for the killed member until
#   its session expires, then the third and fifth cover all 4.
# At the end every produced message was consumed at least once, a message
# whose commit succeeded was never consumed again, and messages consumed
# twice are only on the killed member's partitions (or had a failed commit).
. "$(dirname "$0")/grouplib.sh"

TOPIC=reb-t
GROUP=reb-g
SESSION_S=6

start_broker "" --partitions 4
produce "$TOPIC" first 100 || fail "the first produce (which creates $TOPIC) failed"
start_producer "$TOPIC"

start_member m1 "$GROUP" "$TOPIC"
wait_covered 60 4 m1
[[ $(member_parts m1) == "0 1 2 3" ]] || fail "m1 alone holds [$(member_parts m1)]"

start_member m2 "$GROUP" "$TOPIC"
wait_covered 60 4 m1 m2

start_member m3 "$GROUP" "$TOPIC"
wait_covered 60 4 m1 m2 m3

stop_member m1
[[ -z $(member_parts m1) ]] || fail "m1 still holds [$(member_parts m1)] after closing"
wait_covered 60 4 m2 m3

sleep 2 # let m2 consume (and commit) on its partitions
KILLED_PARTS=$(member_parts m2)
kill9_member m2
log "m2 held [$KILLED_PARTS] when it was killed"
wait_covered $((SESSION_S + 30)) 4 m3
# The group can only notice the kill through the session timeout: a closed
# connection does not remove a member.
((WAITED_MS >= (SESSION_S - 1) * 1000)) ||
    fail "m3 took m2's partitions after $WAITED_MS ms, before m2's ${SESSION_S} s session timeout"
((WAITED_MS <= (SESSION_S + 8) * 1000)) ||
    fail "m3 took m2's partitions only after $WAITED_MS ms (session timeout ${SESSION_S} s)"

start_member m4 "$GROUP" "$TOPIC"
wait_covered 60 4 m3 m4
sleep 2
M4_PARTS=$(member_parts m4)
kill9_member m4
log "m4 held [$M4_PARTS] when it was killed"
KILLED_PARTS="$KILLED_PARTS $M4_PARTS"
start_member m5 "$GROUP" "$TOPIC"
wait_covered $((SESSION_S + 30)) 4 m3 m5
((WAITED_MS >= (SESSION_S - 2) * 1000 && WAITED_MS <= (SESSION_S + 8) * 1000)) ||
    fail "m3 and m5 shared the partitions after $WAITED_MS ms (m4's session timeout: ${SESSION_S} s)"

sleep 3
stop_producer
[[ ! -s $T/produce.failures ]] || fail "produce failed for batches: $(tr '\n' ' ' <"$T/produce.failures")"
wait_all_consumed 90 m1 m2 m3 m4 m5
stop_member m3
stop_member m5
check_duplicates "$KILLED_PARTS" m1 m2 m3 m4 m5
[[ $(grep -c 'expired: no heartbeat' "$BROKER_LOG") -ge 2 ]] ||
    fail "the broker did not log the session expiry of m2 and m4"
broker_alive
stop_broker
