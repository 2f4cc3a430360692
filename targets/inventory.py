"""Fleet inventories: edgeforge's TOML (targets.fleet.load_inventory) or an Ansible inventory.

An Ansible inventory (INI or YAML, a file or a directory with group_vars/host_vars) is read
by ansible-core's own InventoryManager and VariableManager, so groups, children, ranges and
variable precedence are Ansible's. Per host:

    ansible_host (default: the inventory name), ansible_user, ansible_port (default 22)
        -> ssh://user@host:port;  ansible_connection=local -> local
    ansible_ssh_private_key_file                  -> identity
    ansible_python_interpreter                    -> python (unless edgeforge_python)
    edgeforge_<key> for our own keys: uri (any target URI, e.g. qemu://, labgrid://),
        python, dir, native, threads, timeout, known_hosts, accept_new_host_key

`limit` is an Ansible host pattern (a group name, a host, `boards:!pi3`), as --limit.
"""
from __future__ import annotations

import contextlib
import io
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge.errors import EdgeforgeError
from edgeforge.targets.fleet import DEFAULT_TIMEOUT, HOST_KEYS, Host, _check_types, load_inventory

PREFIX = "edgeforge_"
OUR_KEYS = HOST_KEYS - {"name"}
BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True,
              "false": False, "no": False, "off": False, "0": False}


@dataclass
class AnsibleHost(Host):
    address: str = ""          # ansible_host: what the ssh connection (and Ansible) dial


