#!/usr/bin/env bash
# The consumer against the real broker, with events produced by kcat:
#   1. every valid event is applied once (its handler's transaction writes
#      applied(event_id) and emits user.created through the outbox); a
#      redelivered copy of an event (same id) is skipped; an undecodable
#      record and an invalid envelope go to <topic>.dlq at once; a handler
#      that always fails is tried max_attempts times, then dead-lettered; a
#      handler that fails twice then succeeds is applied; a type without a
#      handler is skipped; the offsets end committed at the high watermark.
#   2. offsets reset to 0 (everything redelivered): nothing is applied or
#      dead-lettered again - the inbox turns all of it into duplicates.
#   3. the consumer dies right after a batch's commit (at the 5th outcome
#      it reports), before its offset commit: the next run gets those
#      records again and skips them, and applies only the rest.
#   4. a record whose handler keeps failing holds its partition: the later
#      record of the same key is not applied, and the committed offset stays
#      at the failing record (offsets are committed only after a commit).
#   5. a non-envelope topic with a raw handler (kv.expired's schema): valid
#      records applied once each, invalid ones and a failing one
#      dead-lettered, and nothing again after an offset reset (records
#      without an event id are deduplicated by their position).
#   6. a handler ends the batch's transaction (as SQLite does on an I/O
#      error): the records of the batch before it, rolled back with it, come
#      again and are applied; every event is applied exactly once.
#   7. a record that rolls back every transaction it is in does not take
#      every batch down: the records come one per transaction after a lost
#      batch, so it is retried alone and dead-lettered after max_attempts.
source "$(dirname "$0")/lib.sh"

DB="$T/consumer.db"
TOPIC=it.users
GROUP=it-svc

# envelope ID TYPE DATA_JSON
envelope() {
    printf '{"id":"%s","type":"%s","version":1,"time":"2026-01-01T00:00:00.000Z","source":"auth","correlationId":"%s","causationId":null,"data":%s}' \
        "$1" "$2" "$1" "$3"
}
registered() { # ID USERID EMAIL
    envelope "$1" user.registered "{\"userId\":\"$2\",\"email\":\"$3\",\"role\":\"USER\"}"
}

# outcomes FILE NAME: how many outcome lines with that name
outcomes() { grep -c "^outcome $2 " "$1" || true; }

start_broker "" --partitions 3

log "producing 26 records to $TOPIC"
{
    for i in $(seq 1 20); do echo "u$((i % 5))|$(registered "e-ok-$i" "u$((i % 5))" "ok-$i@x.test")"; done
    echo "u3|$(registered e-ok-3 u3 ok-3@x.test)"           # a redelivered copy (same id)
    echo "u1|this is not json"                               # undecodable
    echo 'u2|{"id":"x-1","type":"user.registered"}'          # an invalid envelope
    echo "u3|$(registered e-fail-1 u3 fail-1@x.test)"        # always fails
    echo "u4|$(registered e-flaky-1 u4 flaky2-1@x.test)"     # fails twice, then works
    echo "u0|$(envelope e-created-1 user.created '{"userId":"u0","email":"a@x.test","fullName":"A","phone":null}')" # no handler
} >"$T/records.txt"
kc -P -t "$TOPIC" -K '|' <"$T/records.txt" || fail "kcat could not produce"
[[ $(topic_count "$TOPIC") -eq 26 ]] || fail "expected 26 records on $TOPIC"

log "1. first run"
ev consume "$DB" "$BROKER_ADDR" "$GROUP" "$TOPIC" --until-caught-up 90 --max-attempts 3 --backoff 100 >"$T/run1.out"
for o in applied duplicate skipped dlq retry; do log "  $o: $(outcomes "$T/run1.out" "$o")"; done
[[ $(outcomes "$T/run1.out" applied) -eq 21 ]] || fail "expected 21 applied events"
[[ $(outcomes "$T/run1.out" duplicate) -eq 1 ]] || fail "expected 1 duplicate"
[[ $(outcomes "$T/run1.out" skipped) -eq 1 ]] || fail "expected 1 skipped event"
[[ $(outcomes "$T/run1.out" dlq) -eq 3 ]] || fail "expected 3 dead-lettered records"
[[ $(outcomes "$T/run1.out" retry) -eq 4 ]] || fail "expected 4 retries (2 for the failing event, 2 for the flaky one)"
grep -q '^outcome dlq .* e-fail-1 user.registered attempt=3 ' "$T/run1.out" ||
    fail "the failing event was not dead-lettered on its third attempt"
