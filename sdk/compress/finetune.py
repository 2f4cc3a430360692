"""End-to-end distillation: train a pruned float graph (the student) for a few epochs to
reproduce the unpruned graph's (the teacher's) outputs on calibration inputs.

Layer-wise least squares (compress.distill) fits each layer to the teacher's layer on its
own; what a pruned channel carried for the layers after it is lost. Here the loss is at the
output: KL divergence at temperature T between the teacher's and the student's logits (the
input of a final SOFTMAX), or mean squared error for other outputs; the gradient flows back
through every op (GRAD: one backward function per op, on the reference kernels' float
forward) and Adam updates every CONV2D / DWCONV2D / FC weight and bias. Weights that are
zero (magnitude pruning) stay zero. No labels are used: the teacher labels every input, and
each batch is mixed up (x = l x_i + (1 - l) x_j, l ~ Beta(a, a)) so a few hundred
calibration samples cover more of the input space than their own points.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.ir import ACT_RANGE, WEIGHTED, Act, Graph, Node, Op
from edgeforge.runtime.reference import REFERENCE, windows

# Training cost bound, multiply-adds (forward + backward = 3x MACs per sample per epoch):
# 20 epochs of the digits ResNet-style net pruned to 0.41 M MACs on 205 samples take 5e9.
MAX_WORK = 1e10
MIN_EPOCHS = 5


class FinetuneError(EdgeforgeError):
    """A graph end-to-end distillation cannot train (names the op and node)."""


# ---------------------------------------------------------------- backward, one per op
# grad(inputs, y, gy, attrs) -> one gradient per input (None for an absent input), where
# inputs are the forward's operands, y its output and gy the loss gradient at y.
def _act_mask(y: np.ndarray, gy: np.ndarray, act: Act) -> np.ndarray:
    """The gradient through a fused clamp, from the clamped output (flat at the bounds)."""
    if act == Act.NONE:
        return gy
    lo, hi = ACT_RANGE[Act(act)]
    return gy * ((y > lo) & (y < hi))


def _unwindow(gwin: np.ndarray, shape: tuple[int, ...], stride: tuple[int, int],
              dil: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
    """Adjoint of reference.windows: [N, OH, OW, KH, KW, C] gradients summed back onto the
    [N, H, W, C] input they were read from (padding dropped)."""
    n, h, w, c = shape
    t, left, b, r = pad
    oh, ow, kh, kw = gwin.shape[1:5]
    gp = np.zeros((n, h + t + b, w + left + r, c), gwin.dtype)
    for i in range(kh):
        for j in range(kw):
            hs, ws = i * dil[0], j * dil[1]
            gp[:, hs:hs + stride[0] * (oh - 1) + 1:stride[0],
               ws:ws + stride[1] * (ow - 1) + 1:stride[1]] += gwin[:, :, :, i, j]
    return gp[:, t:t + h, left:left + w]


def _im2col(x: np.ndarray, k: tuple[int, int], stride: tuple[int, int],
            dil: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
    """reference.windows as a contiguous float32 [N, OH, OW, KH, KW, C] array, one strided
    slice per tap (copying the 6-D view at once is several times slower)."""
    t, left, b, r = pad
    xp = np.pad(x.astype(np.float32), ((0, 0), (t, b), (left, r), (0, 0)))
    oh = (xp.shape[1] - (k[0] - 1) * dil[0] - 1) // stride[0] + 1
    ow = (xp.shape[2] - (k[1] - 1) * dil[1] - 1) // stride[1] + 1
    cols = np.empty((x.shape[0], oh, ow, k[0], k[1], x.shape[3]), np.float32)
    for i in range(k[0]):
        for j in range(k[1]):
            hs, ws = i * dil[0], j * dil[1]
            cols[:, :, :, i, j] = xp[:, hs:hs + stride[0] * (oh - 1) + 1:stride[0],
                                     ws:ws + stride[1] * (ow - 1) + 1:stride[1]]
    return cols


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Any) -> np.ndarray:
    """reference.conv2d in float32 on _im2col (the training's hot loop)."""
    cols = _im2col(x, w.shape[1:3], a.stride, a.dilation, a.pad)
    y = cols.reshape(-1, w[0].size) @ w.reshape(w.shape[0], -1).T.astype(np.float32)
    y = y if b is None else y + b.astype(np.float32)
    lo, hi = ACT_RANGE[Act(a.act)]
    y = np.clip(y, lo, hi) if a.act != Act.NONE else y
    return y.reshape(cols.shape[:3] + (w.shape[0],))


def conv2d_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x, w, b = inputs
    rows = _act_mask(y, gy, a.act).astype(np.float32).reshape(-1, w.shape[0])
    wf = w.reshape(w.shape[0], -1).astype(np.float32)
    if w.shape[1:3] == (1, 1) and a.stride == (1, 1) and not any(a.pad):   # pointwise
        gw = rows.T @ x.reshape(rows.shape[0], -1).astype(np.float32)
        return [(rows @ wf).reshape(x.shape), gw.reshape(w.shape),
                None if b is None else rows.sum(axis=0)]
    cols = _im2col(x, w.shape[1:3], a.stride, a.dilation, a.pad)
    gw = (rows.T @ cols.reshape(rows.shape[0], -1)).reshape(w.shape)
    gwin = (rows @ wf).reshape(cols.shape)
    gx = _unwindow(gwin, x.shape, a.stride, a.dilation, a.pad)
    return [gx, gw, None if b is None else rows.sum(axis=0)]


def dwconv2d_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x, w, b = inputs
    mult = w.shape[3] // x.shape[3]
    gy = _act_mask(y, gy, a.act).astype(np.float32)
    xe = np.repeat(x, mult, axis=3) if mult > 1 else x
    win = windows(xe.astype(np.float32), w.shape[1:3], a.stride, a.dilation, a.pad)
    gw = np.zeros(w.shape[1:], np.float32)
    for i in range(w.shape[1]):             # one tap at a time (see reference._dw_taps)
        for j in range(w.shape[2]):
            gw[i, j] = np.sum(win[:, :, :, i, j, :] * gy, axis=(0, 1, 2))
    gwin = gy[:, :, :, None, None, :] * w[0].astype(np.float32)
    gxe = _unwindow(gwin, xe.shape, a.stride, a.dilation, a.pad)
    gx = gxe.reshape(*x.shape, mult).sum(axis=-1) if mult > 1 else gxe
    return [gx, gw[None], None if b is None else gy.sum(axis=(0, 1, 2))]


def fc_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x, w, b = inputs
    rows = _act_mask(y, gy, a.act).astype(np.float32).reshape(-1, w.shape[0])
    xr = x.reshape(-1, w.shape[1]).astype(np.float32)
    gx = (rows @ w.astype(np.float32)).reshape(x.shape)
    return [gx, rows.T @ xr, None if b is None else rows.sum(axis=0)]


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast operand's gradient back to its own shape."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum(axis=tuple(k for k, s in enumerate(shape) if s == 1 and g.shape[k] != 1),
                 keepdims=True)


