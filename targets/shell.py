"""How the host runs processes and moves files on a Linux board: `Pipe` (a running
program's stdin/stdout, every read bounded in bytes and time) and `Shell` (start programs,
put / get / remove files), with `LocalShell` for this machine (subprocess + shutil);
`targets.ssh.SshShell` is the same over paramiko. (targets.transport is the other kind of
link: raw bytes to a microcontroller over a serial port or QEMU's UART socket.)
"""
from __future__ import annotations

import io
import os
import selectors
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from edgeforge.errors import DeviceError

MAX_LINE = 256 << 20    # one agent reply (base64 outputs): more is a broken agent, not data


class Pipe(ABC):
    """A running agent session: line-oriented, every read bounded by a timeout."""

    def __init__(self, where: str):
        self.where = where
        self._buf = b""

    @abstractmethod
    def _recv(self, timeout: float) -> bytes:
        """Some bytes, b"" at EOF; raise TimeoutError when nothing came in `timeout`."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def stderr_tail(self) -> str: ...

    @abstractmethod
    def close(self) -> None: ...

    def readline(self, timeout: float) -> bytes:
        """One reply line, bounded by `timeout` and by MAX_LINE bytes."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise DeviceError(f"{self.where}: agent sent {len(self._buf):,} bytes without "
                                  "ending its reply line")
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(f"{self.where}: agent did not answer within {timeout:.0f} s")
            try:
                chunk = self._recv(left)
            except (TimeoutError, OSError) as e:
                if isinstance(e, TimeoutError) or "timed out" in str(e):
                    continue
                raise DeviceError(f"{self.where}: agent connection lost: {e}") from None
            if not chunk:
                tail = self.stderr_tail() or "no output"
                raise DeviceError(f"{self.where}: agent exited: {tail}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line


class Shell(ABC):
    """How the host reaches a Linux machine: run a command, start one, move files."""

    where: str = "?"

    @abstractmethod
    def run(self, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]: ...

    @abstractmethod
    def spawn(self, argv: list[str]) -> Pipe: ...

    @abstractmethod
    def home(self) -> str: ...

    @abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def put(self, data: Path | bytes, remote: str, progress: Callable[[int, int], None] | None
            = None) -> None:
        """Write `remote` (caller guarantees it is a temporary name)."""

    @abstractmethod
    def rename(self, src: str, dst: str) -> None:
        """Atomically replace dst with src."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Delete a file; a missing file is fine."""

    def close(self) -> None:
        pass


class _LocalPipe(Pipe):
    def __init__(self, argv: list[str]):
        super().__init__("local")
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the pipe
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._err)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.p.stdout, selectors.EVENT_READ)

    def _recv(self, timeout: float) -> bytes:
        if not self._sel.select(timeout):
            raise TimeoutError
        return os.read(self.p.stdout.fileno(), 65536)

    def write(self, data: bytes) -> None:
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DeviceError(f"local: agent exited: {self.stderr_tail()}") from None

    def stderr_tail(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace").strip()[-800:]

    def close(self) -> None:
        try:
            self.p.stdin.close()
            self.p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(timeout=5)
        self._sel.close()
        self.p.stdout.close()
        self._err.close()


class LocalShell(Shell):
    where = "local"

    def run(self, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        try:
            r = subprocess.run(argv, capture_output=True, timeout=timeout,
                               stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"local: {argv[1:3]} timed out after {timeout:.0f} s") from None
        except OSError as e:
            raise DeviceError(f"local: cannot run {argv[0]}: {e}") from None
        return r.returncode, r.stdout, r.stderr

    def spawn(self, argv: list[str]) -> Pipe:
        return _LocalPipe(argv)

    def home(self) -> str:
        return os.path.expanduser("~")

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def put(self, data, remote, progress=None) -> None:
        src = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
        total = len(data) if isinstance(data, bytes) else os.path.getsize(data)
        with src, open(remote, "wb") as dst:
            sent = 0
            for block in iter(lambda: src.read(1 << 16), b""):
                dst.write(block)
                sent += len(block)
                if progress:
                    progress(sent, total)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


