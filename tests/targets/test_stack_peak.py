"""Honest RAM on the emulated M4: the firmware paints its stack before INVOKE and reports the
high-water mark (STACK, firmware_templates/PROTOCOL.md); `profile` turns it into
ram = {arena, data_bss, stack_peak, total}."""
from __future__ import annotations

import pytest

from edgeforge.errors import DeviceError
from edgeforge.targets import commands
from edgeforge.targets.profile import profile
from edgeforge.targets.protocol import Status
from tests.conftest import ROOT, fixture, require
from tests.targets.test_qemu import compile_fixture


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    root = tmp_path_factory.mktemp("stack")
    out = {}
    for name, src in (("ad", ROOT / "tests" / "models" / "fc_autoencoder_int8.tflite"),
                      ("kws", fixture("kws_ds_cnn_int8.tflite"))):
        d = compile_fixture(src, root / name, "tflm")
        out[name] = profile(d, "qemu://mps2-an386", runs=1, warmup=0)
    return out


def test_profile_reports_ram_with_the_measured_stack(reports):
    for name, r in reports.items():
        ram = r["ram"]
        assert set(ram) >= {"arena", "data_bss", "stack_peak", "total"}
        assert ram["total"] == ram["arena"] + ram["data_bss"] + ram["stack_peak"]
        assert ram["arena"] == r["device"]["arena_bytes"]
        assert 0 < ram["stack_peak"] < ram["stack_reserved"], (name, ram)


def test_stack_peak_sees_the_kernels_locals(reports):
    """The kernels' working sets (im2col columns, expanded filters, tables) are planned in
    the arena (plan.scratch), so the stack holds call frames only: KWS's convolution frames
    still show above the autoencoder's packed FC, and both stay far below the ~10 KB the DSP
    depthwise kernels kept on the stack before."""
    ad, kws = reports["ad"]["ram"]["stack_peak"], reports["kws"]["ram"]["stack_peak"]
    assert ad < kws < 2048, (ad, kws)


class _Dev:
    """A device whose STACK reply is fixed (the parser's checks, without firmware)."""

    def __init__(self, reply: bytes | None):
        self.reply = reply

    def check(self, op, payload=b"", timeout=None):
        if self.reply is None:
            raise DeviceError("STACK: the firmware does not know this command", op="STACK",
                              status=Status.UNKNOWN_CMD)
        return self.reply


def test_stack_reply_is_checked():
    assert commands.stack_usage(_Dev(bytes.fromhex("00400000" "50010000"))) == (16384, 336)
    assert commands.stack_usage(_Dev(None)) is None          # firmware without STACK
    for bad in (b"\x00" * 7, bytes.fromhex("00010000" "00020000")):   # short; peak > stack
        with pytest.raises(DeviceError):
            commands.stack_usage(_Dev(bad))
