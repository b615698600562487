#!/usr/bin/env bash
# test_kcat.sh - kcat 1.7.1 against souk-broker: metadata, a 10,000-message
# keyed produce into 4 partitions, a byte-identical consume in per-key
# produce order, the same data after a restart, and the errors for missing
# and invalid topics.
. "$(dirname "$0")/lib.sh"

TOPIC=kcat-t
N=10000
NKEYS=97
TAB=$(printf '\t')
FMT='%p\t%o\t%k\t%s\n'

start_broker "" --partitions 4

# ---- kcat -L: the broker and its address --------------------------------
kc -L >"$T/meta0.txt" 2>"$T/meta0.err" || fail "kcat -L failed: $(cat "$T/meta0.err")"
grep -q "broker 1 at $BROKER_ADDR" "$T/meta0.txt" ||
    fail "kcat -L does not list broker 1 at $BROKER_ADDR: $(cat "$T/meta0.txt")"
grep -q ' 0 topics' "$T/meta0.txt" || fail "a new broker lists topics: $(cat "$T/meta0.txt")"

# ---- produce 10,000 keyed messages --------------------------------------
# Line i is "key-<i mod 97> TAB v<i>-s<seq of that key>-<bytes>", where the
# bytes cover every value but \n (the message delimiter) and \t, including
# NUL, control characters and invalid UTF-8.
perl -e '
    my ($n, $nkeys) = @ARGV;
    my @bytes = grep { $_ != 10 && $_ != 9 } 0 .. 255;
    my %seq;
    for my $i (0 .. $n - 1) {
        my $k = "key-" . ($i % $nkeys);
        my $s = $seq{$k}++;
        my $junk = join "", map { chr $bytes[($i * 7 + $_ * 13) % @bytes] } 0 .. ($i % 40);
        print "$k\t", sprintf("v%05d-s%03d-", $i, $s), $junk, "\n";
    }' "$N" "$NKEYS" >"$T/produced.txt"
[[ $(wc -l <"$T/produced.txt") -eq $N ]] || fail "test data generation"

kc -P -t "$TOPIC" -K "$TAB" -X acks=all -X message.timeout.ms=60000 <"$T/produced.txt" 2>"$T/produce.err" ||
    fail "kcat -P exited with an error: $(head -c 2000 "$T/produce.err")"
if grep -q 'Delivery failed' "$T/produce.err"; then
    fail "kcat -P: $(grep -c 'Delivery failed' "$T/produce.err") messages failed: $(head -n 3 "$T/produce.err")"
fi
log "produced $N messages"

# ---- kcat -L: the created topic -----------------------------------------
kc -L >"$T/meta1.txt" 2>&1 || fail "kcat -L failed: $(cat "$T/meta1.txt")"
grep -q "topic \"$TOPIC\" with 4 partitions:" "$T/meta1.txt" ||
    fail "kcat -L does not list topic $TOPIC with 4 partitions: $(cat "$T/meta1.txt")"
for p in 0 1 2 3; do
    grep -q "partition $p, leader 1, replicas: 1, isrs: 1" "$T/meta1.txt" ||
        fail "kcat -L: partition $p of $TOPIC has no leader 1: $(cat "$T/meta1.txt")"
done

