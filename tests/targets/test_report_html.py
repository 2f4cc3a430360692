"""`edgeforge report` and `profile --trace` (issue 14.3): the digits model profiled on QEMU,
the page opened in headless Chromium (it renders, no console message, the screenshot shows
the arena timeline's boxes), the trace events checked against the profile."""
from __future__ import annotations

import colorsys
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeforge.codegen.visual import _colour
from edgeforge.compiler import compile_model
from tests.conftest import ROOT, require

DIGITS = ROOT / "examples" / "digits"
EF = [sys.executable, "-m", "edgeforge.cli"]
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", "--window-size=1100,1400"]


def _chromium(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """(stdout, console lines) of headless Chromium on a file:// page."""
    r = subprocess.run([*CHROMIUM, f"--user-data-dir={tmp / 'profile'}", *extra,
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    require("qemu-system-arm", "arm-none-eabi-gcc")
    root = tmp_path_factory.mktemp("report")
    d = compile_model(DIGITS / "digits.onnx", root / "digits", calib=DIGITS / "calib.npz").dir
    trace = root / "trace.json"
    r = subprocess.run([*EF, "profile", str(d), "--runs", "2", "--trace", str(trace), "--json"],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    return {"dir": d, "profile": json.loads(r.stdout), "trace": trace, "root": root}


def test_profile_trace_is_chrome_trace_events(profiled):
    prof, ev = profiled["profile"], json.loads(profiled["trace"].read_text())
    ops = [e for e in ev["traceEvents"] if e["ph"] == "X"]
    assert [e["args"]["index"] for e in ops] == [p["index"] for p in prof["per_op"]]
    for e in ops:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid"} <= set(e)
    for a, b in itertools.pairwise(ops):                    # back to back, never overlapping
        assert b["ts"] == pytest.approx(a["ts"] + a["dur"], abs=1e-3)
    # instructions at the profile's clock, one per cycle: the durations add up to the counts
    unit, clock = prof["count_unit"], prof["clock_hz"]
    total = sum(p[unit] for p in prof["per_op"]) / clock * 1e6
    assert sum(e["dur"] for e in ops) == pytest.approx(total, rel=1e-6)
    assert (profiled["dir"] / "profile.json").is_file()       # the last profile, for report


def test_report_renders_in_chromium_without_console_messages(profiled, tmp_path):
    require("chromium")
    page = tmp_path / "report.html"
    r = subprocess.run([*EF, "report", str(profiled["dir"]), "-o", str(page), "--json"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sections"] == ["arena", "per_op", "sqnr", "ops"]
    html = page.read_text()
    assert not re.search(r"(src|href)=|<script|@import|url\(", html)   # self-contained
    man = json.loads((profiled["dir"] / "manifest.json").read_text())
    dom, console = _chromium(page, tmp_path, "--dump-dom")
    assert console == [], console
    assert dom.count('class="tensor"') == len(man["plan"])
    assert dom.count('<rect class="bar') == len(profiled["profile"]["per_op"]) + len(
        json.loads((profiled["dir"] / "report.json").read_text())["sqnr"])
    # the check can fail: a page that logs to the console is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert any("boom" in ln for ln in _chromium(bad, tmp_path, "--dump-dom")[1])


def test_report_screenshot_shows_the_timeline(profiled, tmp_path):
    require("chromium", "PIL")
    from PIL import Image
    page = tmp_path / "report.html"
    subprocess.run([*EF, "report", str(profiled["dir"]), "-o", str(page)], check=True,
                   capture_output=True, timeout=120)
    shot = tmp_path / "shot.png"
    _, console = _chromium(page, tmp_path, f"--screenshot={shot}")
    assert console == [] and shot.is_file()
    img = Image.open(shot).convert("RGB")
    top = img.crop((0, 0, img.width, img.height // 2))       # the timeline is the first figure
    seen = {c for _, c in top.getcolors(1 << 20)}
    man = json.loads((profiled["dir"] / "manifest.json").read_text())
    big = [r["tensor"] for r in man["plan"] if r["size"] >= 200]
    assert big

    def rgb(css: str) -> tuple[int, int, int]:
        h, s, li = (float(v) for v in re.findall(r"[\d.]+", css))
        return tuple(round(255 * c) for c in colorsys.hls_to_rgb(h / 360, li / 100, s / 100))

    for name in big:                                         # every large box is painted
        want = rgb(_colour(name))
        assert any(all(abs(a - b) <= 3 for a, b in zip(want, c)) for c in seen), name


def test_report_without_a_profile_says_how_to_get_one(tmp_path):
    d = compile_model(DIGITS / "digits.onnx", tmp_path / "d", calib=DIGITS / "calib.npz").dir
    r = subprocess.run([*EF, "report", str(d)], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "no profile of this DIR yet" in r.stdout and (d / "report.html").is_file()
    assert "edgeforge profile DIR" in (d / "report.html").read_text()
    r = subprocess.run([*EF, "report", str(tmp_path / "nope")], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_profile_json_has_kernels_init_and_cold_first_inference(profiled):
    r = profiled["profile"]
    build = json.loads((profiled["dir"] / "fw" / "mps2-an386" / "build.json").read_text())
    man = json.loads((profiled["dir"] / "manifest.json").read_text())
    assert r["kernels"] == {"set": build["kernels"], "symbols": man["extra"]["kernels"]}
    assert r["init_ms"] > 0 and r["cold_first_inference_us"] > 0
    # --clock-mhz: the same instruction counts, as time at another clock
    out = subprocess.run([*EF, "profile", str(profiled["dir"]), "--runs", "2", "--clock-mhz",
                          "100", "--json"], capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr
    fast = json.loads(out.stdout)
    assert fast["latency_basis"].startswith("instructions at 100 MHz")
    assert fast["latency_us"]["mean"] == pytest.approx(fast["instructions"]["mean"] / 100)
    assert fast["cold_first_inference_us"] == pytest.approx(
        r["cold_first_inference_us"] * 25 / 100, rel=0.05)
    bad = subprocess.run([*EF, "profile", str(profiled["dir"]), "--target", "local",
                          "--clock-mhz", "100"], capture_output=True, text=True, timeout=600,
                         check=False)
    assert bad.returncode == 2 and "--clock-mhz needs a target that counts" in bad.stderr


def test_profile_inputs_in_the_onnx_models_own_layout(profiled, tmp_path):
    """--inputs as the ONNX model declares them (N x 1 x 8 x 8), not only the IR's NHWC."""
    import numpy as np
    man = json.loads((profiled["dir"] / "manifest.json").read_text())
    assert man["extra"]["onnx_layout"] == {"input": [0, 2, 3, 1]}
    spec = man["inputs"][0]
    x = np.load(DIGITS / "test.npz")["x"][:3]
    q = np.clip(np.round(x / spec["scale"]) + spec["zero_point"], -128, 127).astype(np.int8)
    np.save(tmp_path / "nchw.npy", q.transpose(0, 3, 1, 2))
    np.save(tmp_path / "nhwc.npy", q)
    from edgeforge.targets.profile import profile
    outs = {}
    for f in ("nchw", "nhwc"):
        rep = profile(profiled["dir"], "qemu://mps2-an386", runs=1, warmup=0,
                      inputs=tmp_path / f"{f}.npy", keep_outputs=True)
        assert rep["samples"] == 3 and rep["outputs_match_reference"] is True
        outs[f] = [o[0].tobytes() for o in rep["outputs"]]
    assert outs["nchw"] == outs["nhwc"]               # the same images, whichever layout