grep -q '^outcome applied .* e-flaky-1 user.registered attempt=3$' "$T/run1.out" ||
    fail "the flaky event was not applied on its third attempt"
ev applied "$DB" >"$T/applied1.txt"
[[ $(wc -l <"$T/applied1.txt") -eq 21 ]] || fail "expected 21 rows in applied"
[[ $(awk '$2 != 1' "$T/applied1.txt" | wc -l) -eq 0 ]] || fail "an event was applied more than once"

topic_dump "$TOPIC.dlq" >"$T/dlq1.txt"
[[ $(wc -l <"$T/dlq1.txt") -eq 3 ]] || fail "expected 3 records on $TOPIC.dlq, found $(wc -l <"$T/dlq1.txt")"
cut -f4 "$T/dlq1.txt" >"$T/dlq1.json"
"$JQ" -e -s 'map(select(.value == "this is not json" and .attempts == 0 and (.error | test("malformed JSON")) and .consumer == "it-svc" and .topic == "it.users")) | length == 1' "$T/dlq1.json" >/dev/null ||
    fail "the undecodable record's DLQ entry is wrong: $(cat "$T/dlq1.json")"
"$JQ" -e -s 'map(select(.attempts == 0 and (.value | test("x-1")) and (.error | length > 0))) | length == 1' "$T/dlq1.json" >/dev/null ||
    fail "the invalid envelope's DLQ entry is wrong"
"$JQ" -e -s 'map(select(.eventId == "e-fail-1" and .attempts == 3 and .error == "boom: fail-1@x.test" and .key == "u3" and .eventType == "user.registered")) | length == 1' "$T/dlq1.json" >/dev/null ||
    fail "the failing event's DLQ entry is wrong"
awk -F'\t' '$3 == "u1" || $3 == "u2" || $3 == "u3"' "$T/dlq1.txt" | wc -l | grep -qx 3 || fail "DLQ records lost their keys"

topic_dump user.created >"$T/created1.txt"
[[ $(wc -l <"$T/created1.txt") -eq 21 ]] || fail "expected 21 user.created events from the handlers, found $(wc -l <"$T/created1.txt")"
[[ $(cut -f4 "$T/created1.txt" | "$JQ" -r .causationId | sort -u | wc -l) -eq 21 ]] || fail "user.created events are not one per applied event"

ev offsets "$BROKER_ADDR" "$GROUP" "$TOPIC" >"$T/offsets1.txt"
awk '$3 > 0 && $2 != $3 { bad++ } END { exit bad ? 1 : 0 }' "$T/offsets1.txt" ||
    fail "offsets are not committed up to the high watermark: $(cat "$T/offsets1.txt")"

log "2. offsets reset to 0: everything comes again, nothing happens twice"
ev reset "$BROKER_ADDR" "$GROUP" "$TOPIC" 0 >/dev/null
ev consume "$DB" "$BROKER_ADDR" "$GROUP" "$TOPIC" --until-caught-up 90 --max-attempts 3 --backoff 100 >"$T/run2.out"
for o in applied duplicate skipped dlq retry; do log "  $o: $(outcomes "$T/run2.out" "$o")"; done
[[ $(outcomes "$T/run2.out" duplicate) -eq 25 ]] || fail "expected 25 duplicates on redelivery"
[[ $(outcomes "$T/run2.out" skipped) -eq 1 ]] || fail "expected the type without a handler to be skipped again"
[[ $(outcomes "$T/run2.out" applied) -eq 0 ]] || fail "events were applied again"
[[ $(outcomes "$T/run2.out" dlq) -eq 0 ]] || fail "records were dead-lettered again"
[[ $(outcomes "$T/run2.out" retry) -eq 0 ]] || fail "a dead-lettered event was retried again"
ev applied "$DB" | cmp -s - "$T/applied1.txt" || fail "the applied table changed on redelivery"
[[ $(topic_count "$TOPIC.dlq") -eq 3 ]] || fail "the DLQ grew on redelivery"
[[ $(topic_count user.created) -eq 21 ]] || fail "handlers emitted events again on redelivery"

