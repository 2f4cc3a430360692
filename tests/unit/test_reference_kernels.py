"""Reference kernels called without a graph, and the fixed-point helpers of edgeforge.qparams."""
from __future__ import annotations

import math

import numpy as np

from edgeforge import fixedpoint as fx
from edgeforge import qparams as qp
from edgeforge.ir import Conv2dAttrs, DwConv2dAttrs, Pool2dAttrs, SoftmaxAttrs
from edgeforge.runtime import reference as R


def _naive_conv(x, w, b, stride, pad, dil):
    n, h, wd, _ = x.shape
    co, kh, kw, _ = w.shape
    oh = (h + pad[0] + pad[2] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (wd + pad[1] + pad[3] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    y = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for bb in range(kw):
                    ih = i * stride[0] - pad[0] + a * dil[0]
                    iw = j * stride[1] - pad[1] + bb * dil[1]
                    if 0 <= ih < h and 0 <= iw < wd:
                        y[:, i, j, :] += x[:, ih, iw, :] @ w[:, a, bb, :].T
    return y + b


def test_conv2d_float_vs_naive_loops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 7, 6, 3)).astype(np.float32)
    w = rng.normal(size=(4, 3, 2, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    a = Conv2dAttrs(stride=(2, 1), pad=(1, 0, 2, 1), dilation=(1, 2))
    np.testing.assert_allclose(R.conv2d(x, w, b, a), _naive_conv(x, w, b, a.stride, a.pad,
                                                                 a.dilation), rtol=1e-5)


def test_dwconv_multiplier_channel_order():
    x = np.arange(2, dtype=np.float32).reshape(1, 1, 1, 2) + 1      # channels [1, 2]
    w = np.array([10, 20, 30, 40], np.float32).reshape(1, 1, 1, 4)   # multiplier 2
    y = R.dwconv2d(x, w, None, DwConv2dAttrs(depth_multiplier=2))
    assert y.ravel().tolist() == [10, 20, 60, 80]                      # oc = ic * 2 + m


def test_avgpool_s8_rounds_half_away_from_zero():
    x = np.array([-3, -2, 2, 3], np.int8).reshape(1, 1, 4, 1)
    a = Pool2dAttrs(kernel=(1, 2), stride=(1, 2))
    y = R.avgpool2d_s8(x, a, qp.PoolQuant(-128, 127))
    assert y.ravel().tolist() == [-3, 3]                              # -2.5 -> -3, 2.5 -> 3


def test_softmax_s8_sums_to_one_and_is_monotone():
    q = qp.SoftmaxQuant(*_softmax_params(0.1))
    x = np.array([[-20, 0, 10, 30, 30, 127]], np.int8)
    y = R.softmax_s8(x, SoftmaxAttrs(), q).astype(int) + 128
    assert np.all(np.diff(y[0]) >= 0) and y[0, 3] == y[0, 4]
    assert abs(y.sum() - 256) <= 6


def _softmax_params(scale):
    real = min(scale * (1 << 26), (1 << 31) - 1.0)
    from edgeforge.qmath import quantize_multiplier
    m, s = quantize_multiplier(real)
    return m, s, -qp.calculate_input_radius(5, s)


def test_gemmlowp_functions_track_float_math():
    t = np.linspace(-7.9, 7.9, 401)
    q4 = np.round(t * (1 << 27)).astype(np.int64)
    np.testing.assert_allclose(fx.fx_logistic(q4, 4) / 2.0 ** 31, 1 / (1 + np.exp(-t)),
                               atol=2e-6)
    np.testing.assert_allclose(fx.fx_tanh(q4, 4) / 2.0 ** 31, np.tanh(t), atol=4e-6)
    neg = -np.abs(q4)
    np.testing.assert_allclose(fx.fx_exp_on_negative_values(neg, 4) / 2.0 ** 31,
                               np.exp(-np.abs(t)), atol=2e-6)
    x = np.array([1 << 19, 3 << 19, 1000 << 19], np.int64)            # 1, 3, 1000 in Q12.19
    r, bits = fx.fx_reciprocal(x, 12)
    np.testing.assert_allclose(r / 2.0 ** 31 * 2.0 ** -bits.astype(float),
                               [1, 1 / 3, 1 / 1000], rtol=1e-6)


def test_calculate_input_radius():
    assert qp.calculate_input_radius(4, 0) == math.floor(15 * 2 ** 27)
    assert qp.calculate_input_radius(5, 20) == math.floor(31 * 2 ** 26 / 2 ** 20)
