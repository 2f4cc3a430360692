"""Imports point down the layer chain, and no import cycle exists (docs/ARCHITECTURE.md).

Every `import` / `from ... import` in every module of edgeforge is read with ast -- at the
top level and inside functions, TYPE_CHECKING blocks included -- and resolved to the module
it names (`from edgeforge import ir` is edgeforge.ir; the parent packages Python runs on
the way are not arrows). A module may import its own layer or a lower one; an arrow to a
higher layer fails, and so does any cycle between modules, within a layer or across.
"""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import ROOT

# bottom -> top; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("edgeforge.errors", "edgeforge.version", "edgeforge.firmware_templates")),
    ("ir", ("edgeforge.ir",)),
    ("files", ("edgeforge.arrays", "edgeforge.outdir", "edgeforge.manifest",
               "edgeforge.targets.board")),
    ("numerics", ("edgeforge.qmath", "edgeforge.fixedpoint", "edgeforge.qparams",
                  "edgeforge.qparams16", "edgeforge.qparams_lstm")),
    ("runtime", ("edgeforge.runtime",)),
    ("passes", ("edgeforge.passes",)),
    ("frontends", ("edgeforge.frontends",)),
    ("quantize", ("edgeforge.quantize",)),
    ("compress", ("edgeforge.compress",)),
    ("plan", ("edgeforge.plan",)),
    ("codegen", ("edgeforge.codegen",)),
    ("pipeline", ("edgeforge.report", "edgeforge.compiler", "edgeforge.runner")),
    ("targets", ("edgeforge.targets",)),
    ("validate", ("edgeforge.validation",)),
    ("api", ("edgeforge.api",)),
    ("cli", ("edgeforge.cli",)),
    ("package", ("edgeforge",)),          # edgeforge/__init__.py: the API facade
]
# the device-side agent runs on a board with numpy and a TFLite runtime, nothing of ours
STANDALONE = ("edgeforge.runtime.agent",)


def _modules() -> dict[str, Path]:
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    mods = {}
    for pkg, src in dirs.items():
        for f in (ROOT / src).rglob("*.py"):
            parts = list(f.relative_to(ROOT / src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = f
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


def imports(module: str) -> set[tuple[str, int]]:
    """(imported edgeforge module, line) for every import statement anywhere in `module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                        # relative: resolve against the package
                up = package.split(".")
                up = up[:len(up) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from pkg import sub` names the submodule; `from mod import obj` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            r = _resolve(t) if t.startswith("edgeforge") else None
            if r is not None and r != module:
                found.add((r, node.lineno))
    return found


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module}: in no layer; add it to LAYERS and ARCHITECTURE.md"
    return best[1]


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if not any(m == p or m.startswith(p + ".")
                                             for _, ps in LAYERS for p in ps)]
    assert not missing, f"modules in no layer (add them to LAYERS and ARCHITECTURE.md): {missing}"


def test_imports_point_down():
    up = []
    for m, deps in GRAPH.items():
        for d, line in sorted(deps):
            if layer_of(d) > layer_of(m):
                up.append(f"{MODULES[m].relative_to(ROOT)}:{line} {m} ({LAYERS[layer_of(m)][0]}) "
                          f"-> {d} ({LAYERS[layer_of(d)][0]})")
    assert not up, "imports pointing up:\n  " + "\n  ".join(up)


def test_no_import_cycles():
    edges = {m: {d for d, _ in deps} for m, deps in GRAPH.items()}
    cycles, state = [], dict.fromkeys(edges, 0)    # 0 new, 1 on the stack, 2 done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state[d] == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif state[d] == 0:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if state[m] == 0:
            visit(m, [])
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_agent_stands_alone():
    for m in MODULES:
        if m.startswith(STANDALONE):
            assert not GRAPH[m], f"{m} imports {GRAPH[m]}: the agent runs without edgeforge"


def test_the_checker_sees_imports_inside_functions():
    """A planted upward import inside a function body is found (the test can fail)."""
    src = "def f():\n    from edgeforge.cli import main\n    return main\n"
    tree = ast.parse(src)
    seen = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert seen == ["edgeforge.cli"]
    assert layer_of("edgeforge.cli") > layer_of("edgeforge.ir")
    assert (("edgeforge.passes.rewrite", 11) in GRAPH["edgeforge.passes.fold"]
            or any(d == "edgeforge.passes.rewrite" for d, _ in GRAPH["edgeforge.passes.fold"]))


def test_architecture_doc_states_this_chain():
    """docs/ARCHITECTURE.md's layer table lists the same layers, in the same order."""
    import re
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\w+) \|", text, re.MULTILINE)
    assert [name for _, name in rows] == [name for name, _ in LAYERS]
