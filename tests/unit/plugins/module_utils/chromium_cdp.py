"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: fd 3 in, fd 4 out,
messages separated by NUL): open a page at a given window width, measure its layout, keep a screenshot, and list
every request it made. Standard library only; the pages themselves carry no script, the measure is the browser's."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


class Browser:
    """One Chromium for many pages: ``with Browser(path, profile) as b: b.open(url, width)``."""

    def __init__(self, chromium, profile, timeout=60):
        self.timeout = timeout
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds():  # the child reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=fds,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.events = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(Exception):  # the browser may be gone already
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)

    def _read(self):
        while b"\0" not in self._buffer:
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, session=None, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            answer = self._read()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)
        raise TimeoutError(method)

    def _wait(self, session, method):
        deadline = time.monotonic() + self.timeout
        for i, event in enumerate(self.events):
            if event.get("sessionId") == session and event.get("method") == method:
                return self.events.pop(i)
        while time.monotonic() < deadline:
            event = self._read()
            if event.get("sessionId") == session and event.get("method") == method:
                return event
            self.events.append(event)
        raise TimeoutError(method)

    def open(self, url, width=1366, height=900, screenshot=None):
        """Open ``url`` in a new tab ``width`` CSS pixels wide: {scroll_width, scroll_height, title, requests}, and
        with ``screenshot`` (a path) the whole page as PNG."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Network.enable", session)
        self.send("Page.enable", session)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        self.send("Page.navigate", session, url=url)
        self._wait(session, "Page.loadEventFired")
        measure = self.send(
            "Runtime.evaluate",
            session,
            returnByValue=True,
            expression=(
                "JSON.stringify({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight,"
                " t: document.title})"
            ),
        )
        found = json.loads(measure["result"]["value"])
        requests = sorted(
            {
                e["params"]["request"]["url"]
                for e in self.events
                if e.get("sessionId") == session and e.get("method") == "Network.requestWillBeSent"
            }
        )
        if screenshot:
            shot = self.send(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": min(found["h"], 16000), "scale": 1},
            )
            with open(screenshot, "wb") as handle:
                handle.write(base64.b64decode(shot["data"]))
        self.send("Target.closeTarget", targetId=target)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        return {"scroll_width": found["w"], "scroll_height": found["h"], "title": found["t"], "requests": requests}
