"""Does the reference's web UI work in a real browser? Headless Chromium types a query.

The reference's ``create_app`` (FastAPI, serving ``torchgrade.course.clip_ui.PAGE``) runs
under uvicorn in a thread, over rendered scenes indexed with the shipped small CLIP. Chromium
(Debian's ``chromium``, installed by the Makefile) is driven through the DevTools protocol on
a pipe (``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4, no extra package):
the test focuses the query box, types the query as keystrokes, presses Enter, waits for the
page's fetch, and reads back the results grid. Without chromium the test skips and says so.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _reference():
    path = ROOT / "solutions" / "clip_search" / "clip_search.py"
    spec = importlib.util.spec_from_file_location("clip_search_reference_ui", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, user_dir: Path) -> None:
        to_chrome_r, self._tx = os.pipe()
        self._rx, from_chrome_w = os.pipe()
        # Park the child's ends above 10 so the dup2 onto 3 and 4 cannot clobber them.
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={user_dir}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(high_r)
        os.close(high_w)
        self._buf = b""
        self._next = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, timeout: float = 30.0) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if self.session is not None:
            msg["sessionId"] = self.session
        os.write(self._tx, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            chunk = os.read(self._rx, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buf += chunk
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        out = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        return out.get("result", {}).get("value")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        os.close(self._tx)
        os.close(self._rx)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    import uvicorn

    from torchgrade.course import clip_data, clip_ui

    ref = _reference()
    images = tmp_path_factory.mktemp("ui_images")
    captions = clip_data.write_image_folder(images, n=40, seed=4)
    engine = clip_ui.demo_engine(ref.CLIPImageSearchEngine, str(images), n=0)  # indexes them
    port = _free_port()
    config = uvicorn.Config(ref.create_app(engine), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}/", "engine": engine, "images": images,
           "captions": captions}
    srv.should_exit = True
    thread.join(10)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (the Makefile installs "
                    "Debian's chromium); the UI's browser test needs it")
def test_typed_query_shows_the_right_images(server, tmp_path):
    """Typing a caption into the query box and pressing Enter fills the grid with the
    engine's top 5 for that caption, images loaded, the captioned image among them."""
    rel, caption = sorted(server["captions"].items())[3]
    want = [r.path for r in server["engine"].search_by_text(caption, top_k=5)]
    assert str(server["images"] / rel) in want  # the shipped model finds it (recall@5)
    chrome = DevTools(tmp_path / "profile")
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        chrome.session = chrome.send("Target.attachToTarget", {"targetId": target,
                                                               "flatten": True})["sessionId"]
        chrome.send("Page.enable")
        chrome.send("Page.navigate", {"url": server["url"]})
        for _ in range(100):
            if chrome.evaluate("document.readyState") == "complete" and \
                    chrome.evaluate("!!document.getElementById('query')"):
                break
            time.sleep(0.05)
        chrome.evaluate("document.getElementById('query').focus()")
        for ch in caption:  # keystrokes, as a person types them
            chrome.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": ch, "key": ch})
            chrome.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})
        assert chrome.evaluate("document.getElementById('query').value") == caption
        enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}
        chrome.send("Input.dispatchKeyEvent", {"type": "keyDown", **enter})
        chrome.send("Input.dispatchKeyEvent", {"type": "keyUp", **enter})
        for _ in range(200):
            if chrome.evaluate("document.body.dataset.done") == "1":
                break
            time.sleep(0.05)
        shown = chrome.evaluate("[...document.querySelectorAll('figure.result')]"
                                ".map(f => f.dataset.path)")
        assert shown == want
        for _ in range(100):
            loaded = chrome.evaluate("[...document.querySelectorAll('figure.result img')]"
                                     ".every(i => i.complete && i.naturalWidth === 64)")
            if loaded:
                break
            time.sleep(0.05)
        assert loaded, "the result images did not load from /api/image"
    finally:
        chrome.close()
