"""Write the small .onnx models the ONNX tests use (committed; tests never run this).

    pip install torch==2.13.0      # only this script needs torch; the package does not
    python tests/models/make_models.py

* mobilenet_tiny.onnx  torch.onnx.export of a MobileNetV2-style net: ZeroPad2d, Conv+BN+ReLU6
                       (Clip), depthwise Conv+BN+ReLU6, inverted residual with Add, global
                       pool, Flatten, Linear (Gemm). Opset 11, dynamic batch.
* resnet_tiny.onnx     torch.onnx.export of a ResNet-style net: Conv+BN+Relu, MaxPool, two
                       basic blocks (one with a strided 1x1 downsample), AvgPool leaving 2x2,
                       Flatten of a real NCHW tensor, Linear. Opset 17, dynamic batch.
* tf2onnx_nhwc.onnx    built with onnx.helper the way tf2onnx writes a Keras model: NHWC
                       input, an NHWC Pad, Transpose(0,3,1,2) before and (0,2,3,1) after
                       every Conv, a residual Add and a Concat(axis=3) in NHWC, ReduceMean
                       over axes (1,2), MatMul + Add, Softmax. Opset 13.

Weights are seeded, so re-running reproduces the same files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _torch_models() -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)

    def cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU6) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups,
                                             bias=False), nn.BatchNorm2d(cout)]
        return layers + ([act()] if act else [])

    class InvertedResidual(nn.Module):
        def __init__(self, c: int, expand: int):
            super().__init__()
            self.body = nn.Sequential(*cbr(c, c * expand, 1), *cbr(c * expand, c * expand,
                                                                   groups=c * expand),
                                      *cbr(c * expand, c, 1, act=None))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x)

    class MobileNetTiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)),
                                      nn.Conv2d(3, 8, 3, 2, 0, bias=False), nn.BatchNorm2d(8),
                                      nn.ReLU6())
            self.dw = nn.Sequential(*cbr(8, 8, groups=8), *cbr(8, 16, 1, act=None))
            self.block = InvertedResidual(16, 4)
            self.head = nn.Sequential(*cbr(16, 32, 1, 2))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.head(self.block(self.dw(self.stem(x))))
            return self.fc(torch.flatten(self.pool(x), 1))

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(*cbr(cin, cout, 3, stride, act=nn.ReLU),
                                      *cbr(cout, cout, 3, act=None))
            self.down = (nn.Sequential(*cbr(cin, cout, 1, stride, act=None))
                         if stride != 1 or cin != cout else nn.Identity())
            self.relu = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.body(x) + self.down(x))

    class ResNetTiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(*cbr(3, 16, 3, 1, act=nn.ReLU), nn.MaxPool2d(2))
            self.layers = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 24, 2))
            self.pool = nn.AvgPool2d(4)
            self.fc = nn.Linear(24 * 2 * 2, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool(self.layers(self.stem(x)))
            return self.fc(torch.flatten(x, 1))

    for name, model, opset in (("mobilenet_tiny", MobileNetTiny(), 11),
                               ("resnet_tiny", ResNetTiny(), 17)):
        model.eval()
        for m in model.modules():   # non-trivial BN statistics, so folding is really tested
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(HERE / f"{name}.onnx"),
                          dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"},
                                                                 "logits": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)


def _tf2onnx_model() -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def init_i(name: str, values: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def conv(x: str, cin: int, cout: int, k: int, stride: int, group: int, tag: str,
             pad: int | None = None) -> str:
        # tf2onnx: NHWC tensor -> Transpose to NCHW -> Conv -> Relu -> Transpose back to NHWC
        w = rng.standard_normal((cout, cin // group, k, k)) / np.sqrt(k * k * cin / group)
        nodes.append(helper.make_node("Transpose", [x], [f"{tag}_nchw"], perm=[0, 3, 1, 2]))
        nodes.append(helper.make_node("Conv", [f"{tag}_nchw", init(f"{tag}_w", w),
                                               init(f"{tag}_b", rng.standard_normal(cout) * .1)],
                                      [f"{tag}_conv"], kernel_shape=[k, k], strides=[stride] * 2,
                                      pads=[k // 2 if pad is None else pad] * 4, group=group))
        nodes.append(helper.make_node("Relu", [f"{tag}_conv"], [f"{tag}_relu"]))
        nodes.append(helper.make_node("Transpose", [f"{tag}_relu"], [f"{tag}_nhwc"],
                                      perm=[0, 2, 3, 1]))
        return f"{tag}_nhwc"

    # tf2onnx writes an explicit NHWC Pad for Keras' asymmetric SAME on stride 2
    nodes.append(helper.make_node("Pad", ["input", init_i("pads", [0, 0, 0, 0, 0, 1, 1, 0])],
                                  ["padded"], mode="constant"))
    x = conv("padded", 3, 8, 3, 2, 1, "conv1", pad=0)
    x = conv(x, 8, 8, 3, 1, 8, "dw2")
    a = conv(x, 8, 8, 1, 1, 1, "pw2a")
    b = conv(x, 8, 8, 1, 1, 1, "pw2b")
    nodes.append(helper.make_node("Add", [a, x], ["res"]))            # residual, in NHWC
    nodes.append(helper.make_node("Concat", ["res", b], ["cat"], axis=3))
    x = "cat"
    nodes.append(helper.make_node("ReduceMean", [x], ["gap"], axes=[1, 2], keepdims=0))
    nodes.append(helper.make_node("MatMul", ["gap", init("dense_w", rng.standard_normal(
        (16, 10)) / 4)], ["dense_mm"]))   # Keras Dense: MatMul + Add
    nodes.append(helper.make_node("Add", ["dense_mm", init("dense_b", rng.standard_normal(10)
                                                          * .1)], ["dense"]))
    nodes.append(helper.make_node("Softmax", ["dense"], ["probs"], axis=-1))
    graph = helper.make_graph(
        nodes, "tf2onnx_nhwc",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["unk__0", 16, 16, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["unk__0", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tf2onnx")
    onnx.checker.check_model(model)
    onnx.save(model, str(HERE / "tf2onnx_nhwc.onnx"))


if __name__ == "__main__":
    import sys
    if "--tf2onnx-only" not in sys.argv:
        _torch_models()
    _tf2onnx_model()
    for f in sorted(HERE.glob("*.onnx")):
        print(f"{f.name}: {f.stat().st_size} bytes")
