"""Build the model zoo: small PyTorch versions of the architectures users deploy on MCUs,
seeded random weights, exported with torch.onnx.export, plus a calibration .npz per model
(float16 normal samples, input name 'input', ONNX layout) and manifest.json (model, family, input shape, source).

    pip install torch==2.13.0      # a development tool only; the tests need no PyTorch
    python3 -m tests.zoo.export_zoo            # rewrites tests/zoo/models/

Every model is deterministic (torch.manual_seed per model name) and small (tens to a few
hundred KB of float32 weights, small inputs) so the zoo test stays fast. BatchNorm layers
get random running statistics, so folding them is exercised with non-trivial numbers.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parent / "models"
OPSET = 17
N_CALIB = 8


# ---------------------------------------------------------------- building blocks
def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: str = "relu"):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    acts = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hswish": nn.Hardswish(), "silu": nn.SiLU(),
            "none": None}
    if acts[act] is not None:
        layers.append(acts[act])
    return nn.Sequential(*layers)


def _se(c: int, r: int, gate: str):
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(c, max(c // r, 4), 1)
            self.act = nn.ReLU() if gate == "hsigmoid" else nn.SiLU()
            self.fc2 = nn.Conv2d(max(c // r, 4), c, 1)
            self.gate = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
    return SE()


def _inverted_residual(cin: int, cout: int, k: int, s: int, expand: int, act: str = "relu6",
                       se: str | None = None):
    class IR(nn.Module):
        def __init__(self):
            super().__init__()
            mid = cin * expand
            layers = [] if expand == 1 else [conv_bn(cin, mid, 1, act=act)]
            layers.append(conv_bn(mid, mid, k, s, groups=mid, act=act))
            if se:
                layers.append(_se(mid, 4, se))
            layers.append(conv_bn(mid, cout, 1, act="none"))
            self.body = nn.Sequential(*layers)
            self.res = s == 1 and cin == cout

        def forward(self, x):
            y = self.body(x)
            return x + y if self.res else y
    return IR()


def _separable(c: int, cfg) -> tuple[list, int]:
    """MobileNetV1 / DS-CNN blocks: a depthwise 3x3 then a pointwise conv_bn per (out, stride)
    of cfg. Returns the layers and their output channels."""
    layers = []
    for cout, s in cfg:
        layers += [conv_bn(c, c, 3, s, groups=c), conv_bn(c, cout, 1)]
        c = cout
    return layers, c


def _inverted_residuals(c: int, cfg) -> tuple[list, int]:
    """One _inverted_residual per (kernel, expand, out, stride, act, se gate) of cfg. Returns
    the layers and their output channels."""
    layers = []
    for k, e, cout, s, act, se in cfg:
        layers.append(_inverted_residual(c, cout, k, s, e, act, se))
        c = cout
    return layers, c


def _classifier(body, c: int, classes: int):
    return nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


# ---------------------------------------------------------------- image classifiers
def mobilenet_v1(alpha: float = 0.25, classes: int = 2):
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
        [(1024, 2), (1024, 1)]
    stem = conv_bn(3, int(32 * alpha), 3, 2)     # built first: seeded weights in that order
    layers, c = _separable(int(32 * alpha), [(int(cout * alpha), s) for cout, s in cfg])
    return _classifier(nn.Sequential(stem, *layers), c, classes)


def mobilenet_v1_tiny():
    stem = conv_bn(3, 8, 3, 2)
    layers, c = _separable(8, [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1)])
    return _classifier(nn.Sequential(stem, *layers), c, 10)


def mobilenet_v2(width: float = 0.35):
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1)]
    c = max(int(32 * width), 8)
    stem = conv_bn(3, c, 3, 2, act="relu6")
    layers, c = _inverted_residuals(c, [(3, t, max(int(cout * width) // 4 * 4, 8),
                                         s if i == 0 else 1, "relu6", None)
                                        for t, cout, n, s in cfg for i in range(n)])
    return _classifier(nn.Sequential(stem, *layers, conv_bn(c, 128, 1, act="relu6")), 128, 10)


def mobilenet_v3_small():
    # (k, expand, out, se, act, stride) as torchvision's small config, channels halved
    cfg = [(3, 1, 8, True, "relu", 2), (3, 4, 12, False, "relu", 2), (3, 4, 12, False, "relu", 1),
           (5, 4, 20, True, "hswish", 2), (5, 4, 20, True, "hswish", 1),
           (5, 3, 24, True, "hswish", 1), (5, 3, 48, True, "hswish", 2)]
    stem = conv_bn(3, 8, 3, 2, act="hswish")
    layers, c = _inverted_residuals(8, [(k, e, cout, s, act, "hsigmoid" if se else None)
                                        for k, e, cout, se, act, s in cfg])
    layers = [stem, *layers, conv_bn(c, 96, 1, act="hswish")]
    head = nn.Sequential(nn.Linear(96, 128), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(128, 10))
    return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def efficientnet_b0ish():
    cfg = [(1, 8, 3, 1, 1), (6, 12, 3, 2, 2), (6, 20, 5, 2, 2), (6, 40, 3, 2, 1), (6, 56, 5, 1, 1)]
    stem = conv_bn(3, 16, 3, 2, act="silu")
    layers, c = _inverted_residuals(16, [(k, t, cout, s if i == 0 else 1, "silu", "sigmoid")
                                         for t, cout, k, s, n in cfg for i in range(n)])
    return _classifier(nn.Sequential(stem, *layers, conv_bn(c, 160, 1, act="silu")), 160, 10)


def shufflenet_v2():
    def shuffle(x, g=2):
        n, c, h, w = x.shape
        return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)

    class Unit(nn.Module):
        def __init__(self, cin: int, cout: int, s: int):
            super().__init__()
            self.s = s
            half = cout // 2
            bin_ = cin if s == 2 else cin // 2
            self.branch2 = nn.Sequential(conv_bn(bin_, half, 1), conv_bn(half, half, 3, s,
                                                                         groups=half, act="none"),
                                         conv_bn(half, half, 1))
            if s == 2:
                self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, s, groups=cin, act="none"),
                                             conv_bn(cin, half, 1))

        def forward(self, x):
            if self.s == 1:
                a, b = x.chunk(2, dim=1)
                out = torch.cat((a, self.branch2(b)), 1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), 1)
            return shuffle(out)

    layers = [conv_bn(3, 16, 3, 2), nn.MaxPool2d(3, 2, 1)]
    c = 16
    for cout, n in ((32, 2), (64, 2)):
        for i in range(n):
            layers.append(Unit(c, cout, 2 if i == 0 else 1))
            c = cout
    layers.append(conv_bn(c, 128, 1))
    return _classifier(nn.Sequential(*layers), 128, 10)


def squeezenet():
    class Fire(nn.Module):
        def __init__(self, cin, sq, e):
            super().__init__()
            self.sq = nn.Sequential(nn.Conv2d(cin, sq, 1), nn.ReLU())
            self.e1 = nn.Sequential(nn.Conv2d(sq, e, 1), nn.ReLU())
            self.e3 = nn.Sequential(nn.Conv2d(sq, e, 3, padding=1), nn.ReLU())

        def forward(self, x):
            s = self.sq(x)
            return torch.cat([self.e1(s), self.e3(s)], 1)

    return nn.Sequential(nn.Conv2d(3, 32, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         Fire(32, 8, 32), Fire(64, 8, 32), nn.MaxPool2d(3, 2, ceil_mode=True),
                         Fire(64, 16, 48), Fire(96, 16, 48), nn.Dropout(0.5),
                         nn.Conv2d(96, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _basic_block(cin: int, cout: int, s: int):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = conv_bn(cin, cout, 3, s)
            self.b = conv_bn(cout, cout, 3, 1, act="none")
            self.down = None if s == 1 and cin == cout else conv_bn(cin, cout, 1, s, act="none")
            self.relu = nn.ReLU()

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            return self.relu(self.b(self.a(x)) + idt)
    return Block()


def resnet18ish():
    layers = [conv_bn(3, 16, 3, 1), nn.MaxPool2d(3, 2, 1)]
    c = 16
    for cout, s in ((16, 1), (24, 2), (32, 2), (48, 2)):
        layers += [_basic_block(c, cout, s), _basic_block(cout, cout, 1)]
        c = cout
    return _classifier(nn.Sequential(*layers), c, 10)


def resnet8():
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10, 32x32)."""
    layers = [conv_bn(3, 16, 3)]
    c = 16
    for cout, s in ((16, 1), (32, 2), (64, 2)):
        layers.append(_basic_block(c, cout, s))
        c = cout
    return _classifier(nn.Sequential(*layers), c, 10)


