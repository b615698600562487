"""smtpsink - a real SMTP server for the mail tests: Debian's python3-aiosmtpd,
run in the test's own process (a thread), keeping every message it receives.

    import smtpsink                  # first: re-executes the test under
                                     # /usr/bin/python3 when this python lacks
                                     # aiosmtpd (Debian installs it there)
    SMTP = smtpsink.SmtpServer()     # a free port; SMTP.url for --smtp-url
    SMTP.start()
    mails = SMTP.sink.wait_to("ada@souk.test", n=1, timeout=20)
    mails[0].subject, mails[0].text(), mails[0].html()

A recipient whose address starts with "nobody-" is refused with 550 (a
permanent failure), for the tests of failed deliveries.  Without aiosmtpd
the test exits 77 (meson: skipped) with a line saying what to install.
"""

import os
import sys

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's aiosmtpd lives in the system Python; meson may have found
    # another python3 earlier in PATH.
    if (
        os.path.exists("/usr/bin/python3")
        and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3")
        and not os.environ.get("SOUK_SMTP_REEXEC")
    ):
        os.environ["SOUK_SMTP_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(sys.argv[0])] + sys.argv[1:])
    print("SKIP: aiosmtpd is not installed (apt-get install python3-aiosmtpd)")
    sys.exit(77)

import email
import email.policy
import threading

from aiosmtpd.controller import Controller

import souktest
from souktest import wait_until


class Mail:
    """One received message."""

    def __init__(self, mail_from, rcpt_tos, raw):
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)

    @property
    def subject(self):
        return str(self.msg["Subject"])

    @property
    def to(self):
        return str(self.msg["To"])

    def text(self):
        return self.msg.get_body(preferencelist=("plain",)).get_content()

    def html(self):
        return self.msg.get_body(preferencelist=("html",)).get_content()

    def __repr__(self):
        return "<Mail to=%s subject=%r>" % (self.rcpt_tos, self.subject)


class Sink:
    """aiosmtpd handler: keeps every message."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mails = []

    async def handle_RCPT(self, server, session, env, address, rcpt_options):
        # a mailbox that does not exist: a permanent refusal
        if address.startswith("nobody-"):
            return "550 5.1.1 no such mailbox"
        env.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, env):
        m = Mail(env.mail_from, list(env.rcpt_tos), env.original_content or env.content)
        with self.lock:
            self.mails.append(m)
        return "250 Message accepted for delivery"

    def to(self, addr, pred=None):
        with self.lock:
            return [m for m in self.mails if addr in m.rcpt_tos and (pred is None or pred(m))]

    def wait_to(self, addr, n=1, timeout=20, pred=None):
        """Waits until addr got at least n messages (matching pred); returns them."""

        def got():
            ms = self.to(addr, pred)
            return ms if len(ms) >= n else None

        try:
            return wait_until(got, timeout, "%d email(s) to %s" % (n, addr), 0.05)
        except AssertionError as e:
            raise AssertionError("%s; got %r" % (e, self.to(addr)))

    def count(self):
        with self.lock:
            return len(self.mails)


class SmtpServer:
    """The server on 127.0.0.1:port (a free one by default); start() may be
    called again after stop() (a server that comes back)."""

    def __init__(self, port=None):
        self.port = port or souktest._free_ports(1)[0]
        self.sink = Sink()
        self.controller = None

    def start(self):
        if self.controller is None:
            self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port
