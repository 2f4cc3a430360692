"""Honest memory: kernel working sets live in the planned arena (ctx scratch sized by
ef_<kernel>_scratch_size, sdk/plan/scratch.py), not on the stack. Every function of both
kernel sets, compiled for the Cortex-M4 as the firmware builds them, has a static frame
under 1 KiB (gcc -fstack-usage), so the measured stack peak stays call frames only; a
kernel that needs kilobytes must take them from its ctx."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT, require

INC = ROOT / "runtime" / "c"
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2"]
FRAME_MAX = 1024


@pytest.mark.parametrize("kernel_set", ["ref", "dsp"])
def test_no_kernel_keeps_its_working_set_on_the_stack(tmp_path, kernel_set):
    require("arm-none-eabi-gcc")
    srcs = sorted((INC / "kernels" / kernel_set).glob("*.c"))
    r = subprocess.run(["arm-none-eabi-gcc", *M4, "-std=c99", "-fstack-usage", "-c",
                        "-I", str(INC), "-I", str(INC / "kernels" / "ref"), *map(str, srcs)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [ln.split("\t") for p in tmp_path.glob("*.su") for ln in p.read_text().splitlines()]
    assert len(rows) >= len(srcs)
    big = [(fn, int(n), kind) for fn, n, kind in rows if int(n) >= FRAME_MAX or kind != "static"]
    assert not big, big
