"""The browser terminal's assets: tools/bundle-xterm.py joins Debian's node-xterm into one script, and Debian's
Chromium (headless, through chromium-driver) runs it under the strict Content-Security-Policy the controller sends.

The page creates a Terminal with the canvas renderer, writes `hello`, and reads it back with
`term.selectAll(); term.getSelection()` (xterm 3.8 has no public buffer API). Everything the check needs runs in
the page's own script file, so the CSP applies to it; an inline script in the page proves the policy is enforced.
A screenshot is saved next to the test's tmp files.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>xterm check</title>
<link rel="stylesheet" href="/xterm.css">
<script src="/xterm.js" defer></script>
<script src="/check.js" defer></script>
</head><body>
<div id="terminal"></div>
<pre id="result"></pre>
<pre id="violations"></pre>
<script>document.title = "inline script ran";</script>
</body></html>
"""

# Runs as a file from 'self'; reports into the page so the test reads plain DOM text.
CHECK_JS = """
"use strict";
var violations = [];
document.addEventListener("securitypolicyviolation", function (event) {
    violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
    document.getElementById("violations").textContent = violations.join("\\n");
});
window.addEventListener("load", function () {
    var term = new window.Terminal({ cols: 40, rows: 6 });
    term.open(document.getElementById("terminal"));
    term.write("hello");
    // The canvas renderer draws on the next animation frame; read after two.
    requestAnimationFrame(function () { requestAnimationFrame(function () {
        term.selectAll();
        var selection = term.getSelection();
        var canvas = document.querySelector(".xterm-text-layer");
        var drawn = 0;
        if (canvas) {
            var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            for (var i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { drawn += 1; } }
        }
        document.getElementById("result").textContent = JSON.stringify({
            selection: selection,
            renderer: term.getOption("rendererType"),
            canvases: document.querySelectorAll(".xterm-screen canvas").length,
            drawnPixels: drawn,
            fit: typeof term.fit,
        });
    }); });
});
"""


class StrictHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder with the headers the controller's UI responses carry."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The bundle built by tools/bundle-xterm.py plus the check page, on an ephemeral loopback port."""
    root = tmp_path / "site"
    subprocess.run([sys.executable, str(ROOT / "tools" / "bundle-xterm.py"), "--out", str(root)], check=True)
    (root / "index.html").write_text(PAGE)
    (root / "check.js").write_text(CHECK_JS)
    (root / "favicon.ico").write_bytes(b"")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(StrictHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_bundle_has_no_eval_and_sets_window_terminal(tmp_path: Path) -> None:
    out = tmp_path / "assets"
    subprocess.run([sys.executable, str(ROOT / "tools" / "bundle-xterm.py"), "--out", str(out)], check=True)
    script = (out / "xterm.js").read_text()
    assert "window.Terminal = Terminal;" in script
    assert "eval(" not in script and "new Function" not in script
    assert (out / "xterm.css").read_text().startswith("/**")
    # A second run with nothing changed writes nothing (make build runs it every time).
    again = subprocess.run([sys.executable, str(ROOT / "tools" / "bundle-xterm.py"), "--out", str(out)],
                           check=True, capture_output=True, text=True)
    assert again.stdout == ""


def test_terminal_draws_and_reads_back_under_strict_csp(site: str, tmp_path: Path) -> None:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(program), f"{program} missing: make deps-test installs chromium and chromium-driver"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or a driver.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=800,400", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(site)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "result").text != "")
        driver.save_screenshot(str(tmp_path / "xterm-under-strict-csp.png"))
        import json

        result = json.loads(driver.find_element(By.ID, "result").text)
        violations = driver.find_element(By.ID, "violations").text.splitlines()
        console = [entry["message"] for entry in driver.get_log("browser")]
        title = driver.title
    finally:
        driver.quit()

    assert result["selection"].strip() == "hello", result
    assert result["renderer"] == "canvas"
    assert result["canvases"] >= 3  # text, selection, link and cursor layers
    assert result["drawnPixels"] > 0, "the text layer drew nothing"
    assert result["fit"] == "function"
    # The policy is enforced: the page's inline script was refused (before check.js listened, so the console says
    # so) ...
    assert title == "xterm check"
    assert any("Executing inline script violates" in line for line in console), console
    # ... and nothing xterm did afterwards was: no inline style, no eval, no other refusal.
    assert violations == [], violations
    assert [line for line in console if "violates" in line or "Refused" in line or "Uncaught" in line] == [
        line for line in console if "Executing inline script violates" in line], console
    assert (tmp_path / "xterm-under-strict-csp.png").stat().st_size > 1000
