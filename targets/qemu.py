"""`qemu://mps2-an386`: the firmware on an emulated Cortex-M4, counted in instructions.

QEMU runs with `-icount shift=0` (one instruction per ns of virtual time, so SysTick counts
are deterministic) and its UART0 on a free loopback TCP port that SocketTransport connects
to. The emulator is always torn down: by close() / the context manager, at interpreter exit,
and on any error while opening. If it dies mid-run the socket closes and the caller gets a
DeviceError naming QEMU's exit status, never a hang.
"""
from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import tomllib
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.targets.build import board_names, ensure_built, load_board
from edgeforge.targets.serial import McuTarget, read_build_sizes
from edgeforge.targets.transport import SocketTransport, Transport

QEMU = "qemu-system-arm"
_LIVE: weakref.WeakSet[QemuTarget] = weakref.WeakSet()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@atexit.register
def _kill_all() -> None:
    for t in list(_LIVE):
        t.close()


class QemuTarget(McuTarget):
    kind = "qemu"

    def __init__(self, machine: str, kernels: str | None = None, elf: Path | None = None,
                 extra_args: list[str] | None = None, **kw: Any):
        board = load_board(machine)
        if "emulator" not in tomllib.loads(board.path.read_text()):
            emulated = [n for n in board_names()
                        if "emulator" in tomllib.loads(load_board(n).path.read_text())]
            raise EdgeforgeError(f"qemu://{machine}: QEMU does not emulate board {board.name} "
                                 f"(its profile has no emulator line); qemu:// boards: "
                                 f"{', '.join(emulated)}")
        super().__init__(board, **kw)
        self.machine = machine
        self.kernels = kernels            # "ref" | "dsp": override the board's kernel set
        self.elf = elf                    # run this image instead of DIR's (benchmarks/peers)
        self.extra_args = list(extra_args or [])   # e.g. -d exec logging (targets.cycles)
        self.proc: subprocess.Popen | None = None
        self._log: Any = None
        self.cmdline: list[str] = []

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> QemuTarget:
        machine = urlparse(uri).netloc or "mps2-an386"
        return cls(machine, **options)

    def command_line(self, elf: Path, port: int) -> list[str]:
        return [QEMU, "-M", self.machine, "-nographic", "-monitor", "none", "-icount", "shift=0",
                "-kernel", str(elf), "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
                *self.extra_args]

    def _start(self, artifact: Path) -> tuple[Transport, bool]:
        if shutil.which(QEMU) is None:
            raise EdgeforgeError(f"{QEMU} not found (apt install qemu-system-arm)")
        elf = self.elf or ensure_built(artifact, self.board.name, self.kernels)
        self.build_sizes = read_build_sizes(elf.parent)
        _LIVE.add(self)
        last = ""
        for _ in range(3):                  # a port taken between probe and bind: retry
            port = _free_port()
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as QEMU
            self.cmdline = self.command_line(elf, port)
            self.proc = subprocess.Popen(self.cmdline, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)
            try:
                return SocketTransport("127.0.0.1", port, connect_timeout=10.0), True
            except DeviceError as e:
                last = f"{e}{self._why_closed()}"
                self._kill()
        raise DeviceError(f"QEMU did not start: {last}")

    def _why_closed(self) -> str:
        if self.proc is None:
            return ""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2.0)
        rc = self.proc.poll()
        if rc is None:
            return " (QEMU still running)"
        tail = ""
        if self._log is not None:
            self._log.seek(0)
            tail = self._log.read()[-500:].decode(errors="replace").strip()
        return f" (QEMU exited with status {rc}{': ' + tail if tail else ''})"

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5.0)
        if self._log is not None:
            self._log.close()
            self._log = None

    def open(self, artifact: Path, manifest: Any) -> dict[str, Any]:
        try:
            info = super().open(artifact, manifest)
        except BaseException:
            self.close()
            raise
        return {**info, "emulator": " ".join(self.cmdline)}

    def close(self) -> None:
        super().close()
        self._kill()
        _LIVE.discard(self)
