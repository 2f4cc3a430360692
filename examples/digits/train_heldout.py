"""Train the pruning evaluation's residual models: 3 seeds each of a MobileNetV2-style and a
ResNet-style CNN on scikit-learn's 8x8 digits, with `val.npz` (300 images) and `test.npz`
(450) held out of training, and export them to heldout/<arch>_s<seed>.onnx (PyTorch is a dev
tool only: the committed .onnx files are what benchmarks/prune_accuracy.py and the tests use).

    python examples/digits/train_heldout.py [--epochs 60] [--seeds 0 1 2]

mbv2:   train_residual.py's architecture (five inverted residual blocks, ReLU6), 496 k MACs.
resnet: conv3x3 1->16 | basic block 16 (two conv3x3, ADD, ReLU) at 8x8 | basic block 16->32
        with stride 2 and a 1x1 projection shortcut | basic block 32 at 4x4 | global average
        pool | fc 10 | softmax.
One seed changes the weight init and the batch order only; the split is always the same.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from train_residual import accuracy, export, fit
from train_residual import build as build_mbv2

HERE = Path(__file__).resolve().parent


def build_resnet():
    import torch
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout))
            self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride), nn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU())
            self.blocks = nn.Sequential(Basic(16, 16, 1), Basic(16, 32, 2), Basic(32, 32, 1))
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return torch.softmax(self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3))), dim=1)

    return Net()


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training images minus val.npz's (train_residual.py's choice), and the test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    val = np.random.default_rng(1).choice(len(xtr), 300, replace=False)
    keep = np.setdiff1d(np.arange(len(xtr)), val)
    return xtr[keep], ytr[keep], xte, yte


def train(arch: str, seed: int, epochs: int, out: Path) -> float:
    import torch
    xtr, ytr, xte, yte = split()
    torch.manual_seed(seed)
    net = fit(build_mbv2() if arch == "mbv2" else build_resnet(), xtr, ytr, epochs, seed)
    export(net, out / f"{arch}_s{seed}.onnx")
    return accuracy(net, xte, yte)


def main() -> None:
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arch", nargs="+", default=["mbv2", "resnet"])
    ap.add_argument("--out", default=str(HERE / "heldout"))
    args = ap.parse_args()
    torch.set_num_threads(1)                  # a shared machine; the models are tiny
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for arch in args.arch:
        for seed in args.seeds:
            acc = train(arch, seed, args.epochs, out)
            print(f"{arch}_s{seed}: float test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
