"""The package as users get it: a wheel and an sdist built from the tree, and the wheel
installed (not editable) into a fresh venv, imported as `edgeforge` from outside the checkout.

The sdist is built from a copy of the source folders and the wheel from the unpacked sdist
(what `python -m build` does), so a file the sdist forgets is missing from the wheel too.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, fixture, require

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
SOURCES = ("pyproject.toml", "README.md", *PACKAGE_DIRS.values())


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       check=False)
    assert r.returncode == 0, f"{argv}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def _shipped_files() -> dict[str, str]:
    """Repo path -> installed path of every committed file under a package folder."""
    out = _run(["git", "ls-files", "--", *PACKAGE_DIRS.values()], ROOT)
    mapping = {}
    for rel in out.splitlines():
        for pkg, src in sorted(PACKAGE_DIRS.items(), key=lambda kv: -len(kv[1])):
            if rel.startswith(src + "/"):
                mapping[rel] = pkg.replace(".", "/") + rel[len(src):]
                break
    return mapping


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel): sdist from a copy of the tree, wheel from the unpacked sdist."""
    require("git")
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    out = tmp / "out"
    code = f"from setuptools.build_meta import build_sdist; build_sdist({str(out)!r})"
    _run([sys.executable, "-c", code], src)
    [sdist] = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        tf.extractall(tmp / "unpacked", filter="data")
    [unpacked] = (tmp / "unpacked").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(out), str(unpacked)], tmp)
    [wheel] = out.glob("*.whl")
    return sdist, wheel


def test_packages_list_matches_the_folders():
    """Every folder with an __init__.py under a package dir is in pyproject's packages."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for pkg, src in PACKAGE_DIRS.items():
        for init in (ROOT / src).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / src)
            found.add(".".join([pkg, *rel.parts]))
    assert found == listed


def test_wheel_holds_only_edgeforge_and_every_file(dists):
    _, wheel = dists
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"edgeforge"}, top
    missing = sorted(rel for rel, inst in _shipped_files().items() if inst not in names)
    assert not missing, f"not in the wheel: {missing}"
    for need in ("edgeforge/py.typed", "edgeforge/firmware_templates/PROTOCOL.md",
                 "edgeforge/firmware_templates/cortex-m/main.c",
                 "edgeforge/targets/boards/mps2-an386.toml",
                 "edgeforge/runtime/agent/agent.py", "edgeforge/runtime/c/ef_requantize.h"):
        assert need in names


def test_sdist_holds_every_file(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    missing = sorted(rel for rel in _shipped_files() if rel not in names)
    assert not missing, f"not in the sdist: {missing}"


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import edgeforge
    assert "site-packages" in edgeforge.__file__ and {venv!r} in edgeforge.__file__, edgeforge.__file__
    for name in ("sdk", "runtime", "targets"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"top-level {{name}} importable from the wheel install")
    s = edgeforge.compile({model!r}, "kws")
    b = edgeforge.build("kws", "mps2-an386")
    x = np.load({sample!r})
    p = edgeforge.profile("kws", "qemu://mps2-an386", runs=2, warmup=0, inputs=x)
    try:
        edgeforge.inspect("no-such.tflite")
    except edgeforge.ModelError as e:
        err = str(e)
    print(json.dumps({{"arena": s["arena_bytes"], "flash": b["sizes"]["flash"],
                       "match": p["outputs_match_reference"], "samples": p["samples"],
                       "err": err}}))
""")


def test_wheel_installs_and_profiles_on_qemu(dists, tmp_path):
    """pip install WHEEL (not -e) into a fresh venv; compile, build, profile from it."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    _, wheel = dists
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
         tmp_path)
    work = tmp_path / "work"                     # outside the checkout: nothing shadows it
    work.mkdir()
    script = SCRIPT.format(venv=str(venv), model=str(fixture("kws_ds_cnn_int8.tflite")),
                           sample=str(fixture("kws_ds_cnn_sample_inputs_int8.npy")))
    out = _run([str(py), "-I", "-c", script], work, timeout=240)
    r = json.loads(out.strip().splitlines()[-1])
    assert r["match"] and r["samples"] >= 1
    assert 0 < r["arena"] and 0 < r["flash"]
    assert "no-such.tflite" in r["err"]
    assert (work / "kws" / "fw" / "mps2-an386" / "firmware.elf").is_file()
    # the console script from the wheel
    ver = _run([str(venv / "bin" / "edgeforge"), "--version"], work)
    assert ver.startswith("edgeforge ")


def test_api_names_are_the_functions_even_after_every_module_loads():
    """`edgeforge.X` is the API function for every command; no submodule named X exists to
    replace it on the package when Python imports edgeforge.X (as sdk/validate.py once did)."""
    import importlib
    import pkgutil

    import edgeforge
    for m in pkgutil.walk_packages(edgeforge.__path__, "edgeforge."):
        if not m.name.startswith(("edgeforge.cli", "edgeforge.runtime.agent")):
            importlib.import_module(m.name)
    for name in ("load", "inspect", "compile", "run", "validate", "build", "flash",
                 "profile", "deploy"):
        assert callable(getattr(edgeforge, name)), name
        assert name in edgeforge.__all__
    assert issubclass(edgeforge.ModelError, edgeforge.EdgeforgeError)