log "3. a crash between the transaction and the offset commit"
{
    for i in $(seq 21 30); do echo "u$((i % 5))|$(registered "e-ok-$i" "u$((i % 5))" "ok-$i@x.test")"; done
} >"$T/records3.txt"
kc -P -t "$TOPIC" -K '|' <"$T/records3.txt" || fail "kcat could not produce"
rc=$(ev_status consume "$DB" "$BROKER_ADDR" "$GROUP" "$TOPIC" --until-caught-up 90 --crash-after 5)
[[ $rc -eq 3 ]] || fail "the consumer should have crashed (exit 3), exit status $rc"
ev offsets "$BROKER_ADDR" "$GROUP" "$TOPIC" >"$T/offsets3.txt"
awk '$2 < $3 { behind++ } END { exit behind ? 0 : 1 }' "$T/offsets3.txt" ||
    fail "after the crash no partition is behind: $(cat "$T/offsets3.txt")"
# A batch's records share one transaction: at least the 5 reported were
# committed before the crash, maybe the whole batch.
before=$(ev applied "$DB" | wc -l)
[[ $before -ge 26 && $before -le 31 ]] || fail "expected 26 to 31 applied events after the crash, found $before"
ev consume "$DB" "$BROKER_ADDR" "$GROUP" "$TOPIC" --until-caught-up 90 >"$T/run3.out"
for o in applied duplicate; do log "  $o: $(outcomes "$T/run3.out" "$o")"; done
[[ $(outcomes "$T/run3.out" applied) -eq $((31 - before)) ]] || fail "expected the $((31 - before)) remaining events to be applied"
[[ $(outcomes "$T/run3.out" duplicate) -ge 1 ]] || fail "the record whose offset was not committed did not come again"
ev applied "$DB" >"$T/applied3.txt"
[[ $(wc -l <"$T/applied3.txt") -eq 31 ]] || fail "expected 31 applied events"
[[ $(awk '$2 != 1' "$T/applied3.txt" | wc -l) -eq 0 ]] || fail "an event was applied twice after the crash"
[[ $(topic_count user.created) -eq 31 ]] || fail "expected 31 user.created events"

log "4. a failing record holds its partition and its offset"
STALL=it.stall
{
    echo "s|$(registered e-s-1 s ok-s1@x.test)"
    echo "s|$(registered e-s-2 s fail-s2@x.test)"
    echo "s|$(registered e-s-3 s ok-s3@x.test)"
} >"$T/records4.txt"
kc -P -t "$STALL" -K '|' <"$T/records4.txt" || fail "kcat could not produce"
part=$(topic_dump "$STALL" | awk -F'\t' 'NR == 1 { print $1 }')
off=$(topic_dump "$STALL" | awk -F'\t' '$4 ~ /e-s-2/ { print $2 }')
ev consume "$T/stall.db" "$BROKER_ADDR" it-stall "$STALL" --for 5 --max-attempts 1000 --backoff 100 >"$T/run4.out"
log "  retries in 5 s: $(outcomes "$T/run4.out" retry)"
[[ $(outcomes "$T/run4.out" retry) -ge 3 ]] || fail "the failing handler was not retried"
grep -q '^outcome applied .* e-s-1 ' "$T/run4.out" || fail "the record before the failing one was not applied"
grep -q ' e-s-3 ' "$T/run4.out" && fail "the record after the failing one was processed"
committed=$(ev offsets "$BROKER_ADDR" it-stall "$STALL" | awk -v p="$part" '$1 == p { print $2 }')
log "  partition $part: failing record at offset $off, committed offset $committed"
[[ $committed -eq $off ]] || fail "committed offset $committed, expected $off (the failing record)"

log "5. a raw (non-envelope) topic"
RAW=it.raw
{
    for k in a b c; do echo "$k|{\"key\":\"$k\",\"value\":\"v\",\"expiredAt\":\"2026-01-01T00:00:00.000Z\"}"; done
    echo 'd|{"key":"d"}'                                   # fails the kv.expired schema
    echo 'e|not json'                                      # not JSON
    echo 'f|{"key":"fail","value":"v","expiredAt":"2026-01-01T00:00:00.000Z"}'   # handler fails
} >"$T/records5.txt"
kc -P -t "$RAW" -K '|' <"$T/records5.txt" || fail "kcat could not produce"
ev consume "$T/raw.db" "$BROKER_ADDR" it-raw "$RAW" --raw --until-caught-up 60 --max-attempts 2 --backoff 50 >"$T/run5.out"
for o in applied dlq retry; do log "  $o: $(outcomes "$T/run5.out" "$o")"; done
[[ $(outcomes "$T/run5.out" applied) -eq 3 ]] || fail "expected 3 raw records applied"
[[ $(outcomes "$T/run5.out" dlq) -eq 3 ]] || fail "expected 3 raw records dead-lettered"
[[ $(outcomes "$T/run5.out" retry) -eq 1 ]] || fail "expected 1 retry of the failing raw record"
[[ $(topic_count "$RAW.dlq") -eq 3 ]] || fail "expected 3 records on $RAW.dlq"
topic_dump "$RAW.dlq" | cut -f4 | "$JQ" -e -s 'map(select(.error | test("data.*value|value.*missing|expiredAt|key"))) | length >= 1' >/dev/null ||
    fail "the schema failure is not explained in the DLQ"
