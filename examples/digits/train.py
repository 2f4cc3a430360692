"""Train a small CNN on scikit-learn's 8x8 digits with numpy alone, and write:

    digits.onnx           float model, NCHW input "input" [1, 1, 8, 8] (pixels / 16)
    digits_float.tflite   the same float model as .tflite (NHWC input [1, 8, 8, 1])
    calib.npz             "input": 256 training images [256, 8, 8, 1] float32 (calibration)
    test.npz              "x": test images [N, 8, 8, 1] float32, "y": labels [N] int64

Run from the repository root:  python examples/digits/train.py   (~1 minute, seeded)

Model (NHWC, as the IR):  conv3x3 1->16 relu | dwconv3x3 s2 relu | conv1x1 16->48 relu |
conv3x3 48->32 relu | flatten 512 | fc 10 | softmax.  No torch: a tiny im2col
forward/backward and Adam, below.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0


# ---------------------------------------------------------------- layers (NHWC, im2col)
def patches(x: np.ndarray, k: int, stride: int, pad: tuple[int, ...]) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, k*k, C] (taps in (kh, kw) order); pad (t, l, b, r)."""
    h, w = x.shape[1:3]
    t, left, b, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    oh, ow = (h + t + b - k) // stride + 1, (w + left + r - k) // stride + 1
    taps = [xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
            for i in range(k) for j in range(k)]
    return np.stack(taps, axis=3)


def unpatch(d: np.ndarray, shape: tuple[int, ...], k: int, stride: int,
            pad: tuple[int, ...]) -> np.ndarray:
    """Adjoint of patches: scatter-add [N, OH, OW, k*k, C] back to [N, H, W, C]."""
    n, h, w, c = shape
    oh, ow = d.shape[1], d.shape[2]
    t, left, b, r = pad
    dx = np.zeros((n, h + t + b, w + left + r, c), d.dtype)
    for tap in range(k * k):
        i, j = divmod(tap, k)
        dx[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :] += d[:, :, :, tap, :]
    return dx[:, t:t + h, left:left + w, :]


class Conv:
    def __init__(self, rng, cin, cout, k, stride=1, pad=(0, 0, 0, 0)):
        self.k, self.s, self.p = k, stride, pad
        self.w = (rng.standard_normal((cout, k, k, cin)) * np.sqrt(2.0 / (k * k * cin))
                  ).astype(np.float32)
        self.b = np.zeros(cout, np.float32)

    def __call__(self, x):
        self.x = x
        self.cols = patches(x, self.k, self.s, self.p)
        n, oh, ow = self.cols.shape[:3]
        cols = self.cols.reshape(n * oh * ow, -1)
        return (cols @ self.w.reshape(len(self.b), -1).T + self.b).reshape(n, oh, ow, -1)

    def backward(self, dy):
        co = dy.shape[-1]
        d2 = dy.reshape(-1, co)
        cols = self.cols.reshape(d2.shape[0], -1)
        self.dw = (d2.T @ cols).reshape(self.w.shape)
        self.db = d2.sum(0)
        dcols = (d2 @ self.w.reshape(co, -1)).reshape(self.cols.shape)
        return unpatch(dcols, self.x.shape, self.k, self.s, self.p)


class DwConv:
    def __init__(self, rng, c, k, stride=1, pad=(0, 0, 0, 0)):
        self.k, self.s, self.p = k, stride, pad
        self.w = (rng.standard_normal((1, k, k, c)) * np.sqrt(2.0 / (k * k))).astype(np.float32)
        self.b = np.zeros(c, np.float32)

    def __call__(self, x):
        self.x = x
        self.cols = patches(x, self.k, self.s, self.p)          # [N, OH, OW, T, C]
        return (self.cols * self.w.reshape(1, 1, 1, -1, self.b.size)).sum(3) + self.b

    def backward(self, dy):
        taps = self.w.reshape(-1, self.b.size)
        self.dw = np.einsum("nhwtc,nhwc->tc", self.cols, dy).reshape(self.w.shape)
        self.db = dy.sum((0, 1, 2))
        return unpatch(dy[:, :, :, None, :] * taps, self.x.shape, self.k, self.s, self.p)


class Fc:
    def __init__(self, rng, cin, cout):
        self.w = (rng.standard_normal((cout, cin)) * np.sqrt(1.0 / cin)).astype(np.float32)
        self.b = np.zeros(cout, np.float32)

    def __call__(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, dy):
        self.dw, self.db = dy.T @ self.x, dy.sum(0)
        return dy @ self.w


class Net:
    def __init__(self, rng):
        same = (1, 1, 1, 1)
        self.conv1 = Conv(rng, 1, 16, 3, 1, same)
        self.dw = DwConv(rng, 16, 3, 2, (0, 0, 1, 1))     # TF "SAME" for 8 -> 4
        self.pw = Conv(rng, 16, 48, 1)
        self.conv3 = Conv(rng, 48, 32, 3, 1, same)
        self.fc = Fc(rng, 4 * 4 * 32, 10)
        self.layers = [self.conv1, self.dw, self.pw, self.conv3]

    def __call__(self, x):
        self.masks = []
        for layer in self.layers:
            x = layer(x)
            self.masks.append(x > 0)
            x = np.maximum(x, 0)
        self.shape = x.shape
        return self.fc(x.reshape(x.shape[0], -1))

    def backward(self, dlogits):
        d = self.fc.backward(dlogits).reshape(self.shape)
        for layer, m in zip(reversed(self.layers), reversed(self.masks)):
            d = layer.backward(d * m)

    def params(self):
        for layer in self.layers + [self.fc]:
            yield layer, "w"
            yield layer, "b"


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def train(x: np.ndarray, y: np.ndarray, epochs: int, rng: np.random.Generator) -> Net:
    net = Net(rng)
    m = {id(layer) * 2 + (k == "b"): 0.0 for layer, k in net.params()}
    v = dict(m)
    lr, b1, b2, wd, step = 3e-3, 0.9, 0.999, 1e-4, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 32):
            idx = order[s:s + 32]
            p = softmax(net(x[idx]))
            d = p.copy()
            d[np.arange(len(idx)), y[idx]] -= 1.0
            net.backward(d / len(idx))
            step += 1
            for layer, k in net.params():
                key = id(layer) * 2 + (k == "b")
                g = getattr(layer, "d" + k) + (wd * getattr(layer, k) if k == "w" else 0)
                m[key] = b1 * m[key] + (1 - b1) * g
                v[key] = b2 * v[key] + (1 - b2) * g * g
                mh, vh = m[key] / (1 - b1 ** step), v[key] / (1 - b2 ** step)
                setattr(layer, k, (getattr(layer, k) - lr * mh / (np.sqrt(vh) + 1e-8)
                                   ).astype(np.float32))
        if epoch == int(epochs * 0.7):
            lr *= 0.2
    return net


