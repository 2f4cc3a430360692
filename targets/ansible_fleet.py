"""`fleet profile --engine ansible`: the fan-out is Ansible's, through ansible-runner.

The small playbook below runs on every host of the inventory (or of --limit) one edgeforge
module (MODULE, through Ansible's script module, with the board's Python): it writes the
device agent, the model and the shared inputs into `<edgeforge_dir>/ansible/<sha16>/`, then
runs `agent.py run` there, whose one JSON line is our result. Ansible's forks (--parallel), its
SSH retries and its unreachable-host handling do the scaling; a host Ansible reports
unreachable or failed becomes that host's error entry, and the rest come back into the same
table as the thread engine's (targets.fleet), each output checked on this host against the
reference kernels the board's LiteRT computes with.

SSH checks host keys: OpenSSH (Ansible's transport) gets StrictHostKeyChecking=yes and our
known_hosts file, never Ansible's default of trusting whatever answers.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest

PLAYBOOK = """\
- name: edgeforge profile
  hosts: all
  gather_facts: false
  vars:
    ef_base: "{{ edgeforge_dir | default('~/.edgeforge') }}"
    ef_python: "{{ edgeforge_python | default(ansible_python_interpreter | default('python3')) }}"
  tasks:
    - name: edgeforge run
      ansible.builtin.script:
        cmd: >-
          edgeforge_module.py {{ ef_base | quote }} {{ ef_runs }} {{ ef_warmup }}
          {{ edgeforge_threads | default(1) }}
        executable: "{{ ef_python }}"
      register: ef_result
      changed_when: false
      timeout: "{{ ef_timeout }}"
"""
# The edgeforge module: one script Ansible copies and runs with the board's Python (3.8+),
# carrying the agent, the model and the inputs. One transfer and one process per host -- a
# module per file costs seconds each on a small board. Unchanged files are not rewritten.
MODULE = """\
import base64, hashlib, json, os, subprocess, sys
FILES = json.loads(base64.b64decode(%(files)r))
base, runs, warmup, threads = sys.argv[1:5]
d = os.path.join(os.path.expanduser(base), "ansible", %(sha16)r)
os.makedirs(d, mode=0o700, exist_ok=True)
for name, b64 in FILES.items():
    data, path = base64.b64decode(b64), os.path.join(d, name)
    try:
        with open(path, "rb") as f:
            same = hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    except OSError:
        same = False
    if not same:
        with open(path + ".part", "wb") as f:
            f.write(data)
        os.replace(path + ".part", path)