ev reset "$BROKER_ADDR" it-raw "$RAW" 0 >/dev/null
ev consume "$T/raw.db" "$BROKER_ADDR" it-raw "$RAW" --raw --until-caught-up 60 --max-attempts 2 --backoff 50 >"$T/run5b.out"
[[ $(outcomes "$T/run5b.out" duplicate) -eq 6 ]] || fail "expected 6 duplicates after the reset"
[[ $(ev applied "$T/raw.db" | awk '$2 != 1' | wc -l) -eq 0 ]] || fail "a raw record was applied twice"
[[ $(topic_count "$RAW.dlq") -eq 3 ]] || fail "the raw DLQ grew after the reset"

# produce_one_bad TOPIC N K PREFIX EMAIL_PREFIX: N records of key k, ids
# PREFIX-1..N, the K-th with an email that starts with EMAIL_PREFIX
produce_one_bad() {
    local i
    for i in $(seq 1 "$2"); do
        if [[ $i -eq $3 ]]; then echo "k|$(registered "$4-$i" k "$5$i@x.test")"
        else echo "k|$(registered "$4-$i" k "ok-$4$i@x.test")"; fi
    done >"$T/$1.records"
    kc -P -t "$1" -K '|' <"$T/$1.records" || fail "kcat could not produce"
}

log "6. SQLite ends a batch's transaction half way: its records come again, none is lost"
LOST=it.lost
produce_one_bad "$LOST" 12 7 e-l abort-
created=$(topic_count user.created)
ev consume "$T/lost.db" "$BROKER_ADDR" it-lost "$LOST" --until-caught-up 60 --backoff 50 >"$T/run6.out"
grep -q 'ended the batch' "$EV_ERR" || fail "the consumer did not notice the lost transaction"
log "  applied: $(outcomes "$T/run6.out" applied), retry: $(outcomes "$T/run6.out" retry)"
[[ $(outcomes "$T/run6.out" applied) -eq 12 ]] || fail "expected 12 applied outcomes"
ev applied "$T/lost.db" >"$T/applied6.txt"
[[ $(wc -l <"$T/applied6.txt") -eq 12 ]] || fail "expected 12 applied events, found $(wc -l <"$T/applied6.txt")"
[[ $(awk '$2 != 1' "$T/applied6.txt" | wc -l) -eq 0 ]] || fail "an event was applied twice"
[[ $(topic_count user.created) -eq $((created + 12)) ]] || fail "expected 12 more user.created events"

log "7. a record that breaks every transaction it is in: retried alone, then dead-lettered"
LOST2=it.lost2
produce_one_bad "$LOST2" 8 4 e-m abortall-
ev consume "$T/lost2.db" "$BROKER_ADDR" it-lost2 "$LOST2" --until-caught-up 60 --max-attempts 2 --backoff 50 >"$T/run7.out"
log "  applied: $(outcomes "$T/run7.out" applied), retry: $(outcomes "$T/run7.out" retry), dlq: $(outcomes "$T/run7.out" dlq)"
[[ $(outcomes "$T/run7.out" applied) -eq 7 ]] || fail "expected the 7 other records applied"
[[ $(outcomes "$T/run7.out" dlq) -eq 1 ]] || fail "expected the record to be dead-lettered"
grep -q '^outcome dlq .* e-m-4 user.registered attempt=2 ' "$T/run7.out" || fail "e-m-4 was not dead-lettered on its second attempt"
[[ $(ev applied "$T/lost2.db" | awk '$2 != 1' | wc -l) -eq 0 ]] || fail "an event was applied twice"

stop_broker