# ---------------------------------------------------------------- export
def to_ir(net: Net):
    """The trained net as a float edgeforge IR graph (NHWC)."""
    from edgeforge.ir import (
        Act,
        Conv2dAttrs,
        DwConv2dAttrs,
        FcAttrs,
        Graph,
        Node,
        Op,
        ReshapeAttrs,
        SoftmaxAttrs,
        Tensor,
    )
    g = Graph(name="digits", inputs=["input"], outputs=["probs"])
    g.add_tensor(Tensor("input", (1, 8, 8, 1)))
    relu = Act.RELU
    spec = [("conv1", Op.CONV2D, net.conv1, Conv2dAttrs(pad=net.conv1.p, act=relu), 8, 16),
            ("dw", Op.DWCONV2D, net.dw, DwConv2dAttrs(stride=(2, 2), pad=net.dw.p, act=relu),
             4, 16),
            ("pw", Op.CONV2D, net.pw, Conv2dAttrs(act=relu), 4, 48),
            ("conv3", Op.CONV2D, net.conv3, Conv2dAttrs(pad=net.conv3.p, act=relu), 4, 32)]
    x = "input"
    for name, op, layer, attrs, hw, c in spec:
        g.const(f"{name}/w", layer.w)
        g.const(f"{name}/b", layer.b)
        g.add_tensor(Tensor(f"{name}/out", (1, hw, hw, c)))
        g.nodes.append(Node(op, (x, f"{name}/w", f"{name}/b"), (f"{name}/out",), attrs, name))
        x = f"{name}/out"
    g.add_tensor(Tensor("flatten", (1, 512)))
    g.nodes.append(Node(Op.RESHAPE, (x,), ("flatten",), ReshapeAttrs((1, 512)), "flatten"))
    g.const("fc/w", net.fc.w)
    g.const("fc/b", net.fc.b)
    g.add_tensor(Tensor("logits", (1, 10)))
    g.nodes.append(Node(Op.FC, ("flatten", "fc/w", "fc/b"), ("logits",), FcAttrs(), "fc"))
    g.add_tensor(Tensor("probs", (1, 10)))
    g.nodes.append(Node(Op.SOFTMAX, ("logits",), ("probs",), SoftmaxAttrs(axis=1), "softmax"))
    return g


def to_onnx(net: Net, path: Path) -> None:
    """NCHW ONNX (opset 13): Conv/Relu, Flatten on NCHW (so the FC columns are (c, h, w))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes = [], []

    def conv(name, x, layer, stride, group):
        t, left, b, r = layer.p
        w = layer.w.transpose(3, 0, 1, 2) if group > 1 else layer.w.transpose(0, 3, 1, 2)
        inits.extend([numpy_helper.from_array(np.ascontiguousarray(w), f"{name}.weight"),
                      numpy_helper.from_array(layer.b, f"{name}.bias")])
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"],
                                      [f"{name}_out"], name=name, kernel_shape=[layer.k] * 2,
                                      strides=[stride] * 2, pads=[t, left, b, r], group=group))
        nodes.append(helper.make_node("Relu", [f"{name}_out"], [f"{name}_relu"],
                                      name=f"{name}_relu"))
        return f"{name}_relu"

    x = conv("conv1", "input", net.conv1, 1, 1)
    x = conv("dw", x, net.dw, 2, 16)
    x = conv("pw", x, net.pw, 1, 1)
    x = conv("conv3", x, net.conv3, 1, 1)
    nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1))
    w = net.fc.w.reshape(10, 4, 4, 32).transpose(0, 3, 1, 2).reshape(10, 512)
    inits.extend([numpy_helper.from_array(np.ascontiguousarray(w), "fc.weight"),
                  numpy_helper.from_array(net.fc.b, "fc.bias")])
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"],
                                  name="fc", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes, "digits", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="edgeforge examples/digits/train.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]          # [N, 8, 8, 1] in [0, 1]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    rng = np.random.default_rng(SEED)
    net = train(xtr, ytr, args.epochs, rng)
    acc = float((net(xte).argmax(1) == yte).mean())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    to_onnx(net, out / "digits.onnx")
    from edgeforge.codegen.tflite import write_tflite
    write_tflite(to_ir(net), out / "digits_float.tflite")
    calib = xtr[rng.choice(len(xtr), 256, replace=False)]
    np.savez_compressed(out / "calib.npz", input=calib)
    np.savez_compressed(out / "test.npz", x=xte, y=yte)
    print(f"digits: float test accuracy {acc:.4f} on {len(yte)} images; wrote {out}")


if __name__ == "__main__":
    main()
