"""Train a small residual MobileNetV2-style CNN on scikit-learn's 8x8 digits (PyTorch, a dev
tool only: the committed .onnx is what the tests and the README use), and write:

    digits_residual.onnx  float model, NCHW input "input" [1, 1, 8, 8], output "probs" [1, 10]
    val.npz               "x": 300 labelled images of the training split [300, 8, 8, 1],
                          "y" labels, for compile --val-data. The model has seen them, so
                          they show the guard's mechanics; test.npz (unseen) is the measure

Run from the repository root:  python examples/digits/train_residual.py   (~1 minute, seeded)

Model: conv3x3 1->16 | 2 inverted residual blocks (1x1 expand x3, dw3x3, 1x1 project, ADD)
at 8x8 | block with dw stride 2 to 24 channels | 2 residual blocks at 4x4 | conv1x1 24->64 |
global average pool | fc 10 | softmax. Every conv feeds a residual ADD or the head, so the
old channel pruning found nothing to prune (issue 19).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0


def build():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int = 3) -> None:
            super().__init__()
            mid = cin * expand
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, mid, 3, stride, 1, groups=mid), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, cout, 1), nn.BatchNorm2d(cout))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.body(x)
            return x + y if self.residual else y

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU6())
            self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1), Block(16, 24, 2),
                                        Block(24, 24, 1), Block(24, 24, 1))
            self.head = nn.Sequential(nn.Conv2d(24, 64, 1), nn.BatchNorm2d(64), nn.ReLU6())
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            y = self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))
            return torch.softmax(self.fc(y), dim=1)

    return Net()


def constants_to_initializers(path: Path) -> None:
    """ReLU6 exports as Clip with two Constant nodes: store them as initializers instead."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    keep = []
    for n in m.graph.node:
        if n.op_type == "Constant" and n.attribute[0].name == "value":
            arr = numpy_helper.to_array(n.attribute[0].t)
            m.graph.initializer.append(numpy_helper.from_array(arr, n.output[0]))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def fit(net, xtr: np.ndarray, ytr: np.ndarray, epochs: int, seed: int):
    """Adam with a cosine schedule on NLL of the softmax output, batches of 64 in a seeded
    order; returns the net in eval mode."""
    import torch
    opt = torch.optim.Adam(net.parameters(), 3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.tensor(xtr.transpose(0, 3, 1, 2)), torch.tensor(ytr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            loss = torch.nn.functional.nll_loss(torch.log(net(xt[idx]) + 1e-9), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net.eval()


def accuracy(net, x: np.ndarray, y: np.ndarray) -> float:
    import torch
    with torch.no_grad():
        return float((net(torch.tensor(x.transpose(0, 3, 1, 2))).argmax(1).numpy() == y).mean())


def export(net, path: Path) -> None:
    """ONNX opset 13 (input 'input' [1, 1, 8, 8], output 'probs'), constants as initializers."""
    import torch
    torch.onnx.export(net, torch.zeros(1, 1, 8, 8), str(path), input_names=["input"],
                      output_names=["probs"], opset_version=13, dynamo=False)
    constants_to_initializers(path)


def main() -> None:
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]          # the split of train.py
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    rng = np.random.default_rng(SEED + 1)
    val = rng.choice(len(xtr), 300, replace=False)      # labelled inputs for --val-data
    np.savez_compressed(Path(args.out) / "val.npz", x=xtr[val], y=ytr[val])
    torch.manual_seed(SEED)
    net = fit(build(), xtr, ytr, args.epochs, SEED)
    acc = accuracy(net, xte, yte)
    out = Path(args.out)
    export(net, out / "digits_residual.onnx")
    print(f"digits_residual: float test accuracy {acc:.4f} on {len(yte)} images; wrote {out}")


if __name__ == "__main__":
    main()