def add_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    gy = _act_mask(y, gy, a.act)
    return [_unbroadcast(gy, np.shape(v)) for v in inputs]


def sub_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    gy = _act_mask(y, gy, a.act)
    return [_unbroadcast(gy, np.shape(inputs[0])), -_unbroadcast(gy, np.shape(inputs[1]))]


def mean_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x = inputs[0]
    count = int(np.prod([x.shape[k] for k in a.axes]))
    g = gy if a.keepdims else np.expand_dims(gy, a.axes)
    return [np.broadcast_to(g / count, x.shape)]


def avgpool2d_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x = inputs[0]
    gy = _act_mask(y, gy, a.act).astype(np.float32)
    if a.count_include_pad:
        cnt: Any = a.kernel[0] * a.kernel[1]
    else:
        ones = np.ones((1,) + x.shape[1:3] + (1,))
        cnt = windows(ones, a.kernel, a.stride, (1, 1), a.pad).sum(axis=(3, 4))
    g = np.broadcast_to((gy / cnt)[:, :, :, None, None, :],
                        gy.shape[:3] + tuple(a.kernel) + gy.shape[3:])
    return [_unwindow(g, x.shape, a.stride, (1, 1), a.pad)]


def maxpool2d_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    x = inputs[0]
    gy = _act_mask(y, gy, a.act).astype(np.float32)
    win = windows(x, a.kernel, a.stride, (1, 1), a.pad, value=-np.inf)
    top = win == win.max(axis=(3, 4), keepdims=True)      # ties share the gradient
    g = top * (gy / top.sum(axis=(3, 4)))[:, :, :, None, None, :]
    return [_unwindow(g, x.shape, a.stride, (1, 1), a.pad)]


def _clamp_grad(lo: float, hi: float) -> Callable[..., list]:
    def grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
        return [gy * ((inputs[0] > lo) & (inputs[0] < hi))]
    return grad


def clip_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    return _clamp_grad(a.min, a.max)(inputs, y, gy, a)


def reshape_grad(inputs: list, y: np.ndarray, gy: np.ndarray, a: Any) -> list:
    return [gy.reshape(np.shape(inputs[0]))] + [None] * (len(inputs) - 1)


