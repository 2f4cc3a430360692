"""edgeforge.qmath fixed-point primitives against plain big-integer oracles written from the C.

The oracles use Python ints and C's truncating division, so they share no code with the
vectorized numpy implementations they check.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeforge.ir import Act
from edgeforge.qmath import (
    INT32_MAX,
    INT32_MIN,
    Rounding,
    act_range_q,
    quantize,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    srdhm,
)

i32 = st.integers(INT32_MIN, INT32_MAX)


def _cdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def srdhm_oracle(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _cdiv(ab + nudge, 1 << 31)


def rdpot_oracle(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def mbqm_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdpot_oracle(srdhm_oracle(wrap32(x * (1 << left)), m), right)


def mbqm_single(x: int, m: int, shift: int) -> int:
    total = 31 - shift
    return (x * m + (1 << (total - 1))) >> total


# ---------------------------------------------------------------- srdhm
@pytest.mark.parametrize("a,b,want", [
    (INT32_MIN, INT32_MIN, INT32_MAX),          # the one saturating case
    (INT32_MIN, INT32_MAX, -INT32_MAX),
    (1 << 30, 1 << 30, 1 << 29),
    (-1, 1 << 30, 0),                           # -0.5 -> 0: gemmlowp's nudge is 1 - 2^30
    (1, 1 << 30, 1),                            # +0.5 -> 1: so ties round toward +inf
    (-3, 1 << 30, -1),                          # -1.5 -> -1
    (3, 1 << 30, 2),                            # +1.5 -> 2
    (0, INT32_MIN, 0),
])
def test_srdhm_edges(a, b, want):
    assert int(srdhm(np.int64(a), np.int64(b))) == want == srdhm_oracle(a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(i32, i32), min_size=1, max_size=64))
def test_srdhm_matches_oracle(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    assert srdhm(a, b).tolist() == [srdhm_oracle(x, y) for x, y in pairs]


# ---------------------------------------------------------------- rounding divide by POT
@pytest.mark.parametrize("x,e,want", [
    (5, 1, 3), (-5, 1, -3),                     # halves go away from zero
    (3, 1, 2), (-3, 1, -2),
    (-4, 1, -2), (-6, 2, -2), (-2, 2, -1), (2, 2, 1), (-1, 2, 0),
    (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (7, 0, 7), (-7, 0, -7),
])
def test_rdpot_edges(x, e, want):
    assert int(rounding_divide_by_pot(np.int64(x), e)) == want == rdpot_oracle(x, e)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(i32, st.integers(0, 31)), min_size=1, max_size=64))
def test_rdpot_matches_oracle(pairs):
    x = np.array([p[0] for p in pairs], dtype=np.int64)
    e = np.array([p[1] for p in pairs], dtype=np.int64)
    assert rounding_divide_by_pot(x, e).tolist() == [rdpot_oracle(a, b) for a, b in pairs]


# ---------------------------------------------------------------- requantize
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(1 << 24), 1 << 24), min_size=1, max_size=32),
       st.integers(1 << 30, INT32_MAX), st.integers(-20, 3))
def test_requantize_both_roundings(xs, m, shift):
    x = np.array(xs, dtype=np.int64)
    assert requantize(x, m, shift, Rounding.DOUBLE).tolist() == [mbqm_double(v, m, shift)
                                                               for v in xs]
    assert requantize(x, m, shift, Rounding.SINGLE).tolist() == [mbqm_single(v, m, shift)
                                                                 for v in xs]


def test_double_and_single_rounding_differ_on_a_known_value():
    # A tie after the first rounding: srdhm(5, 2^30) = round(2.5) = 3, then /2 -> 2 (double),
    # while single rounding computes round(5 / 4 = 1.25) = 1.
    assert int(requantize(np.int64(5), 1 << 30, -1, Rounding.DOUBLE)) == 2
    assert int(requantize(np.int64(5), 1 << 30, -1, Rounding.SINGLE)) == 1


# ---------------------------------------------------------------- quantize_multiplier
@pytest.mark.parametrize("real,want", [
    (0.0, (0, 0)),
    (1.0, (1 << 30, 1)),
    (0.5, (1 << 30, 0)),
    (0.75, (3 << 29, 0)),
    (2.0 ** -40, (0, 0)),                       # below 2^-31 * 2^-1: flushed to zero
    (1.0 - 2.0 ** -40, (1 << 30, 1)),           # q rounds up to 2^31: renormalized
])
def test_quantize_multiplier_edges(real, want):
    assert quantize_multiplier(real) == want


def test_quantize_multiplier_single_rounding_caps_shift():
    m, s = quantize_multiplier(2.0 ** 40, Rounding.DOUBLE)
    assert (m, s) == (1 << 30, 41)
    assert quantize_multiplier(2.0 ** 40, Rounding.SINGLE) == ((1 << 31) - 1, 30)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-9, 1e3, allow_nan=False))
def test_quantize_multiplier_reconstructs(real):
    m, s = quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31)
    assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2.0 ** -30)


# ---------------------------------------------------------------- activation range, quantize
def test_act_range_q():
    assert act_range_q(Act.NONE, 0.1, 3) == (-128, 127)
    assert act_range_q(Act.RELU, 0.1, 3) == (3, 127)
    assert act_range_q(Act.RELU6, 0.1, -128) == (-128, -68)
    assert act_range_q(Act.RELU_N1_TO_1, 0.5, 0) == (-2, 2)
    assert act_range_q(Act.RELU6, 0.01, 0) == (0, 127)          # clipped to int8


def test_quantize_rounds_half_away_from_zero():
    q = quantize(np.array([0.5, -0.5, 1.5, -1.5, 2.5, 1000.0, -1000.0]), 1.0, 0)
    assert q.tolist() == [1, -1, 2, -2, 3, 127, -128]
