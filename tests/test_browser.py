"""The report in a real browser: headless Chromium driven over the DevTools protocol (aiohttp's
websocket client). It must load with no console error, no failed or external request, and
every chart present with a decoded image (or its no-data sentence).

Set REPORT_SCREENSHOTS=DIR to keep the full-page screenshots (full.png, empty.png,
client-bound.png) to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fake_run import build_client_bound_run, build_empty_run

from harness.analysis.analyse import analyse
from harness.report.charts import CHART_IDS
from harness.report.html import write_report
from harness.store import load_run

aiohttp = pytest.importorskip("aiohttp")

CHROMIUM = Path("/usr/bin/chromium")
START_TIMEOUT_S = 30.0
STEP_TIMEOUT_S = 30.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium) so the report cannot be "
    "opened in a real browser",
)

# What the page reports about itself once loaded: every chart and every image.
PROBE = """
(() => {
  const charts = {};
  for (const id of %s) {
    const el = document.getElementById(id);
    if (!el) { charts[id] = null; continue; }
    const img = el.querySelector("img");
    const none = el.querySelector(".no-data");
    charts[id] = {
      img: img ? {complete: img.complete, w: img.naturalWidth, h: img.naturalHeight,
                  shownW: img.getBoundingClientRect().width, alt: img.alt,
                  src: img.getAttribute("src").slice(0, 22)} : null,
      noData: none ? none.textContent.trim() : null,
    };
  }
  const images = Array.from(document.images).map(i => ({w: i.naturalWidth, ok: i.complete}));
  const resources = performance.getEntriesByType("resource").map(r => r.name.slice(0, 40));
  return JSON.stringify({charts, images, resources, title: document.title,
                         height: document.documentElement.scrollHeight,
                         width: document.documentElement.scrollWidth,
                         text: document.body.innerText.length});
})()
"""


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_str(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), STEP_TIMEOUT_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection closed during {method}: {msg.type}")
            data = json.loads(msg.data)
            if data.get("id") == my_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    async def wait_event(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event["method"] == method:
                return event
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), STEP_TIMEOUT_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection closed waiting for {method}")
            data = json.loads(msg.data)
            if "method" in data:
                self.events.append(data)
                if data["method"] == method:
                    return data

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, failed loads, log errors."""
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {p.get('args')}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                entry = p["entry"]
                out.append(f"log {entry.get('level')}: {entry.get('text')} {entry.get('url', '')}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')}")
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"][:60]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]


@contextlib.contextmanager
def chromium(profile: Path):
    """Headless Chromium with a private profile and DevTools on a free port; killed (its whole
    process group) on exit."""
    argv = [
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        "--remote-allow-origins=*",
        f"--user-data-dir={profile}",
        "--window-size=1366,900",
        "about:blank",
    ]
    log = open(profile.parent / "chromium.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None:
                pytest.fail(
                    f"chromium exited with {proc.returncode}: "
                    f"{(profile.parent / 'chromium.log').read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"chromium wrote no DevToolsActivePort in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


async def inspect(port: int, url: str, screenshot: Path) -> tuple[dict[str, Any], DevTools]:
    timeout = aiohttp.ClientTimeout(total=STEP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            dt = DevTools(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await dt.call(f"{domain}.enable")
            await dt.call("Page.navigate", url=url)
            await dt.wait_event("Page.loadEventFired")
            result = await dt.call(
                "Runtime.evaluate", expression=PROBE % json.dumps(CHART_IDS), returnByValue=True
            )
            state = json.loads(result["result"]["value"])
            metrics = await dt.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            shot = await dt.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            import base64

            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return state, dt


def open_in_browser(html: Path, tmp_path: Path, name: str) -> tuple[dict[str, Any], DevTools, Path]:
    profile = tmp_path / "profile"
    profile.mkdir()
    shot = tmp_path / "report.png"
    with chromium(profile) as port:
        state, dt = asyncio.run(
            asyncio.wait_for(inspect(port, html.resolve().as_uri(), shot), 3 * STEP_TIMEOUT_S)
        )
    if os.environ.get("REPORT_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["REPORT_SCREENSHOTS"]) / f"{name}.png")
    return state, dt, shot


def test_report_renders_in_chromium(fake_run, tmp_path: Path) -> None:
    fake = fake_run
    html = write_report(analyse(load_run(fake.directory)), tmp_path / "report" / "index.html")
    state, dt, shot = open_in_browser(html, tmp_path, "full")

    assert dt.problems() == []
    # Nothing but the file itself is fetched: the report works offline.
    assert all(u.startswith(("file:", "data:")) for u in dt.requests()), dt.requests()
    assert all(r.startswith("data:") for r in state["resources"]), state["resources"]
    assert "20261122T113000Z" in state["title"]
    for chart_id in CHART_IDS:
        chart = state["charts"][chart_id]
        assert chart is not None, f"{chart_id} missing from the page"
        img = chart["img"]
        assert img is not None, f"{chart_id} has no image: {chart['noData']}"
        assert img["complete"] and img["w"] > 200 and img["h"] > 100, (chart_id, img)
        assert img["shownW"] > 200 and img["alt"], (chart_id, img)
        assert img["src"].startswith("data:image/png"), (chart_id, img)
    assert all(i["ok"] and i["w"] > 0 for i in state["images"])
    assert state["width"] <= 1366 + 2, "the page scrolls sideways"
    assert shot.stat().st_size > 50_000


def test_empty_report_renders_in_chromium(tmp_path: Path) -> None:
    fake = build_empty_run(tmp_path / "results" / "run")
    html = write_report(analyse(load_run(fake.directory)), tmp_path / "report" / "index.html")
    state, dt, _ = open_in_browser(html, tmp_path, "empty")

    assert dt.problems() == []
    assert state["images"] == []
    for chart_id in CHART_IDS:
        chart = state["charts"][chart_id]
        assert chart is not None and chart["img"] is None and chart["noData"], chart_id


def test_client_bound_report_renders_in_chromium(tmp_path: Path) -> None:
    """Nothing ranked, everything flagged: the flagged trials are drawn, and the charts that
    cannot be (ratios, one worker, no open loop) say why."""
    fake = build_client_bound_run(tmp_path / "results" / "run")
    html = write_report(analyse(load_run(fake.directory)), tmp_path / "report" / "index.html")
    state, dt, _ = open_in_browser(html, tmp_path, "client-bound")

    assert dt.problems() == []
    assert all(u.startswith(("file:", "data:")) for u in dt.requests()), dt.requests()
    drawn = {
        "chart-throughput-cores",
        "chart-latency-percentiles",
        "chart-efficiency",
        "chart-ctxt",
        "chart-series",
    }
    for chart_id in CHART_IDS:
        chart = state["charts"][chart_id]
        assert chart is not None, f"{chart_id} missing from the page"
        if chart_id in drawn:
            img = chart["img"]
            assert img is not None, f"{chart_id} has no image: {chart['noData']}"
            assert img["complete"] and img["w"] > 200 and img["h"] > 100, (chart_id, img)
        else:
            assert chart["img"] is None and chart["noData"], chart_id
    assert all(i["ok"] and i["w"] > 0 for i in state["images"])
    assert state["width"] <= 1366 + 2, "the page scrolls sideways"
