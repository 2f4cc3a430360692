"""SshShell.run over the real loopback sshd: bounded in bytes and time, both streams read.

stdout used to be read to EOF before stderr: a command writing more stderr than the channel
window stalled until the timeout; and nothing bounded the bytes a command could send.
"""
from __future__ import annotations

import sys
import time

import pytest

from edgeforge.errors import DeviceError
from edgeforge.targets import ssh
from tests.targets._servers import client_key, sshd  # noqa: F401


@pytest.fixture
def shell(sshd, client_key):  # noqa: F811
    s = ssh.SshShell("127.0.0.1", sshd.port, "root", identity=str(client_key),
                     known_hosts=str(sshd.known_hosts))
    yield s
    s.close()


def test_heavy_stderr_does_not_stall_and_output_is_bounded(shell, monkeypatch):
    code = "import sys; sys.stderr.write('e' * 4000000); sys.stderr.flush(); print('done')"
    t0 = time.monotonic()
    rc, out, err = shell.run([sys.executable, "-c", code], 60)
    assert (rc, out.strip(), len(err)) == (0, b"done", 4000000)
    assert time.monotonic() - t0 < 30
    monkeypatch.setattr(ssh, "MAX_OUTPUT", 1 << 20)
    with pytest.raises(DeviceError, match="wrote more than 1 MiB"):
        shell.run([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"],
                  60)
    rc, out, _ = shell.run(["sh", "-c", "exit 3"], 10)
    assert rc == 3 and out == b""


def test_a_command_that_never_ends_is_cut_at_its_timeout(shell):
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="timed out after 2 s"):
        loop = "import time\nwhile True: print(1, flush=True); time.sleep(0.05)"
        shell.run([sys.executable, "-c", loop], 2)
    assert time.monotonic() - t0 < 10
