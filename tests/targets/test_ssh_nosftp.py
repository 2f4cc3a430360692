"""A board whose sshd has no SFTP subsystem (dropbear/BusyBox, OpenWrt, Yocto): real OpenSSH
on loopback with `Subsystem sftp` left out of sshd_config. Files then move over exec channels
(`cat > FILE` + sha256); a server that cannot do that either is one error naming SFTP."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgeforge.errors import DeviceError
from edgeforge.manifest import Manifest
from edgeforge.runtime.peers import LitertRunner
from edgeforge.targets import open_target
from tests.targets._servers import client_key, make_dir, sample_inputs, start_sshd, stop  # noqa: F401

QUOTED = "no sftp's \"dir\" $HOME"     # breaks any unquoted command on the fallback path


@pytest.fixture(scope="module")
def nosftp(tmp_path_factory, client_key):  # noqa: F811
    server = start_sshd(tmp_path_factory.mktemp("sshd_nosftp"), client_key.with_suffix(".pub"),
                        sftp=False)
    yield server
    stop(server.proc)


def connect(server, key, base):
    return open_target(server.uri, identity=str(key), known_hosts=str(server.known_hosts),
                       python=sys.executable, base=str(base))


def test_sftp_is_really_missing(nosftp, client_key):  # noqa: F811
    r = subprocess.run(["sftp", "-b", "-", "-i", str(client_key), "-P", str(nosftp.port),
                        "-o", f"UserKnownHostsFile={nosftp.known_hosts}",
                        "-o", "StrictHostKeyChecking=yes", "root@127.0.0.1"],
                       input="pwd\n", capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode != 0, "this sshd must refuse the sftp subsystem"


def test_deploy_and_profile_without_sftp(nosftp, client_key, tmp_path):  # noqa: F811
    artifact = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    manifest = Manifest.load(artifact)
    base = tmp_path / QUOTED / ".edgeforge"
    samples = sample_inputs(manifest, 2)
    with connect(nosftp, client_key, base) as target:
        target.open(artifact, manifest)
        got = [target.infer([x]) for x in samples]
        m = target.benchmark(runs=3, warmup=1)
        assert target.shell.sftp is None and "Channel closed" in target.shell.sftp_missing
    ref = LitertRunner(artifact / "model.tflite")
    for g, x in zip(got, samples):
        assert all(np.array_equal(a, b) for a, b in zip(g, ref.run([x])))
    assert len(m.latency_us) == 3
    rdir = base / "models" / manifest.model_sha256[:16]
    assert (rdir / "model.tflite").read_bytes() == (artifact / "model.tflite").read_bytes()
    assert (rdir / ".complete").exists()
    assert not list(rdir.glob("*.part-*")), "temporary upload names renamed away"

    # unchanged: nothing uploaded; a changed file is uploaded again and checked
    (rdir / "manifest.json").write_text("{}")
    with connect(nosftp, client_key, base) as target:
        again = target.deploy(artifact, manifest)
    assert again["uploaded"] == ["manifest.json"]
    assert (rdir / "manifest.json").read_bytes() == (artifact / "manifest.json").read_bytes()


def test_no_sftp_and_no_exec_is_one_error_naming_sftp(client_key, tmp_path):  # noqa: F811
    # every command the fallback needs fails, as on a board with no POSIX shell tools
    server = start_sshd(tmp_path / "sshd", client_key.with_suffix(".pub"), sftp=False,
                        extra="ForceCommand /bin/false\n")
    try:
        artifact = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
        with pytest.raises(DeviceError) as e, connect(server, client_key, tmp_path / "b") as t:
            t.deploy(artifact)
        msg = str(e.value)
        assert "no SFTP subsystem" in msg and "Subsystem sftp" in msg and "\n" not in msg
        assert not (tmp_path / "b").exists(), "nothing half-written"
    finally:
        stop(server.proc)
