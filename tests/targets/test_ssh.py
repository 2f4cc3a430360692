"""SSH Linux-board path against a real OpenSSH server on loopback (see _servers.py).

The "board" is this machine reached through sshd: deploy and profile the MLPerf int8
fixtures and check every output byte against LiteRT's reference kernels on the host.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.runtime.peers import LitertRunner
from edgeforge.targets import open_target
from edgeforge.targets.ssh import HostKeyError, SshShell, SshTarget, redact
from tests.targets._servers import client_key, make_dir, sample_inputs, sshd  # noqa: F401

QUOTED = "it's a \"dir\""     # a remote base path that breaks any unquoted shell command


def host_reference(model: Path, samples: np.ndarray) -> list[list[np.ndarray]]:
    """LiteRT's reference kernels on each sample (what the agent's outputs must equal)."""
    runner = LitertRunner(model)
    return [runner.run([x]) for x in samples]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compiled")
    return {name: make_dir(f"{name}_int8.tflite", root / name)
            for name in ("kws_ds_cnn", "ic_resnet8")}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("board") / QUOTED / ".edgeforge"


def connect(sshd, client_key, base, **kw) -> SshTarget:  # noqa: F811
    opts = {"identity": str(client_key), "known_hosts": str(sshd.known_hosts),
            "python": sys.executable, "base": str(base)}
    opts.update(kw)
    return open_target(sshd.uri, **opts)


def test_unknown_host_key_rejected_then_recorded(sshd, client_key, tmp_path):  # noqa: F811
    known = tmp_path / "ssh" / "known_hosts"
    with pytest.raises(HostKeyError, match=r"unknown host key .*SHA256:.*--accept-new-host-key"):
        SshShell("127.0.0.1", sshd.port, "root", identity=str(client_key), known_hosts=str(known))
    assert not known.exists(), "a rejected key must not be recorded"

    shell = SshShell("127.0.0.1", sshd.port, "root", identity=str(client_key),
                     known_hosts=str(known), accept_new_host_key=True)
    shell.close()
    assert known.read_text().split() == [f"[127.0.0.1]:{sshd.port}", *sshd.host_pub.split()]

    # now known: connects without the flag, and records nothing twice
    SshShell("127.0.0.1", sshd.port, "root", identity=str(client_key),
             known_hosts=str(known)).close()
    assert len(known.read_text().splitlines()) == 1


def test_changed_host_key_is_an_error(sshd, client_key, tmp_path):  # noqa: F811
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True,
                   timeout=30)
    known = tmp_path / "known_hosts"
    kind, b64 = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {b64}\n")
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        SshShell("127.0.0.1", sshd.port, "root", identity=str(client_key), known_hosts=str(known),
                 accept_new_host_key=True)   # the flag never overrides a CHANGED key


def test_bad_key_and_dead_port_are_clear_errors(sshd, tmp_path):  # noqa: F811
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True, timeout=30)
    with pytest.raises(DeviceError, match="authentication failed"):
        SshShell("127.0.0.1", sshd.port, "root", identity=str(stranger),
                 known_hosts=str(sshd.known_hosts))
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase!", "-f", str(locked)],
                   check=True, timeout=30)
    with pytest.raises(DeviceError, match="is encrypted"):
        SshShell("127.0.0.1", sshd.port, "root", identity=str(locked),
                 known_hosts=str(sshd.known_hosts))
    with pytest.raises(DeviceError, match="authentication failed") as e:   # right passphrase,
        SshShell("127.0.0.1", sshd.port, "root", identity=str(locked),  # key not authorized
                 known_hosts=str(sshd.known_hosts), passphrase="pass phrase!")
    assert "pass phrase" not in str(e.value)
    with pytest.raises(EdgeforgeError, match="bad SSH target"):
        SshTarget.from_uri("ssh://")
    assert redact("ssh://me:s3cret@h:22") == "ssh://me:***@h:22"


@pytest.mark.parametrize("name", ["kws_ds_cnn", "ic_resnet8"])
def test_deploy_and_profile_outputs_match_reference(sshd, client_key, base, dirs, name):  # noqa: F811
    artifact = dirs[name]
    manifest = Manifest.load(artifact)
    samples = sample_inputs(manifest, 3)
    with connect(sshd, client_key, base) as target:
        info = target.open(artifact, manifest)
        got = [target.infer([x]) for x in samples]
        m = target.benchmark(runs=5, warmup=1)
    assert info["arch"] and info["python"] and info["board"]["family"] in (
        "generic", "jetson", "raspberrypi")
    for g, r in zip(got, host_reference(artifact / "model.tflite", samples)):
        assert len(g) == len(r)
        for a, b in zip(g, r):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert len(m.latency_us) == 5 and all(t > 0 for t in m.latency_us)
    assert m.extra["runtime"] == "ai_edge_litert" and m.extra["reference_kernels"] is True
    assert m.extra["peak_rss_kb"] > 1000 and isinstance(m.extra["max_lsb_diff"], int)
    assert target.numerics == "litert"

    # the files landed under the quoted path exactly (loopback: same filesystem)
    rdir = base / "models" / manifest.model_sha256[:16]
    assert (rdir / "model.tflite").read_bytes() == (artifact / "model.tflite").read_bytes()
    assert (rdir / ".complete").exists()

    # second deploy: nothing changed, nothing uploaded
    with connect(sshd, client_key, base) as target:
        again = target.deploy(artifact, manifest)
    assert again["uploaded"] == [] and "model.tflite" in again["unchanged"]


def test_interrupted_deploy_leaves_device_usable_and_is_repaired(sshd, client_key, base,  # noqa: F811
                                                                  dirs):
    kws, resnet = dirs["kws_ds_cnn"], dirs["ic_resnet8"]
    kws_m, res_m = Manifest.load(kws), Manifest.load(resnet)
    with connect(sshd, client_key, base) as target:
        target.deploy(kws, kws_m)
    rdir = base / "models" / res_m.model_sha256[:16]
    if rdir.exists():   # an earlier test deployed it: start from a clean slate
        subprocess.run(["rm", "-rf", str(rdir)], check=True)

    target = connect(sshd, client_key, base)
    size = (resnet / "model.tflite").stat().st_size

    def cut(rel: str, sent: int, total: int) -> None:
        if rel == "model.tflite" and sent > total // 2:
            target.shell.client.close()   # the link drops mid-upload

    with pytest.raises(DeviceError):
        target.deploy(resnet, res_m, progress=cut)
    target.close()

    assert not (rdir / ".complete").exists()
    assert not (rdir / "model.tflite").exists(), "a half upload must never have the final name"
    assert any(p.name.startswith("model.tflite.part-") and p.stat().st_size < size
               for p in rdir.iterdir()), "the interrupted upload stays a temp file"

    samples = sample_inputs(kws_m, 2)
    with connect(sshd, client_key, base) as target:   # the device still works
        assert target.agent("hashes", "--dir", str(rdir))["complete"] is False
        with pytest.raises(DeviceError, match="incomplete deploy"):   # refused, not half-run
            target.agent("session", "--require-complete", "--model", str(rdir / "model.tflite"))
        target.open(kws, kws_m)
        assert all(np.array_equal(target.infer([x])[0], r[0])
                   for x, r in zip(samples, host_reference(kws / "model.tflite", samples)))

        fixed = target.deploy(resnet, res_m)           # and the next deploy repairs
        assert "model.tflite" in fixed["uploaded"]
        assert any(r.startswith("model.tflite.part-") for r in fixed["removed"])
        x = sample_inputs(res_m, 1)
        target.open(resnet, res_m)
        assert np.array_equal(target.infer([x[0]])[0],
                              host_reference(resnet / "model.tflite", x)[0][0])
    assert (rdir / ".complete").exists()
    assert not [p for p in rdir.iterdir() if ".part-" in p.name]


def test_cli_deploy_json(sshd, client_key, base, dirs, tmp_path):  # noqa: F811
    uri = f"{sshd.uri}?python={quote(sys.executable)}&dir={quote(str(base / 'cli'))}"
    cmd = [sys.executable, "-m", "edgeforge.cli", "deploy", str(dirs["kws_ds_cnn"]), "--target", uri,
           "--identity", str(client_key), "--known-hosts", str(sshd.known_hosts), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert sorted(res["uploaded"]) == ["manifest.json", "model.tflite"]
    assert res["dir"].startswith(str(base / "cli"))
    assert res["device"]["runtimes"][0]["name"] == "ai_edge_litert"

    # an unknown host through the CLI: one clear line, exit 2, no traceback
    r = subprocess.run(cmd[:-3] + ["--known-hosts", str(tmp_path / "empty")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "unknown host key" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["kws_ds_cnn", "ic_resnet8"])
def test_cli_profile_over_ssh(sshd, client_key, base, dirs, name, tmp_path):  # noqa: F811
    """`edgeforge profile DIR --target ssh://...`: targets/profile.py checks every output."""
    artifact = dirs[name]
    x = tmp_path / "x.npy"
    np.save(x, sample_inputs(Manifest.load(artifact), 3, seed=7))
    uri = f"{sshd.uri}?python={quote(sys.executable)}&dir={quote(str(base))}"
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(artifact), "--target", uri,
                        "--identity", str(client_key), "--known-hosts", str(sshd.known_hosts),
                        "--inputs", str(x), "--runs", "4", "--json"],
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["outputs_match_reference"] is True and rep["samples"] == 3
    assert rep["latency_us"]["count"] == 4 and rep["runtime"] == "ai_edge_litert"
    assert rep["peak_rss_kb"] > 0 and rep["max_lsb_diff"] is not None