GRAD: dict[Op, Callable[..., list]] = {
    Op.CONV2D: conv2d_grad, Op.DWCONV2D: dwconv2d_grad, Op.FC: fc_grad,
    Op.ADD: add_grad, Op.SUB: sub_grad, Op.MEAN: mean_grad, Op.AVGPOOL2D: avgpool2d_grad,
    Op.MAXPOOL2D: maxpool2d_grad,
    Op.RELU: _clamp_grad(0.0, np.inf), Op.RELU6: _clamp_grad(0.0, 6.0), Op.CLIP: clip_grad,
    Op.RESHAPE: reshape_grad,
}


# ---------------------------------------------------------------- the training loop
def _logit_targets(g: Graph) -> tuple[list[str], list[bool]]:
    """What the loss compares, per graph output: the input of a final SOFTMAX (KL at a
    temperature on the logits) or the output itself (mean squared error)."""
    producer = {n.outputs[0]: n for n in g.nodes}
    names, is_logits = [], []
    for o in g.outputs:
        n = producer.get(o)
        soft = n is not None and n.op == Op.SOFTMAX and n.attrs.axis in (-1, 1)
        names.append(n.inputs[0] if soft else o)
        is_logits.append(soft)
    return names, is_logits


def _needed(g: Graph, targets: list[str]) -> list[Node]:
    """The nodes `targets` depend on, in graph order; a node with no gradient is an error."""
    producer = {n.outputs[0]: n for n in g.nodes}
    need, todo = set(), list(targets)
    while todo:
        n = producer.get(todo.pop())
        if n is not None and n.outputs[0] not in need:
            need.add(n.outputs[0])
            todo.extend(i for i in n.inputs if i)
    nodes = [n for n in g.nodes if n.outputs[0] in need]
    for n in nodes:
        if n.op not in GRAD or len(n.outputs) != 1:
            raise FinetuneError(f"{g.name}: node '{n.name or n.outputs[0]}' ({n.op}): no "
                                f"gradient for end-to-end distillation; ops with one: "
                                f"{', '.join(sorted(GRAD))}")
    return nodes


def _operands(n: Node, consts: dict[str, np.ndarray], env: dict[str, np.ndarray]) -> list:
    """n's operands by value; a weighted op's omitted bias is None (as the runtime pads)."""
    args = [None if not i else consts[i] if i in consts else env[i] for i in n.inputs]
    return args + [None] * (3 - len(args)) if n.op in WEIGHTED else args


