"""souk load against the whole saga: 200 bookings at concurrency 16 with
auto-pay must all end and every invariant must hold (souk load exits 0);
then a run that pays by card, declines some and oversells a catalog
exercises the FAILED paths, and must hold the invariants too.  Both learn
the terminal statuses from the booking topic (--brokers: every booking's
event read, none missed - an event may come before its POST's 202); the
crash test in test_crashes.py runs souk load polling the lists."""

import e2e
import souktest

SMTP = e2e.smtp()


def test_load_auto_pay():
    with e2e.cluster(SMTP, name="e2e-load", payment=["--auto-pay"]) as c:
        r = e2e.run_load(c, "--bookings", "200", "--concurrency", "16", "--pay", "auto",
                         "--check-emails", "yes", "--brokers", c.brokers)
        assert r.returncode == 0, "souk load exited %d" % r.returncode
        out = r.stdout
        assert "CONFIRMED 200 " in out, out
        assert "seen (booking topic)" in out and "200 events read" in out, out
        assert "result: ok" in out, out


def test_load_card_declines_and_oversell():
    with e2e.cluster(SMTP, name="e2e-load-card") as c:
        r = e2e.run_load(c, "--bookings", "120", "--concurrency", "24", "--pay", "card",
                         "--decline-percent", "10", "--oversell", "0.5", "--mode", "ticket",
                         "--tickets-per-catalog", "20", "--check-emails", "yes",
                         "--brokers", c.brokers)
        assert r.returncode == 0, "souk load exited %d" % r.returncode
        assert "seen (booking topic)" in r.stdout, r.stdout
        assert "result: ok" in r.stdout


if __name__ == "__main__":
    souktest.main(globals())