def mcunet_like():
    """MCUNet-style: MobileNetV2 blocks with searched kernel sizes (3/5/7) and expansions."""
    cfg = [(3, 1, 8, 1), (7, 3, 16, 2), (3, 4, 16, 1), (5, 3, 24, 2), (7, 5, 24, 1),
           (5, 4, 40, 2), (3, 5, 48, 1)]
    stem = conv_bn(3, 16, 3, 2, act="relu6")
    layers, c = _inverted_residuals(16, [(k, e, cout, s, "relu6", None) for k, e, cout, s in cfg])
    return _classifier(nn.Sequential(stem, *layers), c, 2)


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))


# ---------------------------------------------------------------- audio, sensors, anomaly
def dscnn_kws():
    """MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, 64 channels, 12 classes)."""
    layers = [nn.Conv2d(1, 64, (10, 4), (2, 2), (5, 1)), nn.BatchNorm2d(64), nn.ReLU()]
    layers += _separable(64, [(64, 1)] * 4)[0]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 12))


def ad_autoencoder():
    """MLPerf Tiny anomaly detection FC autoencoder (640 = 5 frames x 128 mels), hidden 64."""
    def fc(i, o):
        return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()]
    h = 64
    return nn.Sequential(*fc(640, h), *fc(h, h), *fc(h, h), *fc(h, 8), *fc(8, h), *fc(h, h),
                         *fc(h, h), nn.Linear(h, 640))