def _forward(nodes: list[Node], consts: dict[str, np.ndarray], feeds: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    env = dict(feeds)
    for n in nodes:
        fn = conv2d if n.op == Op.CONV2D else REFERENCE[n.op]
        env[n.outputs[0]] = fn(*_operands(n, consts, env), n.attrs)
    return env


def _backward(nodes: list[Node], consts: dict[str, np.ndarray], env: dict[str, np.ndarray],
              grads: dict[str, np.ndarray], params: set[str]) -> dict[str, np.ndarray]:
    """Loss gradients of `params`, from `grads` (the loss gradient at the targets)."""
    out: dict[str, np.ndarray] = {}
    for n in reversed(nodes):
        gy = grads.pop(n.outputs[0], None)
        if gy is None:
            continue
        args = _operands(n, consts, env)
        for name, g in zip(n.inputs, GRAD[n.op](args, env[n.outputs[0]], gy, n.attrs)):
            if g is None or not name or (name in consts and name not in params):
                continue
            into = out if name in params else grads
            into[name] = into[name] + g if name in into else g
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _loss_grad(s: np.ndarray, t: np.ndarray, logits: bool, temperature: float
               ) -> tuple[float, np.ndarray]:
    """(loss, d loss / d s) over a batch: T^2 KL(softmax(t/T) || softmax(s/T)) per sample
    for logits (Hinton et al.'s scaling), else the mean squared error."""
    s, t = s.astype(np.float64), t.astype(np.float64)
    if logits:
        pt, ps = _softmax(t / temperature), _softmax(s / temperature)
        kl = np.sum(pt * (np.log(pt + 1e-12) - np.log(ps + 1e-12))) / s.shape[0]
        return temperature ** 2 * kl, temperature * (ps - pt) / s.shape[0]
    d = s - t
    return float(np.mean(d * d)), 2 * d / d.size


def _batches(arrays: list[np.ndarray], b: int, mixup: float, rng: np.random.Generator
             ) -> Iterator[list[np.ndarray]]:
    """One epoch of shuffled batches of b samples; with `mixup` > 0 each sample is mixed
    with another of its batch (weight ~ Beta(mixup, mixup)): the teacher labels the mix."""
    order = rng.permutation(arrays[0].shape[0])
    for s in range(0, len(order) - b + 1, b):
        xs = [a[order[s:s + b]] for a in arrays]
        if mixup:
            lam = rng.beta(mixup, mixup, (b,) + (1,) * (xs[0].ndim - 1)).astype(np.float32)
            other = rng.permutation(b)
            xs = [lam * x + (1 - lam) * x[other] for x in xs]
        yield xs


class _Adam:
    """Adam (bias-corrected) on the parameters in `consts`; weights that start at zero (a
    magnitude-pruned model's) stay zero."""

    def __init__(self, consts: dict[str, np.ndarray], params: set[str]) -> None:
        self.keep = {p: consts[p] != 0 for p in params}
        self.m1 = {p: np.zeros_like(consts[p]) for p in params}
        self.m2 = {p: np.zeros_like(consts[p]) for p in params}
        self.step = 0

    def update(self, consts: dict[str, np.ndarray], grads: dict[str, np.ndarray],
               rate: float) -> None:
        self.step += 1
        c1, c2 = 1 - 0.9 ** self.step, 1 - 0.999 ** self.step
        for p, g in grads.items():
            self.m1[p] = 0.9 * self.m1[p] + 0.1 * g
            self.m2[p] = 0.999 * self.m2[p] + 0.001 * g * g
            upd = (self.m1[p] / c1) / (np.sqrt(self.m2[p] / c2) + 1e-8)
            consts[p] = np.where(self.keep[p], consts[p] - rate * upd, 0.0)


def finetune(student: Graph, teacher: Graph, data: Any, *, epochs: int = 20,
             batch_size: int = 16, lr: float = 2e-3, temperature: float = 2.0,
             mixup: float = 1.0, seed: int = 0, max_samples: int = 1024,
             max_work: float = MAX_WORK, verbose: int = 0) -> Graph:
    """A copy of `student` (a pruned `teacher`: same input and output names) whose CONV2D /
    DWCONV2D / FC weights and biases are trained end to end with Adam (cosine-decayed `lr`)
    to match the teacher's outputs on `data` (calibration inputs). meta["finetune"] holds the
    first and last epoch's mean loss. Epochs are cut to fit `max_work` multiply-adds (3x
    the student's MACs per sample); fewer than MIN_EPOCHS leave the student as it was
    (meta["finetune"]["skipped"]). Raises FinetuneError for an op with no gradient."""
    from edgeforge.quantize.calibrate import batch_runner, load_calib, rebatch
    from edgeforge.quantize.quantize import one_blas_thread
    arrays = [a[:max_samples] for a in load_calib(data, teacher)]
    n = arrays[0].shape[0]
    b = max(1, min(batch_size, n))
    targets, is_logits = _logit_targets(student)
    _needed(student, targets)                           # every op has a gradient
    epochs = min(epochs, int(max_work // max(3 * student.macs() * n, 1)))
    if epochs < MIN_EPOCHS:
        out = student.copy()
        out.meta["finetune"] = {"skipped": f"{student.macs():,} MACs x {n} samples: fewer "
                                f"than {MIN_EPOCHS} epochs fit {max_work:.0e} multiply-adds"}
        return out
    t_targets, _ = _logit_targets(teacher)
    run_teacher = batch_runner(teacher)
    out = student.copy()
    for t in out.tensors.values():
        if t.data is not None:
            t.data = t.data.copy()
    sb = rebatch(out, b)
    if sb is None:
        raise FinetuneError(f"{student.name}: end-to-end distillation needs a graph with "
                            "batch dimension 1")
    nodes = _needed(sb, targets)
    params = {i for nd in nodes if nd.op in WEIGHTED for i in nd.inputs[1:3] if i}
    consts = {k: t.data.astype(np.float64) for k, t in sb.tensors.items() if t.is_const}
    adam = _Adam(consts, params)
    rng = np.random.default_rng(seed)
    steps, losses = epochs * (n // b), []
    with one_blas_thread():                             # small matmuls: threads only wait
        for _ in range(epochs):
            total = 0.0
            for xs in _batches(arrays, b, mixup, rng):
                want = run_teacher(xs)
                env = _forward(nodes, consts, dict(zip(sb.inputs, xs)))
                grads = {}
                for name, t_name, logits in zip(targets, t_targets, is_logits):
                    loss, grads[name] = _loss_grad(env[name], want[t_name], logits, temperature)
                    total += loss
                rate = lr * 0.5 * (1 + np.cos(np.pi * adam.step / max(steps, 1)))
                adam.update(consts, _backward(nodes, consts, env, grads, params), rate)
            losses.append(total / max(n // b, 1))
    for p in params:
        out.tensors[p].data = consts[p].astype(np.float32)
    out.meta["finetune"] = {"epochs": epochs, "samples": n, "loss_first": losses[0] if losses
                            else None, "loss_last": losses[-1] if losses else None}
    return out
