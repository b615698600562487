#!/usr/bin/env bash
# test_listgroups.sh - ListGroups and DescribeGroups through librdkafka's
# legacy rd_kafka_list_groups() (rdk_listgroups.c): a Stable group of two
# members shows with protocol type "consumer", its protocol, both members
# (client ids, hosts) and their assignments, which are disjoint, cover the
# 4 partitions and match what each member's rebalance_cb was given.  After
# both close, the group is Empty with no members.
. "$(dirname "$0")/grouplib.sh"
: "${RDK_LISTGROUPS:?RDK_LISTGROUPS is not set (run through meson test)}"

TOPIC=lg-t
GROUP=lg-g

start_broker "" --partitions 4
produce "$TOPIC" a 100 || fail "produce failed"
start_member m1 "$GROUP" "$TOPIC"
start_member m2 "$GROUP" "$TOPIC"
wait_covered 60 4 m1 m2
sleep 1

run_client listgroups "$RDK_LISTGROUPS" "$BROKER_ADDR" "$GROUP" >"$T/lg.txt"
cat "$T/lg.txt" >&2
grep -qE "^group $GROUP state Stable type consumer protocol (range|roundrobin) members 2 err NO_ERROR\$" "$T/lg.txt" ||
    fail "rd_kafka_list_groups: $(head -n 1 "$T/lg.txt")"
[[ $(grep -c '^member ' "$T/lg.txt") -eq 2 ]] || fail "not 2 member lines"
for m in m1 m2; do
    line=$(grep "^member .* client $m " "$T/lg.txt") || fail "no member with client id $m"
    [[ $line == *" host "*127.0.0.1* ]] || fail "member $m: host is not 127.0.0.1: $line"
    got=$(sed -n "s/.* assigned $TOPIC:\([0-9,]*\)\$/\1/p" <<<"$line" | tr ',' ' ')
    [[ -n $got ]] || fail "member $m has no assignment of $TOPIC: $line"
    [[ $got == "$(member_parts $m)" ]] || fail "member $m: DescribeGroups says [$got], its rebalance_cb [$(member_parts $m)]"
done

run_client listgroups-all "$RDK_LISTGROUPS" "$BROKER_ADDR" >"$T/lg-all.txt"
grep -q "^group $GROUP state Stable " "$T/lg-all.txt" || fail "listing all groups: $(cat "$T/lg-all.txt")"

stop_member m1
stop_member m2
run_client listgroups-empty "$RDK_LISTGROUPS" "$BROKER_ADDR" "$GROUP" >"$T/lg-empty.txt"
grep -qE "^group $GROUP state Empty .* members 0 " "$T/lg-empty.txt" || fail "after both left: $(cat "$T/lg-empty.txt")"
stop_broker
