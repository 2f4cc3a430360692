"""`local`: this machine as a target, through the same agent as an SSH board
(targets.agent.AgentTarget over targets.shell.LocalShell)."""
from __future__ import annotations

import sys
from typing import Any

from edgeforge.targets.agent import AgentTarget
from edgeforge.targets.shell import LocalShell


class LocalTarget(AgentTarget):
    """`local`: this machine, through the same agent, as a subprocess."""

    kind = "local"

    @classmethod
    def from_uri(cls, uri: str = "local", **options: Any) -> LocalTarget:
        from urllib.parse import parse_qs, urlparse
        query = parse_qs(urlparse(uri).query) if "?" in uri else {}
        opts = cls.common_options(options, query)
        opts.setdefault("python", sys.executable)
        return cls(LocalShell(), uri="local", **opts)