# check_consumed OUT: compares a kcat -f "$FMT" dump with produced.txt and
# writes the canonical form (sorted by partition, then offset) to OUT.sorted.
check_consumed() {
    perl -e '
        use strict;
        my ($produced, $consumed, $sorted, $n) = @ARGV;
        sub bad { print STDERR "check: @_\n"; exit 1 }
        open my $pf, "<:raw", $produced or die;
        my (%want_seq, %want_count);
        while (my $l = <$pf>) {
            chomp $l;
            my ($k, $v) = split /\t/, $l, 2;
            push @{$want_seq{$k}}, $v;
            $want_count{"$k\t$v"}++;
        }
        open my $cf, "<:raw", $consumed or die;
        my (%got_seq, %next_off, %key_part, @recs);
        my $count = 0;
        while (my $l = <$cf>) {
            chomp $l;
            my ($p, $o, $k, $v) = split /\t/, $l, 4;
            defined $v or bad("unparseable line " . ($count + 1) . ": $l");
            my $want = $next_off{$p} // 0;
            $o == $want or bad("partition $p: offset $o where $want was expected");
            $next_off{$p} = $o + 1;
            if (exists $key_part{$k} && $key_part{$k} != $p) {
                bad("key $k is in partitions $key_part{$k} and $p");
            }
            $key_part{$k} = $p;
            exists $want_count{"$k\t$v"} or bad("message never produced (or altered) at $p/$o: key $k");
            --$want_count{"$k\t$v"} >= 0 or bad("message consumed twice at $p/$o: key $k");
            push @{$got_seq{$k}}, $v;
            push @recs, [$p, $o, $l];
            $count++;
        }
        $count == $n or bad("consumed $count messages, expected $n");
        for my $k (sort keys %want_seq) {
            my $w = $want_seq{$k};
            my $g = $got_seq{$k} // [];
            @$g == @$w or bad("key $k: " . scalar(@$g) . " messages, expected " . scalar(@$w));
            for my $i (0 .. $#$w) {
                $g->[$i] eq $w->[$i] or bad("key $k: message $i out of produce order or altered");
            }
        }
        my @parts = sort keys %next_off;
        @parts == 4 or bad("messages landed in " . scalar(@parts) . " partitions (@parts), expected 4");
        open my $sf, ">:raw", $sorted or die;
        print $sf "$_->[2]\n" for sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @recs;
        print STDERR "check: $count messages, per partition: ",
            join(" ", map { "$_:$next_off{$_}" } @parts), "\n";
    ' "$T/produced.txt" "$1" "$1.sorted" "$N" || fail "consumed data of $1 differs from what was produced"
}

# ---- consume from the beginning ------------------------------------------
kc -C -t "$TOPIC" -o beginning -e -q -X check.crcs=true -f "$FMT" >"$T/consumed1.txt" 2>"$T/consume1.err" ||
    fail "kcat -C failed: $(head -c 2000 "$T/consume1.err")"
check_consumed "$T/consumed1.txt"

# ---- restart on the same data dir and port ------------------------------
port=$BROKER_PORT
stop_broker
start_broker "$port" --partitions 4
kc -L >"$T/meta2.txt" 2>&1 || fail "kcat -L after restart failed: $(cat "$T/meta2.txt")"
grep -q "topic \"$TOPIC\" with 4 partitions:" "$T/meta2.txt" ||
    fail "after restart kcat -L does not list $TOPIC with 4 partitions: $(cat "$T/meta2.txt")"
kc -C -t "$TOPIC" -o beginning -e -q -X check.crcs=true -f "$FMT" >"$T/consumed2.txt" 2>"$T/consume2.err" ||
    fail "kcat -C after restart failed: $(head -c 2000 "$T/consume2.err")"
check_consumed "$T/consumed2.txt"
cmp -s "$T/consumed1.txt.sorted" "$T/consumed2.txt.sorted" ||
    fail "data consumed after the restart differs from before"
log "restart: all $N messages identical"

# New messages after the restart continue each partition's offsets.
printf 'after-restart\tx%d\n' $(seq 1 20) |
    kc -P -t "$TOPIC" -K "$TAB" -p 2 -X acks=all 2>"$T/produce2.err" ||
    fail "kcat -P after restart failed: $(cat "$T/produce2.err")"
p2_end=$(awk -F'\t' '$1 == 2 { n++ } END { print n + 0 }' "$T/consumed2.txt")
kc -C -t "$TOPIC" -p 2 -o "$p2_end" -e -q -f "$FMT" >"$T/consumed3.txt" 2>"$T/consume3.err" ||
    fail "kcat -C of the new messages failed: $(cat "$T/consume3.err")"
awk -F'\t' -v base="$p2_end" '
    { if ($2 != base + NR - 1 || $3 != "after-restart" || $4 != "x" NR) { print "bad line " NR ": " $0; bad = 1 } }
    END { if (NR != 20) { print NR " messages, expected 20"; bad = 1 }; exit bad }' "$T/consumed3.txt" >&2 ||
    fail "messages produced after the restart are not at offsets $p2_end.. of partition 2"

