"""Real servers on loopback for the Linux-board tests: OpenSSH and Mosquitto, plus test DIRs.

Import the fixtures into a test module (`from tests.targets._servers import sshd, ...`);
they are session-scoped, so every module shares one sshd and one broker.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgeforge.manifest import Manifest, TensorSpec, sha256_file
from tests.conftest import fixture, require


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# ---------------------------------------------------------------------------- compiled DIRs

def make_dir(model: str, dest: Path) -> Path:
    """A compiled DIR built from an int8 fixture: model.tflite + manifest.json.

    Stands in for `edgeforge compile` where the tests only need what a Linux board runs.
    """
    from ai_edge_litert.interpreter import Interpreter

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fixture(model), dest / "model.tflite")
    it = Interpreter(model_path=str(dest / "model.tflite"))

    def spec(d) -> TensorSpec:
        scale, zp = d["quantization"]
        return TensorSpec(d["name"], [int(s) for s in d["shape"]], np.dtype(d["dtype"]).name,
                          float(scale), int(zp))

    h = sha256_file(dest / "model.tflite")
    Manifest(name="model", model_sha256=h, source_sha256=h, sdk_version="test", numerics="litert",
             inputs=[spec(d) for d in it.get_input_details()],
             outputs=[spec(d) for d in it.get_output_details()], arena_bytes=0,
             arena_lower_bound_bytes=0, weight_bytes=0, ops=[]).save(dest)
    return dest


def compile_fixture(model: str, dest: Path, numerics: str = "litert") -> Path:
    """`edgeforge compile` of an int8 fixture: model.tflite, c/, manifest.json."""
    import sys
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(fixture(model)), "-o",
                        str(dest), "--numerics", numerics], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return dest


def sample_inputs(manifest: Manifest, n: int, seed: int = 0) -> np.ndarray:
    """[n, *input_shape] int8 inputs: the real KWS sample first where it fits, then random."""
    shape = manifest.inputs[0].shape
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, *shape), dtype=np.int8)
    real = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy"))
    if list(real.shape) == shape:
        x[0] = real
    return x


# ---------------------------------------------------------------------------- sshd

@dataclass
class Sshd:
    port: int
    key: Path            # client private key (authorized)
    known_hosts: Path    # holds this server's host key
    host_pub: str        # "ssh-ed25519 AAAA..."
    proc: subprocess.Popen | None
    root: Path

    @property
    def uri(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, timeout=30, capture_output=True)


def start_sshd(root: Path, client_pub: Path, port: int | None = None, *, sftp: bool = True,
               extra: str = "") -> Sshd:
    """OpenSSH on 127.0.0.1:<free port>, its own host key, key auth for one test key.

    sftp=False leaves out `Subsystem sftp`, as on dropbear/BusyBox boards; `extra` is appended
    to sshd_config."""
    require("/usr/sbin/sshd", "ssh-keygen")
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)   # privilege separation dir
    keygen(root / "host_ed25519")
    shutil.copyfile(client_pub, root / "authorized_keys")
    port = port or free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        + ("Subsystem sftp internal-sftp\n" if sftp else "")
        + "MaxStartups 50\nMaxSessions 50\nLogLevel ERROR\n" + extra)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "sshd")
    pub = (root / "host_ed25519.pub").read_text().split()
    host_pub = f"{pub[0]} {pub[1]}"
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    return Sshd(port, Path(str(client_pub)[:-4]), known, host_pub, proc, root)


@pytest.fixture(scope="session")
def client_key(tmp_path_factory) -> Path:
    require("ssh-keygen")
    key = tmp_path_factory.mktemp("client") / "id_ed25519"
    keygen(key)
    return key


@pytest.fixture(scope="session")
def sshd(tmp_path_factory, client_key):
    server = start_sshd(tmp_path_factory.mktemp("sshd"), client_key.with_suffix(".pub"))
    yield server
    stop(server.proc)


# ---------------------------------------------------------------------------- mosquitto

@dataclass
class Broker:
    port: int
    proc: subprocess.Popen

    @property
    def uri(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    require("/usr/sbin/mosquitto")
    root = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    (root / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(root / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "mosquitto")
    yield Broker(port, proc)
    stop(proc)
