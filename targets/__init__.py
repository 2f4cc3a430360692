"""How the host reaches a device. `open_target(uri)` maps a target URI to its Target class."""
from __future__ import annotations

import importlib
from urllib.parse import urlparse

from edgeforge.errors import EdgeforgeError

# URI scheme -> "module:Class"; each class implements targets.base.Target
TARGETS: dict[str, str] = {
    "local": "edgeforge.targets.local:LocalTarget",
    "ssh": "edgeforge.targets.ssh:SshTarget",
    "serial": "edgeforge.targets.serial:SerialTarget",
    "qemu": "edgeforge.targets.qemu:QemuTarget",
    "labgrid": "edgeforge.targets.labgrid:LabgridTarget",
}


def open_target(uri: str, **options):
    # `local` takes the agent options as a query too (local?dir=/data/ef&threads=2)
    scheme = "local" if uri == "local" or uri.startswith("local?") else urlparse(uri).scheme
    if scheme not in TARGETS:
        raise EdgeforgeError(f"unknown target {uri!r}: use one of local[?dir=...], "
                             "ssh://user@host[:port], "
                             "serial:///dev/ttyACM0?board=NAME, qemu://mps2-an386, "
                             "labgrid://PLACE?board=NAME")
    module, cls = TARGETS[scheme].split(":")
    return getattr(importlib.import_module(module), cls).from_uri(uri, **options)