r = subprocess.run([sys.executable, os.path.join(d, "agent.py"), "run", "--model",
                    os.path.join(d, "model.tflite"), "--inputs", os.path.join(d, "inputs.npy"),
                    "--runs", runs, "--warmup", warmup, "--threads", threads],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
sys.stdout.write(r.stdout.decode(errors="replace"))
sys.stderr.write(r.stderr.decode(errors="replace")[-2000:])
sys.exit(r.returncode)
"""
RUN_TASK = "edgeforge run"


def _runner():
    try:
        import ansible_runner
    except ImportError:
        raise EdgeforgeError("--engine ansible needs ansible-runner and ansible-core: pip "
                             "install 'edgeforge[ansible]'") from None
    return ansible_runner


def _decode(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["b64"]), d["dtype"]).reshape(d["shape"])


def _entry(name: str, uri: str, res: dict[str, Any], artifact: Path, m: Manifest,
           samples: np.ndarray, seconds: float) -> dict[str, Any]:
    """The agent's JSON as a fleet table row, outputs checked against the host reference."""
    from edgeforge.targets.profile import _compare, reference_outputs
    mismatches = []
    for n, (outs, x) in enumerate(zip(res.get("outputs") or [], samples)):
        want = reference_outputs(artifact, m, x, "litert")   # LiteRT's rounding, as the board
        mismatches += [{"sample": n, **b} for b in _compare([_decode(o) for o in outs], want)]
    board = res.get("board") or {}
    rt = res.get("runtime") or {}
    return {"name": name, "uri": uri, "ok": True, "seconds": round(seconds, 2),
            "board": board.get("model"), "machine": board.get("machine"),
            "arch": res.get("arch"), "runtime": rt.get("name"),
            "runtime_version": rt.get("version"), "latency_us": res.get("latency_us"),
            "peak_rss_kb": res.get("peak_rss_kb"), "max_lsb_diff": res.get("max_lsb_diff"),
            "outputs_match_reference": bool(res.get("outputs")) and not mismatches,
            "engine": "ansible"}


def _failure(event: dict[str, Any]) -> str:
    r = event.get("res") or {}
    kind = "unreachable" if event.get("unreachable") else f"task '{event.get('task')}' failed"
    msg = str(r.get("msg") or "").strip()
    tail = str(r.get("stderr") or "").strip().splitlines()[-1:] or []
    out = str(r.get("stdout") or "").strip()
    if out.startswith("{") and '"error"' in out:         # the agent said why
        try:
            tail = [json.loads(out.splitlines()[-1])["error"]]
        except (ValueError, KeyError):
            pass
    return f"{kind}: " + " -- ".join(x for x in [msg.splitlines()[0] if msg else "", *tail] if x)


def ansible_profile(artifact: Path, inventory: str | Path, hosts: list[Any], *,
                    limit: str | None = None, runs: int = 10, warmup: int = 1,
                    parallel: int = 4, inputs: np.ndarray | None = None,
                    known_hosts: str | None = None, retries: int = 1,
                    timeout: float = 300.0) -> list[dict[str, Any]]:
    """Profile DIR on every host of an Ansible inventory with ansible-runner; one entry per
    host in `hosts` order (targets.inventory.load_ansible_inventory's), errors inline."""
    from edgeforge.targets.agent import AGENT_SRC
    from edgeforge.targets.fleet import default_inputs
    runner = _runner()
    artifact = Path(artifact).resolve()
    m = Manifest.load(artifact)
    m.check_model(artifact)
    samples = default_inputs(m) if inputs is None else inputs
    known = Path(known_hosts or "~/.ssh/known_hosts").expanduser()
    with tempfile.TemporaryDirectory(prefix="edgeforge-ansible-") as tmp:
        root = Path(tmp)
        (root / "project").mkdir()
        (root / "project" / "edgeforge_profile.yml").write_text(PLAYBOOK)
        buf = io.BytesIO()
        np.save(buf, samples)
        payload = {"agent.py": (AGENT_SRC / "agent.py").read_bytes(),
                   "model.tflite": (artifact / "model.tflite").read_bytes(),
                   "inputs.npy": buf.getvalue()}
        files = base64.b64encode(json.dumps(
            {k: base64.b64encode(v).decode() for k, v in payload.items()}).encode()).decode()
        (root / "project" / "edgeforge_module.py").write_text(
            MODULE % {"files": files, "sha16": m.model_sha256[:16]})
        ssh_args = ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                    "-o", "ControlMaster=auto", "-o", "ControlPersist=30s",
                    "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2",
                    "-o", "ConnectTimeout=15"]
        env = {"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_SSH_ARGS": shlex.join(ssh_args),
               "ANSIBLE_SSH_RETRIES": str(retries), "ANSIBLE_RETRY_FILES_ENABLED": "False",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(root / "cp"),
               "ANSIBLE_LOCAL_TEMP": str(root / "tmp"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}
        r = runner.run(
            private_data_dir=str(root), playbook="edgeforge_profile.yml",
            inventory=str(Path(inventory).resolve()), limit=limit, forks=max(1, parallel),
            extravars={"ef_runs": runs, "ef_warmup": warmup, "ef_timeout": int(timeout)},
            envvars={**{k: v for k, v in os.environ.items() if k == "PATH"}, **env},
            quiet=True, timeout=int(timeout * max(1, -(-len(hosts) // max(1, parallel)))) + 60)
        results: dict[str, dict[str, Any]] = {}
        seconds: dict[str, float] = {}
        for ev in r.events:
            data = ev.get("event_data") or {}
            host = data.get("host")
            if not host:
                continue
            seconds[host] = seconds.get(host, 0.0) + float(data.get("duration") or 0.0)
            if ev["event"] in ("runner_on_unreachable", "runner_on_failed"):
                results.setdefault(host, {"error": _failure(
                    {**data, "unreachable": ev["event"] == "runner_on_unreachable"})})
            elif ev["event"] == "runner_on_ok" and data.get("task") == RUN_TASK:
                out = str((data.get("res") or {}).get("stdout") or "")
                lines = [ln for ln in out.splitlines() if ln.startswith("{")]
                try:
                    results[host] = {"res": json.loads(lines[-1])}
                except (IndexError, ValueError):
                    results[host] = {"error": f"agent printed no JSON: {out[-200:]!r}"}
    entries = []
    for h in hosts:
        got = results.get(h.name)
        if got is None:
            why = f"Ansible did not run it (playbook status {r.status}, rc {r.rc})"
            entries.append({"name": h.name, "uri": h.uri, "ok": False, "error": why})
        elif "error" in got:
            entries.append({"name": h.name, "uri": h.uri, "ok": False, "error": got["error"]})
        elif "error" in got["res"]:
            entries.append({"name": h.name, "uri": h.uri, "ok": False,
                            "error": str(got["res"]["error"])})
        else:
            entries.append(_entry(h.name, h.uri, got["res"], artifact, m, samples,
                                  seconds.get(h.name, 0.0)))
    return entries
