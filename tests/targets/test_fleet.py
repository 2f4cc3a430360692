"""`edgeforge fleet profile` against three loopback sshd "boards", one of them dead."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.targets.fleet import fleet_profile, load_inventory
from tests.conftest import require
from tests.targets._servers import (  # noqa: F401
    client_key,
    compile_fixture,
    make_dir,
    sshd,
    start_sshd,
    stop,
)


@pytest.fixture(scope="module")
def boards(tmp_path_factory, sshd, client_key):  # noqa: F811
    """The session sshd, a second live one, and a third that is started then stopped."""
    root = tmp_path_factory.mktemp("fleet")
    second = start_sshd(root / "b", client_key.with_suffix(".pub"))
    dead = start_sshd(root / "c", client_key.with_suffix(".pub"))
    stop(dead.proc)
    known = root / "known_hosts"
    known.write_text("".join(s.known_hosts.read_text() for s in (sshd, second, dead)))
    yield [sshd, second, dead], known, root
    stop(second.proc)


def write_inventory(path: Path, servers, known: Path, key: Path, base: Path) -> Path:
    lines = ["[defaults]", f'identity = "{key}"', f'known_hosts = "{known}"',
             f'python = "{sys.executable}"', "timeout = 120", ""]
    for name, s in zip(("alpha", "beta", "gamma"), servers):
        lines += ["[[host]]", f'name = "{name}"', f'uri = "{s.uri}"', f'dir = "{base / name}"', ""]
    path.write_text("\n".join(lines))
    return path


def test_fleet_two_results_one_clear_error(boards, client_key, tmp_path):  # noqa: F811
    servers, known, root = boards
    artifact = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    inv = write_inventory(tmp_path / "hosts.toml", servers, known, client_key, root / "base")
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "fleet", "profile", str(artifact),
                        "--inventory", str(inv), "--runs", "3", "--parallel", "3", "--json"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 1, r.stderr      # not every host succeeded
    res = json.loads(r.stdout)
    by = {h["name"]: h for h in res["hosts"]}
    assert [h["name"] for h in res["hosts"]] == ["alpha", "beta", "gamma"]
    for name in ("alpha", "beta"):
        h = by[name]
        assert h["ok"] and h["outputs_match_reference"] is True, h
        assert h["latency_us"]["count"] == 3 and h["runtime"] == "ai_edge_litert"
        assert (root / "base" / name / "models").is_dir()
    assert by["gamma"]["ok"] is False
    assert "cannot connect" in by["gamma"]["error"] and str(servers[2].port) in by["gamma"]["error"]

    # the human table names every host and the error
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "fleet", "profile", str(artifact),
                        "--inventory", str(inv), "--runs", "2"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    for word in ("alpha", "beta", "gamma", "cannot connect"):
        assert word in r.stdout


def test_fleet_timeout_is_per_host(boards, client_key, tmp_path):  # noqa: F811
    servers, known, root = boards
    artifact = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    hosts = load_inventory(write_inventory(tmp_path / "h.toml", servers[:2], known, client_key,
                                           root / "base2"))
    hosts[1].timeout = 0.0   # beta's budget is gone as soon as it starts
    entries = fleet_profile(artifact, hosts, runs=2, warmup=0, parallel=2)
    assert entries[0]["ok"] is True
    assert entries[1]["ok"] is False and "timed out" in entries[1]["error"]


def test_bad_inventory_is_one_clear_error(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_text('[[host]]\nname = "a"\nuri = "ssh://x@y"\ncolour = "red"\n')
    with pytest.raises(EdgeforgeError, match="unknown key.*colour"):
        load_inventory(p)
    p.write_text('[[host]]\nname = "a"\n')
    with pytest.raises(EdgeforgeError, match="needs both name and uri"):
        load_inventory(p)
    p.write_text("[[host]\n")
    with pytest.raises(EdgeforgeError, match="not valid TOML"):
        load_inventory(p)


def test_mixed_fleet_linux_and_cortex_m(tmp_path):
    """One table across kinds: this machine through the agent, a Cortex-M4 under QEMU."""
    require("qemu-system-arm", "arm-none-eabi-gcc")
    artifact = compile_fixture("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    inv = tmp_path / "mixed.toml"
    inv.write_text(f'[[host]]\nname = "linux"\nuri = "local://?dir={tmp_path / "base"}"\n'
                   '[[host]]\nname = "m4"\nuri = "qemu://mps2-an386"\n')
    entries = fleet_profile(artifact, load_inventory(inv), runs=2, warmup=0, parallel=2)
    linux, m4 = entries
    assert linux["ok"] and m4["ok"], entries
    assert linux["outputs_match_reference"] is True and m4["outputs_match_reference"] is True
    assert linux["runtime"] == "ai_edge_litert" and m4["instructions"]["count"] == 2