def is_toml(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".toml"


def load_any(path: str | Path, defaults: dict[str, Any] | None = None,
             limit: str | None = None) -> list[Host]:
    """hosts.toml (edgeforge's own format) or an Ansible inventory, by the file name."""
    if is_toml(path):
        if limit:
            raise EdgeforgeError(f"{path}: --limit selects Ansible groups; a TOML inventory "
                                 "has none (list the hosts you want in it)")
        return load_inventory(path, defaults)
    return load_ansible_inventory(path, defaults, limit)


def _coerce(key: str, value: Any) -> Any:
    """Ansible values as the TOML keys hold them: INI gives 'true' / '4' / '2.5' as strings,
    and every value is one of Ansible's tagged str/int subclasses."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return float(value) if isinstance(value, float) else int(value)
    if not isinstance(value, str):
        return value
    value = str(value)
    if key in ("native", "accept_new_host_key") and value.lower() in BOOL_WORDS:
        return BOOL_WORDS[value.lower()]
    try:
        if key == "threads":
            return int(value)
        if key == "timeout":
            return float(value)
    except ValueError:
        pass
    return value


def _ansible():
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager
    except ImportError:
        raise EdgeforgeError("reading an Ansible inventory needs ansible-core: pip install "
                             "'edgeforge[ansible]' (or use a hosts.toml inventory)") from None
    return InventoryManager, DataLoader, VariableManager


def load_ansible_inventory(path: str | Path, defaults: dict[str, Any] | None = None,
                           limit: str | None = None) -> list[Host]:
    """The hosts of an Ansible inventory (matching `limit`), as fleet Hosts."""
    path = Path(path)
    if not path.exists():
        raise EdgeforgeError(f"{path}: inventory not found")
    InventoryManager, DataLoader, VariableManager = _ansible()
    loader = DataLoader()
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        inv = InventoryManager(loader=loader, sources=[str(path)])
        variables = VariableManager(loader=loader, inventory=inv)
        everyone = inv.get_hosts("all")
        chosen = inv.get_hosts(limit) if limit else everyone
    if not everyone:
        why = " ".join(ln.strip() for ln in said.getvalue().splitlines()
                       if "Failed to parse" in ln or "Unable to parse" in ln)[:300]
        raise EdgeforgeError(f"{path}: no hosts in this Ansible inventory"
                             + (f" ({why})" if why else " (is it INI or YAML?)"))
    if not chosen:
        raise EdgeforgeError(f"{path}: --limit {limit!r} matches no host; groups: "
                             f"{', '.join(sorted(g for g in inv.groups if g != 'ungrouped'))}")
    base = {k: v for k, v in (defaults or {}).items() if v not in (None, False)}
    out: list[Host] = []
    for h in chosen:
        v = variables.get_vars(host=h, include_hostvars=False)
        ours = {k[len(PREFIX):]: v[k] for k in v if k.startswith(PREFIX)}
        unknown = set(ours) - OUR_KEYS
        if unknown:
            raise EdgeforgeError(f"{path}: host {h.name}: unknown variable(s) "
                                 f"{sorted(PREFIX + k for k in unknown)}; ours are "
                                 f"{sorted(PREFIX + k for k in OUR_KEYS)}")
        ours = {k: _coerce(k, val) for k, val in ours.items()}
        if "ansible_ssh_private_key_file" in v:
            ours.setdefault("identity", str(Path(str(v["ansible_ssh_private_key_file"]))
                                            .expanduser()))
        if "ansible_python_interpreter" in v and "python" not in ours:
            ours["python"] = str(v["ansible_python_interpreter"])
        _check_types(path, f"host {h.name}", ours)
        uri = ours.pop("uri", None) or _ssh_uri(path, h.name, v)
        entry = {**base, **ours}
        timeout = float(entry.pop("timeout", DEFAULT_TIMEOUT))
        if uri.startswith(("ssh:", "local")):
            entry.setdefault("timeout", min(timeout, 120.0))
        out.append(AnsibleHost(h.name, uri, timeout, entry, str(v.get("ansible_host") or h.name)))
    return out


def _ssh_uri(path: Path, name: str, v: dict[str, Any]) -> str:
    if str(v.get("ansible_connection", "ssh")) == "local":
        return "local"
    host = str(v.get("ansible_host") or name)
    try:
        port = int(v.get("ansible_port") or 22)
    except (TypeError, ValueError):
        raise EdgeforgeError(f"{path}: host {name}: ansible_port = "
                             f"{v.get('ansible_port')!r} is not a port number") from None
    user = v.get("ansible_user") or v.get("ansible_ssh_user")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"                               # IPv6 literal
    return f"ssh://{f'{user}@' if user else ''}{host}:{port}"


# ---------------------------------------------------------------------------- one machine

def machine_key(entry: dict[str, Any], host: Host | None) -> str | None:
    """What identifies the machine a result came from: the agent's hashed machine id, else
    the resolved address (every loopback address is this machine)."""
    if entry.get("machine"):
        return f"id:{entry['machine']}"
    if host is None:
        return None
    from urllib.parse import urlparse
    addr = getattr(host, "address", "") or urlparse(host.uri).hostname or "localhost"
    if host.uri == "local":
        return "this-machine"
    try:
        ip = ipaddress.ip_address(socket.getaddrinfo(addr, None)[0][4][0])
    except (OSError, ValueError, IndexError):
        return f"addr:{addr}"
    return "this-machine" if ip.is_loopback else f"ip:{ip}"


def flag_shared_machines(entries: list[dict[str, Any]], hosts: list[Host],
                         concurrent: bool) -> None:
    """Mark hosts profiled at the same time on one machine: they inflate each other's tails."""
    if not concurrent:
        return
    by_name = {h.name: h for h in hosts}
    groups: dict[str, list[str]] = {}
    for e in entries:
        # only wall-clock timings share a CPU; an MCU's cycle or QEMU's instruction counts
        # do not depend on what else the host runs
        if e.get("ok") and str(e.get("uri", "")).startswith(("ssh:", "local")):
            key = machine_key(e, by_name.get(e["name"]))
            if key:
                groups.setdefault(key, []).append(e["name"])
    for e in entries:
        for names in groups.values():
            if e["name"] in names and len(names) > 1:
                e["shared_machine"] = [n for n in names if n != e["name"]]


def summary_row(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet table's last row: how many hosts answered, and their latencies' spread."""
    ok = [e for e in entries if e.get("ok")]
    means = sorted(e["latency_us"]["mean"] for e in ok if e.get("latency_us"))
    row: dict[str, Any] = {"hosts": len(entries), "ok": len(ok), "failed": len(entries) - len(ok),
                           "shared_machine": sum(1 for e in ok if e.get("shared_machine")),
                           "outputs_match": sum(1 for e in ok
                                                if e.get("outputs_match_reference") is True)}
    if means:
        row["mean_us"] = {"min": means[0], "median": means[len(means) // 2], "max": means[-1]}
        fastest = min(ok, key=lambda e: e["latency_us"]["mean"])
        row["fastest"] = fastest["name"]
    return row
