"""Crashes end to end.

- kill -9 souk-booking while four holds are open (--hold-seconds 3), start
  it again after their deadlines: every booking still ends EXPIRED (the
  key store's kv.expired waits in the log; the sweeper is the backstop),
  every ticket is released, each user gets one "Booking expired" email.
- kill -9 souk-broker while `souk load` runs bookings (auto-pay), start it
  again two seconds later: every booking still reaches a terminal state and
  `souk load`'s invariant checks (no ticket sold twice, CONFIRMED = SOLD =
  succeeded payments - refunds, one email per booking) pass.
"""

import os
import subprocess
import sys
import time

import e2e
import souktest
from souktest import wait_until

SMTP = e2e.smtp()


def test_kill9_booking_with_open_holds():
    hold = 3
    with e2e.cluster(SMTP, name="e2e-kill-booking", booking=["--hold-seconds", hold]) as c:
        s = e2e.Saga(c, SMTP)
        title = "Crash Course 101"
        cid, tids = s.catalog(tickets=4, title=title)
        users = [s.user() for _ in tids]
        bids = [s.book(users[i], ticket=t)["bookingId"] for i, t in enumerate(tids)]
        for i, b in enumerate(bids):
            s.wait_status(users[i], b, "AWAITING_PAYMENT", 15)
        c.kill9("booking")
        t_kill = time.time()
        time.sleep(hold + 2)  # every deadline passes while booking is down
        for t in tids:
            assert s.ticket_status(cid, t) == "RESERVED"
        c.start("booking")
        for i, b in enumerate(bids):
            e = s.wait_status(users[i], b, e2e.TERMINAL, 15)
            assert e["status"] == "EXPIRED", e
        for t in tids:
            s.wait_ticket(cid, t, "AVAILABLE")
        for u in users:
            m = s.wait_mail(u, "Booking expired")
            assert m.subject == "Booking expired: " + title, m.subject
        time.sleep(1.5)
        for u in users:
            assert len(s.mails(u, lambda m: m.subject.startswith("Booking"))) == 1, s.mails(u)
        for b in bids:
            assert len(s.events_of("booking", b, "booking.expired")) == 1, b
            assert len(s.events_of("ticket.fail", b)) == 1, b
        assert time.time() - t_kill < 60


def test_kill9_broker_mid_flow():
    with e2e.cluster(SMTP, name="e2e-kill-broker", payment=["--auto-pay"]) as c:
        admin_email, admin_pw = c.admin
        cmd = [
            os.environ["SOUK_BIN"], "load",
            "--auth-url", c.url("auth"), "--catalog-url", c.url("catalog"),
            "--booking-url", c.url("booking"), "--payment-url", c.url("payment"),
            "--notification-url", c.url("notification"),
            "--admin-email", admin_email, "--admin-password", admin_pw,
            "--bookings", "300", "--concurrency", "8", "--pay", "auto", "--check-emails", "yes",
            "--timeout-s", "240", "--settle-s", "90", "--no-progress",
        ]
        out_path = os.path.join(c.tmp, "load.out")
        with open(out_path, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=c.tmp)
        try:
            # mid-flow: some bookings are done, most are not
            wait_until(lambda: len(c.events("booking", "booking.confirmed")) >= 20, 120,
                       "20 bookings confirmed under load", 0.3)
            c.kill9("broker")
            time.sleep(2)
            c.start("broker")
            rc = p.wait(timeout=420)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        with open(out_path) as f:
            text = f.read()
        sys.stdout.write(text)
        assert rc == 0, "souk load exited %d after the broker's kill -9" % rc
        assert "result: ok" in text and "every accepted booking is terminal: 300 of 300" in text, text


if __name__ == "__main__":
    souktest.main(globals())