# ---- a missing topic: kcat -C reports an error instead of waiting --------
rc=0
timeout 30 "${KCAT:-kcat}" -b "$BROKER_ADDR" -C -t no-such-topic -o beginning -e >"$T/missing.out" 2>"$T/missing.err" || rc=$?
[[ $rc -ne 124 ]] || fail "kcat -C of a missing topic hung for 30 s"
[[ $rc -ne 0 ]] || fail "kcat -C of a missing topic exited 0"
grep -qi 'unknown topic' "$T/missing.err" || fail "kcat -C of a missing topic: unexpected error: $(cat "$T/missing.err")"
kc -L >"$T/meta3.txt" 2>&1 || fail "kcat -L failed"
grep -q 'no-such-topic' "$T/meta3.txt" && fail "a consumer's metadata request created no-such-topic"

# ---- invalid topic names are refused -------------------------------------
long=$(printf 'x%.0s' $(seq 1 250))
for bad in 'bad!name' 'has space' '..' '../escape' "$long"; do
    rc=0
    printf 'k\tv\n' | kc -P -t "$bad" -K "$TAB" -X message.timeout.ms=10000 >/dev/null 2>"$T/bad.err" || rc=$?
    [[ $rc -ne 124 ]] || fail "kcat -P to invalid topic '${bad:0:40}' hung"
    [[ $rc -ne 0 ]] || fail "kcat -P to invalid topic '${bad:0:40}' succeeded"
    grep -qi 'invalid topic' "$T/bad.err" || fail "kcat -P to '${bad:0:40}': unexpected error: $(cat "$T/bad.err")"
    kc -L -t "$bad" >"$T/bad.meta" 2>&1 || true
    grep -qi 'invalid topic' "$T/bad.meta" || fail "kcat -L -t '${bad:0:40}': no Invalid topic error: $(cat "$T/bad.meta")"
done
shopt -s nullglob
stray=("$BROKER_DATA"/*' '* "$BROKER_DATA"/bad* "$BROKER_DATA"/xxxx* "$T"/escape* "$BROKER_DATA"/..-*)
shopt -u nullglob
[[ ${#stray[@]} -eq 0 ]] || fail "invalid topic names left files behind: ${stray[*]}"
kc -L >"$T/meta4.txt" 2>&1 || fail "kcat -L failed"
grep -q ' 1 topics' "$T/meta4.txt" || fail "after the refused names the broker lists: $(cat "$T/meta4.txt")"
log "missing and invalid topics refused"

# ---- auto-creation off ---------------------------------------------------
stop_broker
start_broker "$port" --auto-create-topics=false
rc=0
timeout 30 "${KCAT:-kcat}" -b "$BROKER_ADDR" -C -t absent -o beginning -e >/dev/null 2>"$T/absent.err" || rc=$?
[[ $rc -ne 124 ]] || fail "auto-create off: kcat -C of a missing topic hung for 30 s"
[[ $rc -ne 0 ]] || fail "auto-create off: kcat -C of a missing topic exited 0"
grep -qi 'unknown topic' "$T/absent.err" || fail "auto-create off: kcat -C: unexpected error: $(cat "$T/absent.err")"
rc=0
printf 'k\tv\n' | timeout 60 "${KCAT:-kcat}" -b "$BROKER_ADDR" -P -t absent -K "$TAB" -X message.timeout.ms=3000 \
    >/dev/null 2>"$T/absent-p.err" || rc=$?
[[ $rc -ne 124 ]] || fail "auto-create off: kcat -P to a missing topic hung"
[[ $rc -ne 0 ]] || fail "auto-create off: kcat -P to a missing topic succeeded"
kc -L >"$T/meta5.txt" 2>&1 || fail "kcat -L failed"
grep -q 'absent' "$T/meta5.txt" && fail "auto-create off: the topic was created: $(cat "$T/meta5.txt")"
# The existing topic is still served.
kc -C -t "$TOPIC" -p 0 -o beginning -e -q -f '%o\n' >"$T/p0.txt" 2>"$T/p0.err" ||
    fail "auto-create off: kcat -C of an existing topic failed: $(cat "$T/p0.err")"
[[ $(wc -l <"$T/p0.txt") -eq $(awk -F'\t' '$1 == 0' "$T/consumed1.txt" | wc -l) ]] ||
    fail "auto-create off: partition 0 has $(wc -l <"$T/p0.txt") messages"
stop_broker