def _rnn_kws(cell: str):
    class RnnKws(nn.Module):
        def __init__(self):
            super().__init__()
            rnn = nn.GRU if cell == "gru" else nn.LSTM
            self.rnn = rnn(10, 32, batch_first=True)
            self.fc = nn.Linear(32, 12)

        def forward(self, x):            # x: [N, 49, 10] MFCC frames
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])
    return RnnKws()


def gru_kws():
    return _rnn_kws("gru")


def lstm_kws():
    return _rnn_kws("lstm")


def _conv1d_bn(cin, cout, k, s=1, d=1):
    return nn.Sequential(nn.Conv1d(cin, cout, k, s, d * (k // 2), dilation=d, bias=False),
                         nn.BatchNorm1d(cout), nn.ReLU())


def audio_cnn_1d():
    """Raw-audio 1-D CNN (M5-style): Conv1d, BatchNorm1d, MaxPool1d, AdaptiveAvgPool1d."""
    return nn.Sequential(_conv1d_bn(1, 16, 39, 8), nn.MaxPool1d(4), _conv1d_bn(16, 16, 3),
                         nn.MaxPool1d(4), _conv1d_bn(16, 32, 3), nn.MaxPool1d(2),
                         _conv1d_bn(32, 32, 3), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(32, 10))


def vibration_cnn_1d():
    """3-axis accelerometer window (3 x 256) for machine-condition monitoring."""
    return nn.Sequential(_conv1d_bn(3, 16, 7, 2), nn.AvgPool1d(2), _conv1d_bn(16, 24, 5, 1, 2),
                         nn.AvgPool1d(2), _conv1d_bn(24, 32, 3), nn.AdaptiveAvgPool1d(1),
                         nn.Flatten(), nn.Linear(32, 4))


def tc_resnet_kws():
    """TC-ResNet-style KWS: MFCCs as channels, 1-D convolutions over time, residual adds."""
    class Block(nn.Module):
        def __init__(self, cin, cout, s):
            super().__init__()
            self.a = _conv1d_bn(cin, cout, 9, s)
            self.b = nn.Sequential(nn.Conv1d(cout, cout, 9, 1, 4, bias=False),
                                   nn.BatchNorm1d(cout))
            self.down = nn.Sequential(nn.Conv1d(cin, cout, 1, s, bias=False),
                                      nn.BatchNorm1d(cout))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.b(self.a(x)) + self.down(x))

    return nn.Sequential(nn.Conv1d(40, 16, 3, 1, 1, bias=False), Block(16, 24, 2),
                         Block(24, 32, 2), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(32, 12))


def har_cnn_1d():
    """Human activity recognition: 6 IMU channels x 128 samples, GlobalAveragePool on rank 3."""
    class Har(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(_conv1d_bn(6, 32, 5), nn.MaxPool1d(2), _conv1d_bn(32, 32, 5))
            self.fc = nn.Linear(32, 6)

        def forward(self, x):
            return self.fc(self.body(x).mean(dim=2))
    return Har()


# ---------------------------------------------------------------- dense prediction, attention
def unet_small():
    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1 = conv_bn(3, 8)
            self.e2 = conv_bn(8, 16, 3, 2)
            self.mid = conv_bn(16, 16)
            self.up = nn.ConvTranspose2d(16, 8, 2, 2)
            self.d1 = conv_bn(16, 8)
            self.out = nn.Conv2d(8, 2, 1)

        def forward(self, x):
            a = self.e1(x)
            b = self.mid(self.e2(a))
            return self.out(self.d1(torch.cat([self.up(b), a], 1)))
    return UNet()


def det_head():
    """A small FPN-style detector: backbone, nearest x2 upsample + concat, per-cell boxes."""
    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Sequential(conv_bn(3, 8, 3, 2), conv_bn(8, 16, 3, 2))
            self.c2 = nn.Sequential(conv_bn(16, 32, 3, 2), conv_bn(32, 32, 3))
            self.lat = conv_bn(32, 16, 1)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.head = nn.Sequential(conv_bn(32, 16), nn.Conv2d(16, 3 * (5 + 2), 1))

        def forward(self, x):
            a = self.c1(x)
            b = self.c2(a)
            return self.head(torch.cat([self.up(self.lat(b)), a], 1))
    return Det()


def seg_bilinear():
    """DeepLab-style segmentation head: stride-8 backbone, 1x1 classifier, bilinear x8 up."""

    class Seg(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(conv_bn(3, 16, 3, 2), conv_bn(16, 16, 3, 2, groups=16),
                                      conv_bn(16, 32, 1), conv_bn(32, 32, 3, 2, groups=32),
                                      conv_bn(32, 32, 1))
            self.cls = nn.Conv2d(32, 3, 1)

        def forward(self, x):
            y = self.cls(self.body(x))
            return nn.functional.interpolate(y, scale_factor=8, mode="bilinear",
                                             align_corners=False)
    return Seg()


def vit_tiny():
    class Block(nn.Module):
        """Pre-norm encoder layer written out (the fused nn.TransformerEncoderLayer fast path
        has no ONNX export): LayerNorm, QKV Linear, MatMul of two activations, Softmax over
        the last axis, GELU MLP."""
        def __init__(self, d: int, heads: int):
            super().__init__()
            self.h, self.dh = heads, d // heads
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

        def forward(self, x):
            n, t, d = x.shape
            q, k, v = self.qkv(self.n1(x)).reshape(n, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2) * self.dh ** -0.5, dim=-1)
            x = x + self.proj((a @ v).transpose(1, 2).reshape(n, t, d))
            return x + self.mlp(self.n2(x))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            d = 32
            self.patch = nn.Conv2d(3, d, 4, 4)
            self.pos = nn.Parameter(torch.randn(1, 16, d) * 0.1)
            self.enc = nn.Sequential(Block(d, 2), Block(d, 2))
            self.norm = nn.LayerNorm(d)
            self.fc = nn.Linear(d, 10)

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2) + self.pos
            return self.fc(self.norm(self.enc(t)).mean(dim=1))
    return ViT()


# name -> (builder, family, input shape (NCHW / NCW / NTC), source)
ZOO: dict[str, tuple[Callable, str, tuple[int, ...], str]] = {
    "vww_mobilenet_v1_025": (mobilenet_v1, "MobileNetV1", (1, 3, 96, 96),
                             "MLPerf Tiny visual wake words (MobileNetV1 0.25, 96x96)"),
    "mobilenet_v1_tiny": (mobilenet_v1_tiny, "MobileNetV1", (1, 3, 32, 32),
                          "MobileNetV1, 5 blocks, 32x32"),
    "mobilenet_v2_035": (mobilenet_v2, "MobileNetV2", (1, 3, 48, 48),
                         "torchvision MobileNetV2 layout, width 0.35, truncated"),
    "mobilenet_v3_small": (mobilenet_v3_small, "MobileNetV3", (1, 3, 48, 48),
                           "torchvision MobileNetV3-small layout, channels halved (SE Hardsigmoid)"),
    "efficientnet_b0ish": (efficientnet_b0ish, "EfficientNet", (1, 3, 48, 48),
                           "EfficientNet-B0 MBConv + SE (SiLU, Sigmoid), 5 stages"),
    "shufflenet_v2": (shufflenet_v2, "ShuffleNetV2", (1, 3, 48, 48),
                      "ShuffleNetV2 units (chunk channel split, channel shuffle), 2 stages"),
    "squeezenet": (squeezenet, "SqueezeNet", (1, 3, 48, 48),
                   "SqueezeNet 1.1 fire modules (ceil-mode max pools)"),
    "resnet18ish": (resnet18ish, "ResNet", (1, 3, 48, 48),
                    "ResNet-18 layout (2 basic blocks x 4 stages), widths 16-48"),
    "resnet8": (resnet8, "ResNet", (1, 3, 32, 32), "MLPerf Tiny image classification ResNet-8"),
    "mcunet_like": (mcunet_like, "MCUNet", (1, 3, 64, 64),
                    "MCUNet-style inverted residuals with 3/5/7 kernels"),
    "lenet5": (lenet5, "LeNet", (1, 1, 28, 28), "LeNet-5 on 28x28 digits"),
    "dscnn_kws": (dscnn_kws, "DS-CNN", (1, 1, 49, 10),
                  "MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC)"),
    "ad_autoencoder": (ad_autoencoder, "FC autoencoder", (1, 640),
                       "MLPerf Tiny anomaly detection FC autoencoder (640 in, hidden 64)"),
    "gru_kws": (gru_kws, "GRU", (1, 49, 10), "GRU keyword spotter (49 MFCC frames)"),
    "lstm_kws": (lstm_kws, "LSTM", (1, 49, 10), "LSTM keyword spotter (49 MFCC frames)"),
    "audio_cnn_1d": (audio_cnn_1d, "1-D CNN", (1, 1, 4000),
                     "M5-style raw audio CNN (Conv1d, BatchNorm1d, AdaptiveAvgPool1d)"),
    "vibration_cnn_1d": (vibration_cnn_1d, "1-D CNN", (1, 3, 256),
                         "3-axis vibration CNN (dilated Conv1d, AvgPool1d)"),
    "tc_resnet_kws": (tc_resnet_kws, "1-D CNN", (1, 40, 49),
                      "TC-ResNet-style KWS (MFCC as channels, temporal Conv1d)"),
    "har_cnn_1d": (har_cnn_1d, "1-D CNN", (1, 6, 128),
                   "human activity recognition CNN (ReduceMean over time)"),
    "unet_small": (unet_small, "U-Net", (1, 3, 32, 32),
                   "two-level U-Net (ConvTranspose2d up, skip concat)"),
    "det_head": (det_head, "detection", (1, 3, 64, 64),
                 "FPN-style detection head (Resize nearest x2 + concat)"),
    "seg_bilinear": (seg_bilinear, "segmentation", (1, 3, 32, 32),
                     "DeepLab-style head: stride-8 features, bilinear x8 upsampling"),
    "vit_tiny": (vit_tiny, "ViT", (1, 3, 16, 16),
                 "ViT: 4x4 patches, 2 transformer encoder layers (d=32, 2 heads, GELU)"),
}


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _randomize_bn(model) -> None:
    g = torch.Generator().manual_seed(1234)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def export(name: str, out: Path = OUT) -> dict:
    builder, family, shape, source = ZOO[name]
    torch.manual_seed(_seed(name))
    model = builder().eval()
    _randomize_bn(model)
    x = torch.randn(*shape)
    path = out / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), opset_version=OPSET, input_names=["input"],
                          output_names=["output"], dynamo=False, do_constant_folding=True)
    rng = np.random.default_rng(_seed(name))
    n = N_CALIB if np.prod(shape) <= 16384 else N_CALIB // 2     # keep the files small
    calib = rng.standard_normal((n, *shape[1:])).astype(np.float16)
    np.savez(out / f"{name}_calib.npz", input=calib)
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "family": family, "input_shape": list(shape), "source": source,
            "params": int(params), "onnx_bytes": path.stat().st_size, "opset": OPSET,
            "exporter": f"torch.onnx.export (TorchScript), torch {torch.__version__}"}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in ZOO:
        rows.append(export(name))
        print(f"{name:24s} {rows[-1]['params']:8d} params {rows[-1]['onnx_bytes']:9d} B")
    (OUT / "manifest.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
