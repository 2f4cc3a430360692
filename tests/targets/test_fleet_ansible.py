"""`fleet profile --inventory inventory.yml --engine ansible`: Ansible (through ansible-runner)
fans out to three real OpenSSH servers on loopback; one is killed mid-run and reported failed
while the others finish. Plus the Ansible inventory reader (INI and YAML) on its own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.targets.inventory import load_any
from tests.conftest import require
from tests.targets._servers import client_key, make_dir, start_sshd, stop  # noqa: F401


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's per-connection children), from /proc."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def kill_server(proc: subprocess.Popen) -> None:
    """The sshd and every session it serves: the board loses power."""
    victims = [proc.pid, *descendants(proc.pid)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def three(tmp_path_factory, client_key):  # noqa: F811
    require("ansible-playbook", "ansible_runner")
    root = tmp_path_factory.mktemp("ansible_fleet")
    servers = [start_sshd(root / n, client_key.with_suffix(".pub")) for n in ("a", "b", "c")]
    known = root / "known_hosts"
    known.write_text("".join(s.known_hosts.read_text() for s in servers))
    yield servers, known, root
    for s in servers:
        if s.proc.poll() is None:
            stop(s.proc)


def yaml_inventory(path: Path, servers, key: Path, base: Path) -> Path:
    lines = ["all:", "  vars:", f"    ansible_python_interpreter: {sys.executable}",
             f"    ansible_ssh_private_key_file: {key}", "    ansible_user: root",
             "  children:", "    boards:", "      hosts:"]
    for name, s in zip(("alpha", "beta", "gamma"), servers):
        lines += [f"        {name}:", "          ansible_host: 127.0.0.1",
                  f"          ansible_port: {s.port}", f"          edgeforge_dir: {base / name}"]
    lines += ["    spare:", "      hosts:", "        delta:",
              "          ansible_host: 192.0.2.1"]          # TEST-NET: never dialled (--limit)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ansible_engine_three_hosts_one_killed_mid_run(three, client_key, tmp_path):  # noqa: F811
    servers, known, root = three
    artifact = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    base = root / "base"
    inv = yaml_inventory(tmp_path / "inventory.yml", servers, client_key, base)
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgeforge.cli", "fleet", "profile", str(artifact),
             "--inventory", str(inv), "--limit", "boards", "--engine", "ansible",
             "--known-hosts", str(known), "--runs", "200", "--parallel", "3", "--json"],
            stdout=fo, stderr=fe)
        try:
            # mid-run: Ansible has made gamma's directory; now gamma's board dies
            gamma_dir = base / "gamma" / "ansible"
            deadline = time.monotonic() + 120
            while not gamma_dir.exists() and time.monotonic() < deadline:
                assert proc.poll() is None, err.read_text()
                time.sleep(0.05)
            assert gamma_dir.exists(), "the play never reached gamma"
            kill_server(servers[2].proc)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert proc.returncode == 1, err.read_text()          # not every host succeeded
    res = json.loads(out.read_text())
    assert res["engine"] == "ansible"
    assert [h["name"] for h in res["hosts"]] == ["alpha", "beta", "gamma"]   # delta: --limit
    by = {h["name"]: h for h in res["hosts"]}
    for name in ("alpha", "beta"):
        h = by[name]
        assert h["ok"] and h["outputs_match_reference"] is True, h
        assert h["latency_us"]["count"] == 200 and h["runtime"] == "ai_edge_litert"
        assert h["uri"].startswith("ssh://root@127.0.0.1:")
        assert set(h["shared_machine"]) == {"alpha", "beta"} - {name}   # one machine, at once
    g = by["gamma"]
    assert not g["ok"] and ("unreachable" in g["error"] or "failed" in g["error"]), g
    assert "\n" not in g["error"]
    s = res["summary"]
    assert (s["hosts"], s["ok"], s["failed"], s["outputs_match"]) == (3, 2, 1, 2)
    assert s["fastest"] in ("alpha", "beta")


def test_ansible_inventories_ini_and_yaml(tmp_path, client_key):  # noqa: F811
    require("ansible")
    ini = tmp_path / "hosts.ini"
    ini.write_text(
        "[boards]\n"
        "pi4 ansible_host=10.0.0.5 ansible_user=pi edgeforge_native=true edgeforge_threads=4\n"
        "jetson ansible_host=10.0.0.6 ansible_port=2222\n"
        "[mcu]\n"
        "nucleo edgeforge_uri=qemu://mps2-an386\n"
        "[lab:children]\nboards\nmcu\n"
        "[boards:vars]\n"
        f"ansible_ssh_private_key_file={client_key}\nedgeforge_python=/opt/venv/bin/python\n"
        "edgeforge_timeout=60\n")
    hosts = {h.name: h for h in load_any(ini, {"known_hosts": "/k"}, "boards")}
    assert set(hosts) == {"pi4", "jetson"}
    pi4, jet = hosts["pi4"], hosts["jetson"]
    assert pi4.uri == "ssh://pi@10.0.0.5:22" and jet.uri == "ssh://10.0.0.6:2222"
    assert pi4.options["native"] is True and pi4.options["threads"] == 4
    assert pi4.options["identity"] == str(client_key) and pi4.timeout == 60.0
    assert pi4.options["python"] == "/opt/venv/bin/python" and pi4.options["known_hosts"] == "/k"
    assert [h.name for h in load_any(ini, None, "lab")] == ["pi4", "jetson", "nucleo"]
    assert load_any(ini, None, "mcu")[0].uri == "qemu://mps2-an386"

    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  children:\n    boards:\n      hosts:\n        a:\n"
                   "          ansible_host: 127.0.0.1\n          ansible_port: 2201\n"
                   "          edgeforge_threads: two\n")
    with pytest.raises(EdgeforgeError, match=r"host a: threads = 'two' must be a whole number"):
        load_any(yml)
    yml.write_text("all:\n  hosts:\n    a:\n      edgeforge_colour: red\n")
    with pytest.raises(EdgeforgeError, match="unknown variable.*edgeforge_colour"):
        load_any(yml)
    with pytest.raises(EdgeforgeError, match="--limit 'nope' matches no host"):
        load_any(ini, None, "nope")
    (tmp_path / "junk.yml").write_text("all: [1, 2\n")
    with pytest.raises(EdgeforgeError, match="no hosts in this Ansible inventory"):
        load_any(tmp_path / "junk.yml")
    toml = tmp_path / "hosts.toml"
    toml.write_text('[[host]]\nname = "x"\nuri = "local"\n')
    assert [h.name for h in load_any(toml)] == ["x"]          # TOML stays
    with pytest.raises(EdgeforgeError, match="TOML inventory has none"):
        load_any(toml, None, "boards")


def test_shared_machine_flags_and_summary():
    from edgeforge.targets.fleet import Host
    from edgeforge.targets.inventory import flag_shared_machines, summary_row
    hosts = [Host("a", "local"), Host("b", "ssh://pi@127.0.0.1:2222"),
             Host("c", "ssh://pi@192.0.2.7"), Host("q1", "qemu://mps2-an386"),
             Host("q2", "qemu://mps2-an386"), Host("x", "ssh://pi@192.0.2.8")]

    def entries():
        lat = {"mean": 10.0}
        out = [{"name": h.name, "uri": h.uri, "ok": True, "latency_us": dict(lat),
                "outputs_match_reference": True} for h in hosts[:-1]]
        out[2]["latency_us"]["mean"] = 5.0
        return out + [{"name": "x", "uri": hosts[-1].uri, "ok": False, "error": "refused"}]
    e = entries()
    flag_shared_machines(e, hosts, concurrent=True)
    flagged = {x["name"]: x.get("shared_machine") for x in e}
    assert flagged["a"] == ["b"] and flagged["b"] == ["a"]          # loopback: this machine
    assert not flagged["c"] and not flagged["q1"] and not flagged["q2"]  # counts, not clocks
    e2 = entries()
    flag_shared_machines(e2, hosts, concurrent=False)                # --parallel 1
    assert not any(x.get("shared_machine") for x in e2)
    s = summary_row(e)
    assert (s["hosts"], s["ok"], s["failed"], s["shared_machine"], s["outputs_match"]) == \
        (6, 5, 1, 2, 5)
    assert s["fastest"] == "c" and s["mean_us"] == {"min": 5.0, "median": 10.0, "max": 10.0}
