"""compress.finetune: every op's backward against a numerical derivative of the reference
forward, the loss gradient, and the clear error for an op with no gradient."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.compress import finetune as ft
from edgeforge.ir import (
    Act,
    BinaryAttrs,
    ClipAttrs,
    Conv2dAttrs,
    DwConv2dAttrs,
    FcAttrs,
    Graph,
    MeanAttrs,
    NoAttrs,
    Node,
    Op,
    Pool2dAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    Tensor,
)
from edgeforge.runtime.reference import REFERENCE

R = np.random.default_rng(7)


def _r(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


CASES = {
    "conv3x3_s2_relu6": (Op.CONV2D, [_r(2, 7, 6, 3), _r(4, 3, 3, 3), _r(4)],
                         Conv2dAttrs(stride=(2, 2), pad=(1, 0, 1, 1), act=Act.RELU6)),
    "conv_dilated": (Op.CONV2D, [_r(1, 7, 7, 2), _r(3, 3, 3, 2), None],
                     Conv2dAttrs(dilation=(2, 2), pad=(2, 2, 2, 2))),
    "conv1x1_relu": (Op.CONV2D, [_r(2, 4, 4, 5), _r(6, 1, 1, 5), _r(6)],
                     Conv2dAttrs(act=Act.RELU)),
    "dwconv_mult2": (Op.DWCONV2D, [_r(2, 6, 5, 3), _r(1, 3, 3, 6), _r(6)],
                     DwConv2dAttrs(stride=(2, 1), pad=(1, 1, 1, 1), depth_multiplier=2,
                                   act=Act.RELU)),
    "fc_relu": (Op.FC, [_r(3, 8), _r(5, 8), _r(5)], FcAttrs(act=Act.RELU)),
    "add_broadcast_relu": (Op.ADD, [_r(2, 3, 3, 4), _r(1, 1, 1, 4)],
                           BinaryAttrs(act=Act.RELU)),
    "sub": (Op.SUB, [_r(2, 3, 4), _r(2, 3, 4)], BinaryAttrs()),
    "mean": (Op.MEAN, [_r(2, 4, 3, 5)], MeanAttrs(axes=(1, 2), keepdims=False)),
    "avgpool_pad": (Op.AVGPOOL2D, [_r(2, 5, 5, 3)],
                    Pool2dAttrs(kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1))),
    "avgpool_2x2": (Op.AVGPOOL2D, [_r(1, 4, 4, 2)],
                    Pool2dAttrs(kernel=(2, 2), stride=(2, 2), count_include_pad=True)),
    "maxpool_pad_relu": (Op.MAXPOOL2D, [_r(2, 5, 5, 3)],
                         Pool2dAttrs(kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1),
                                     act=Act.RELU)),
    "relu": (Op.RELU, [_r(2, 9)], NoAttrs()),
    "relu6": (Op.RELU6, [4 * _r(2, 9)], NoAttrs()),
    "clip": (Op.CLIP, [_r(2, 9)], ClipAttrs(min=-0.5, max=0.7)),
    "reshape": (Op.RESHAPE, [_r(2, 3, 4)], ReshapeAttrs(shape=(2, 12))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_backward_matches_a_numerical_derivative(case: str) -> None:
    op, inputs, attrs = CASES[case]
    y = REFERENCE[op](*inputs, attrs)
    r = _r(*y.shape)                                # loss = sum(y * r): dL/dy = r

    def loss(args: list) -> float:
        return float(np.sum(REFERENCE[op](*args, attrs).astype(np.float64) * r))
    grads = ft.GRAD[op](inputs, y, r, attrs)
    assert len(grads) == len(inputs)
    eps = 1e-3
    for k, v in enumerate(inputs):
        if v is None:
            continue
        d = _r(*v.shape)                            # a random direction
        plus = [a if i != k else v + eps * d for i, a in enumerate(inputs)]
        minus = [a if i != k else v - eps * d for i, a in enumerate(inputs)]
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = float(np.sum(np.asarray(grads[k], np.float64) * d))
        assert np.shape(grads[k]) == v.shape
        assert abs(numeric - analytic) <= 2e-3 * max(1.0, abs(numeric)), (case, k)


@pytest.mark.parametrize("logits", [True, False])
def test_loss_gradient_matches_a_numerical_derivative(logits: bool) -> None:
    s, t, d = _r(4, 10), _r(4, 10), _r(4, 10)
    _, g = ft._loss_grad(s, t, logits, 2.0)
    eps = 1e-4
    numeric = (ft._loss_grad(s.astype(np.float64) + eps * d, t, logits, 2.0)[0]
               - ft._loss_grad(s.astype(np.float64) - eps * d, t, logits, 2.0)[0]) / (2 * eps)
    assert abs(numeric - float(np.sum(g * d))) <= 1e-5 * max(1.0, abs(numeric))


def _tiny(last: Op = Op.SOFTMAX) -> Graph:
    """x -> conv 3x3 relu6 -> depthwise -> + x-branch conv -> mean -> fc -> `last`."""
    g = Graph(name="tiny", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 6, 6, 2)))
    layers = [("c1", Op.CONV2D, "x", (4, 3, 3, 2), Conv2dAttrs(pad=(1, 1, 1, 1), act=Act.RELU6)),
              ("d1", Op.DWCONV2D, "c1", (1, 3, 3, 4), DwConv2dAttrs(pad=(1, 1, 1, 1))),
              ("c2", Op.CONV2D, "x", (4, 1, 1, 2), Conv2dAttrs())]
    for name, op, x, shape, attrs in layers:
        g.const(f"{name}/w", 0.5 * _r(*shape))
        g.const(f"{name}/b", 0.1 * _r(shape[0] if op == Op.CONV2D else shape[3]))
        g.add_tensor(Tensor(name, (1, 6, 6, 4)))
        g.nodes.append(Node(op, (x, f"{name}/w", f"{name}/b"), (name,), attrs, name))
    g.const("fc/w", _r(3, 4))
    for name, shape in (("s", (1, 6, 6, 4)), ("m", (1, 4)), ("logits", (1, 3)), ("y", (1, 3))):
        g.add_tensor(Tensor(name, shape))
    g.nodes += [Node(Op.ADD, ("d1", "c2"), ("s",), BinaryAttrs(act=Act.RELU), "add"),
                Node(Op.MEAN, ("s",), ("m",), MeanAttrs(axes=(1, 2), keepdims=False), "mean"),
                Node(Op.FC, ("m", "fc/w"), ("logits",), FcAttrs(), "fc"),
                Node(last, ("logits",), ("y",),
                     SoftmaxAttrs(axis=1) if last == Op.SOFTMAX else NoAttrs(), "last")]
    return g


def test_training_brings_a_perturbed_student_back_to_the_teacher() -> None:
    teacher = _tiny()
    student = teacher.copy()
    for name in ("c1/w", "d1/w", "c2/w", "fc/w"):
        w = teacher.tensors[name].data
        student.tensors[name] = Tensor(name, w.shape, data=w + 0.3 * _r(*w.shape))
    student.tensors["c2/w"].data[0] = 0.0           # a pruned weight stays pruned
    out = ft.finetune(student, teacher, _r(64, 6, 6, 2), epochs=40, batch_size=16, lr=1e-2)
    assert out.meta["finetune"]["loss_last"] < 0.2 * out.meta["finetune"]["loss_first"]
    assert not out.tensors["c2/w"].data[0].any()
    assert student.tensors["fc/w"].data is not out.tensors["fc/w"].data   # a copy
    over = ft.finetune(student, teacher, _r(64, 6, 6, 2), max_work=1e6)   # < 5 epochs fit
    assert "skipped" in over.meta["finetune"]
    assert np.array_equal(over.tensors["fc/w"].data, student.tensors["fc/w"].data)


def test_an_op_with_no_gradient_is_a_clear_error() -> None:
    g = _tiny(Op.LOGISTIC)
    with pytest.raises(ft.FinetuneError, match="LOGISTIC.*no gradient"):
        ft.finetune(g, g, _r(8, 6, 6, 2), epochs=1)


def test_compress_keeps_the_layer_wise_refit_with_a_warning_when_an_op_has_no_gradient(
        ) -> None:
    from edgeforge.compress.prune import compress
    out, report = compress(_tiny(Op.LOGISTIC), _r(40, 6, 6, 2), prune_channels=0.3)
    assert any("no gradient" in w and "layer-wise refit" in w for w in report["warnings"])
    assert "finetune" not in report and out.meta["distilled"]
    _, report = compress(_tiny(), _r(40, 6, 6, 2), prune_channels=0.3)
    assert report["finetune"]["loss_last"] < report["finetune"]["loss_first"]
