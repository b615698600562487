"""Headless Chromium driven over the DevTools protocol, python3 stdlib only.

Shared by tests/webui/test_webui.py and tests/analytics/test_analytics.py
(their meson.build put tests/services on PYTHONPATH).

    with Browser(workdir) as b:          # or b = Browser(workdir).start(); b.stop()
        b.goto("http://127.0.0.1:8083/")
        b.wait("document.body.dataset.ready === '1'", what="the data")
        b.screenshot(os.path.join(artifacts, "x.png"))
        assert not b.problems(), b.problems()

Browser.start() runs `chromium --headless=new --remote-debugging-port=0`
with a fresh --user-data-dir, reads the port from DevToolsActivePort, and
connects to the page target's websocket with the minimal RFC 6455 client
below (socket + base64 + struct).  The connection is single-threaded:
events are collected whenever a reply is awaited.

What a test needs: js() (Runtime.evaluate, awaiting promises, by value),
click()/fill() through the DOM, wait() for a JS condition, screenshot()
(PNG), and the problems seen so far: console errors, uncaught exceptions,
failed loads and answers with status >= 500 (problems()); an answer with a
4xx status fails too, except to an XHR/fetch call when api_4xx_ok (the
default: the web UI meets 4xx answers of the API as part of its flows).
JavaScript dialogs (confirm) are accepted.
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request


class WebSocket:
    """A client websocket: text frames out (masked), frames in."""

    def __init__(self, url, timeout=30.0):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError("websocket handshake refused: %r" % head[:300])

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self, timeout):
        """The next text message, or None after timeout seconds."""
        self.sock.settimeout(timeout)
        message = b""
        try:
            while True:
                b0, b1 = self._read(2)
                fin, opcode = b0 & 0x80, b0 & 0x0F
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read(8))[0]
                if b1 & 0x80:
                    mask = self._read(4)
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
                else:
                    payload = self._read(n)
                if opcode == 0x8:
                    raise ConnectionError("websocket closed by the browser")
                if opcode == 0x9:
                    self._send_frame(0xA, payload)
                    continue
                if opcode == 0xA:
                    continue
                message += payload
                if fin:
                    return message.decode("utf-8", "replace")
        except socket.timeout:
            if message:
                raise
            return None

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class JSError(AssertionError):
    pass


def find_chromium():
    for name in (os.environ.get("CHROMIUM") or "", "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    def __init__(self, workdir, width=1280, height=900, chromium=None, api_4xx_ok=True):
        self.workdir = workdir
        self.chromium = chromium
        self.api_4xx_ok = api_4xx_ok
        self.width, self.height = width, height
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.console = []     # every console message and log entry: (level, text)
        self.errors = []      # what makes a test fail
        self.responses = []   # (status, url, resource type)
        self.shots = []

    # ---- lifetime -------------------------------------------------------------

    def start(self, timeout=60.0):
        exe = self.chromium or find_chromium()
        if not exe:
            raise AssertionError("chromium not found (apt-get install chromium)")
        profile = os.path.join(self.workdir, "chromium-profile")
        os.makedirs(profile, exist_ok=True)
        self.log = open(os.path.join(self.workdir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
             "--user-data-dir=" + profile, "--window-size=%d,%d" % (self.width, self.height),
             "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--disable-component-update",
             "--disable-default-apps", "--mute-audio", "--password-store=basic", "--use-mock-keychain",
             "--disable-features=Translate,MediaRouter,OptimizationHints", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("chromium exited with %s; see %s" % (self.proc.returncode, self.log.name))
            try:
                with open(port_file) as f:
                    lines = f.read().split()
                if len(lines) >= 2:
                    port = int(lines[0])
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        if port is None:
            raise AssertionError("chromium wrote no DevToolsActivePort within %s s" % timeout)
        page = None
        while time.monotonic() < deadline and page is None:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
                targets = json.loads(r.read())
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                time.sleep(0.2)
        if page is None:
            raise AssertionError("chromium has no page target")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")
        return self

    def stop(self):
        if self.ws:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:
                pass
            self.ws.close()
            self.ws = None
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        if self.proc:
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- the protocol ---------------------------------------------------------

    def call(self, method, params=None, timeout=30.0):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer to %s within %s s" % (method, timeout))
            raw = self.ws.recv(left)
            if raw is None:
                continue
            msg = json.loads(raw)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg["method"], msg.get("params", {}))

    def pump(self, seconds=0.2):
        """Reads events for a while (a cheap call does it)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.call("Runtime.evaluate", {"expression": "1", "returnByValue": True})
            time.sleep(0.05)

    def _event(self, method, p):
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append((p.get("type"), text))
            if p.get("type") in ("error", "assert"):
                self.errors.append("console.%s: %s" % (p["type"], text))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            exc = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append("uncaught exception: %s (%s:%s)" % (exc, d.get("url"), d.get("lineNumber")))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append((e.get("level"), "[%s] %s %s" % (e.get("source"), e.get("text"), e.get("url", ""))))
            # 4xx answers of the API are part of the flow (they are logged by
            # the browser as network errors); statuses are checked below.
            if e.get("level") == "error" and e.get("source") != "network":
                self.errors.append("log error [%s]: %s" % (e.get("source"), e.get("text")))
        elif method == "Network.responseReceived":
            r = p.get("response", {})
            status, url, kind = r.get("status", 0), r.get("url", ""), p.get("type")
            self.responses.append((status, url, kind))
            if status >= 500:
                self.errors.append("HTTP %s from %s" % (status, url))
            elif status >= 400 and (not self.api_4xx_ok or kind not in ("XHR", "Fetch")):
                self.errors.append("HTTP %s loading %s %s" % (status, kind, url))
        elif method == "Network.loadingFailed":
            if not p.get("canceled"):
                self.errors.append("request failed: %s (%s)" % (p.get("errorText"), p.get("type")))
        elif method == "Page.javascriptDialogOpening":
            self.console.append(("dialog", p.get("message")))
            self.ws.send(json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": True}}))

    # ---- driving the page -----------------------------------------------------

    def js(self, expression, timeout=30.0):
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True, "userGesture": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise JSError("%s\nin: %s" % (d.get("exception", {}).get("description") or d.get("text"), expression))
        return r.get("result", {}).get("value")

    def goto(self, url):
        self.call("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'", what="the page to load")

    def wait(self, condition, timeout=20.0, what=None, interval=0.1):
        """Evaluates condition until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = self.js(condition)
                if v:
                    return v
                last = v
            except JSError as e:
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %s s waiting for %s (last: %r)\npage: %s" % (
                    timeout, what or condition, last, self.text("main")[:1500]))
            time.sleep(interval)

    def exists(self, selector):
        return self.js("!!document.querySelector(%s)" % json.dumps(selector))

    def text(self, selector):
        try:
            return self.js("(document.querySelector(%s) || {}).innerText || ''" % json.dumps(selector))
        except Exception as e:
            return "<%s>" % e

    def click(self, selector):
        """Clicks an element (on the next tick, so that a dialog cannot block the call)."""
        ok = self.js("""(() => { const e = document.querySelector(%s);
            if (!e) return false; e.scrollIntoView({block: 'center'}); e.focus();
            setTimeout(() => e.click(), 0); return true; })()""" % json.dumps(selector))
        if not ok:
            raise AssertionError("nothing to click at %s\npage: %s" % (selector, self.text("main")[:1500]))

    def click_text(self, selector, text):
        """Clicks the first element matching selector whose text contains text."""
        ok = self.js("""(() => { const e = [...document.querySelectorAll(%s)].find((x) => x.innerText.includes(%s));
            if (!e) return false; e.scrollIntoView({block: 'center'}); e.focus();
            setTimeout(() => e.click(), 0); return true; })()""" % (json.dumps(selector), json.dumps(text)))
        if not ok:
            raise AssertionError("no %s with text %r\npage: %s" % (selector, text, self.text("main")[:1500]))

    def fill(self, selector, value):
        """Sets a field's value the way typing does (input and change events)."""
        ok = self.js("""(() => { const e = document.querySelector(%s); if (!e) return false;
            e.focus(); const proto = Object.getPrototypeOf(e);
            Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, %s);
            e.dispatchEvent(new Event('input', {bubbles: true}));
            e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()""" % (
            json.dumps(selector), json.dumps(value)))
        if not ok:
            raise AssertionError("no field %s\npage: %s" % (selector, self.text("main")[:1500]))

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m.get("contentSize")
            params["clip"] = {"x": 0, "y": 0, "width": max(1, size["width"]),
                              "height": min(max(1, size["height"]), 6000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        with open(path, "wb") as f:
            f.write(data)
        self.shots.append(path)
        return path

    def problems(self):
        """Console errors, exceptions and failed requests seen so far (drains events first)."""
        self.pump(0.3)
        return list(self.errors)
