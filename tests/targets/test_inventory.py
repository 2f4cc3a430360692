"""The fleet inventory reader (issue 10): wrong types are one error naming host and key.

`timeout = "abc"`, `defaults = 5` and `host = [1, 2]` were tracebacks; `native = "no"` ran
native (a non-empty string is truthy); a negative timeout was accepted. A seeded fuzz of
random inventories (structure and value types) must end in hosts or one EdgeforgeError.
"""
from __future__ import annotations

import datetime
import json
import math
import random
import time

import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.targets.fleet import HOST_KEYS, KEY_TYPES, Host, load_inventory

HOST = '[[host]]\nname = "pi"\nuri = "ssh://pi@10.0.0.5"\n'


@pytest.mark.parametrize(("text", "match"), [
    (HOST + 'timeout = "abc"\n', r"host 1 \(pi\): timeout = 'abc' must be seconds > 0"),
    (HOST + "timeout = -5\n", r"host 1 \(pi\): timeout = -5 must be seconds > 0"),
    (HOST + "timeout = 0\n", "timeout = 0 must be"),
    (HOST + "timeout = nan\n", "timeout = nan must be"),
    (HOST + "timeout = true\n", "timeout = True must be"),
    (HOST + 'native = "no"\n', r"host 1 \(pi\): native = 'no' must be true or false"),
    (HOST + "accept_new_host_key = 1\n", "accept_new_host_key = 1 must be true or false"),
    (HOST + "threads = 0\n", "threads = 0 must be a whole number"),
    (HOST + "threads = 2.5\n", "threads = 2.5 must be a whole number"),
    (HOST + "identity = 7\n", "identity = 7 must be a path string"),
    ("defaults = 5\n" + HOST, "defaults = 5 must be a table"),
    ('[defaults]\ntimeout = "abc"\n' + HOST, r"\[defaults\]: timeout = 'abc'"),
    ('[defaults]\nname = "x"\n' + HOST, r"\[defaults\]: unknown key"),
    ("host = [1, 2]\n", r"no \[\[host\]\] entries"),
    ('host = "pi"\n', r"no \[\[host\]\] entries"),
    ('[[host]]\nname = ["a"]\nuri = "ssh://x@y"\n', r"host 1: name = \['a'\] must be a string"),
    ('[[host]]\nname = "a"\nuri = 5\n', r"host 1 \(a\): uri = 5 must be a string"),
    ('[[host]]\nname = "  "\nuri = "ssh://x@y"\n', "name = '  ' must be a string"),
    ('hosts = 1\n' + HOST, "unknown table"),
])
def test_wrong_types_are_one_error_naming_host_and_key(tmp_path, text, match):
    p = tmp_path / "hosts.toml"
    p.write_text(text)
    with pytest.raises(EdgeforgeError, match=match) as e:
        load_inventory(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_a_bad_passphrase_is_named_but_never_shown(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_text(HOST + "passphrase = 123456789\n")
    with pytest.raises(EdgeforgeError, match=r"passphrase = <int> must be a string") as e:
        load_inventory(p)
    assert "123456789" not in str(e.value)


def test_valid_types_load(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_text("[defaults]\ntimeout = 30\nnative = false\n" + HOST + "threads = 2\n"
                 "[[host]]\nname = \"m\"\nuri = \"qemu://mps2-an386\"\ntimeout = 12.5\n")
    pi, m = load_inventory(p)
    assert (pi.timeout, pi.options["threads"], pi.options["native"]) == (30.0, 2, False)
    assert m.timeout == 12.5
    with pytest.raises(EdgeforgeError, match="cannot read the inventory"):
        load_inventory(tmp_path)                      # a directory, not a file


# ---------------------------------------------------------------- fuzz

def _value(rng: random.Random, depth: int = 0):
    k = rng.randrange(12)
    if k == 0:
        return rng.choice(["abc", "", "  ", "no", "ssh://u@h", "qemu://mps2-an386", "local",
                           "~/.ssh/id", "a\u00e9\u4e2d"])
    if k == 1:
        return rng.choice([0, 1, -5, 2**63 - 1, -2**63, 300])
    if k == 2:
        return rng.choice([0.0, -1.5, 1e308, 2.5, math.inf, -math.inf, math.nan])
    if k == 3:
        return rng.random() < 0.5
    if k == 4 and depth < 2:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if k == 5 and depth < 2:
        return {rng.choice(sorted(HOST_KEYS)): _value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    if k == 6:
        return datetime.date(2026, 12, 3)
    return rng.choice(["ssh://pi@10.0.0.5", "pi", 30, True, False])


GOOD = {"name": "n", "uri": "ssh://pi@h", "identity": "~/.ssh/id", "known_hosts": "kh",
        "python": "/usr/bin/python3", "dir": "~/.ef", "passphrase": "pw",
        "accept_new_host_key": True, "native": False, "threads": 2, "timeout": 12.5}


def _typed(rng: random.Random, key: str):
    """A value of the right type for key most of the time, anything otherwise."""
    return GOOD.get(key, "x") if rng.random() < 0.75 else _value(rng)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, (int, datetime.date)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"


def _inventory(rng: random.Random) -> str:
    lines = []
    if rng.random() < 0.1:
        lines.append(f"defaults = {_toml(_value(rng))}")
    elif rng.random() < 0.6:
        lines.append("[defaults]")
        for key in rng.sample(sorted(HOST_KEYS - {"name", "uri"}), rng.randint(0, 3)):
            lines.append(f"{key} = {_toml(_typed(rng, key))}")
    if rng.random() < 0.05:
        lines.insert(0, f"host = {_toml(_value(rng))}")
        return "\n".join(lines) + "\n"
    for n in range(rng.randint(0, 3) if rng.random() < 0.1 else rng.randint(1, 3)):
        lines.append("[[host]]")
        keys = {"name": json.dumps(f"h{n}"), "uri": json.dumps("ssh://pi@10.0.0.5")}
        for key in rng.sample(sorted(HOST_KEYS) + ["colour"], rng.randint(0, 3)):
            keys[key] = _toml(_typed(rng, key) if key != "colour" else _value(rng))
        for key in rng.sample(sorted(keys), len(keys) - (rng.random() < 0.1)):
            lines.append(f"{key} = {keys[key]}")
    return "\n".join(lines) + "\n"


def test_fuzz_inventory_reader_hosts_or_one_error(tmp_path):
    rng = random.Random(1010)
    p = tmp_path / "hosts.toml"
    seen = {"hosts": 0, "error": 0}
    t0 = time.monotonic()
    for case in range(400):
        text = _inventory(rng)
        if case % 8 == 7:                             # byte-level damage as well
            b = bytearray(text.encode())
            for _ in range(rng.randint(1, 3)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
            p.write_bytes(bytes(b))
        else:
            p.write_text(text)
        try:
            hosts = load_inventory(p)
        except EdgeforgeError as e:
            assert "\n" not in str(e) and str(p) in str(e), (text, e)
            seen["error"] += 1
            continue
        seen["hosts"] += 1
        for h in hosts:                               # what came through is well typed
            assert isinstance(h, Host) and isinstance(h.name, str) and isinstance(h.uri, str)
            assert math.isfinite(h.timeout) and h.timeout > 0
            for key, value in h.options.items():
                types, _ = KEY_TYPES[key]
                assert isinstance(value, types), (text, key, value)
                assert isinstance(value, bool) == (bool in types), (text, key, value)
    assert seen["hosts"] > 20 and seen["error"] > 100, seen
    assert time.monotonic() - t0 < 60
