"""Small, real calibration/evaluation sets that ship with installed packages (no downloads).

  photo_crops(n, size)  crops of scikit-learn's two sample photographs
                        (sklearn.datasets.load_sample_images: china.jpg, flower.jpg), random
                        position/scale/flip, resized to size x size, pixels 0..255 float32.
  kws_variants(x, n)    one real MFCC input (float) -> n perturbed variants: time shift,
                        gain, additive noise. The MLPerf fixtures ship a single real KWS input,
                        so this is the honest best; say so wherever it is used.
"""
from __future__ import annotations

import numpy as np


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize [H, W, C] -> [size, size, C]."""
    h, w = img.shape[:2]
    ys = (np.arange(size) + 0.5) * h / size - 0.5
    xs = (np.arange(size) + 0.5) * w / size - 0.5
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.clip(y0 + 1, 0, h - 1), np.clip(x0 + 1, 0, w - 1)
    fy = np.clip(ys - y0, 0, 1)[:, None, None]
    fx = np.clip(xs - x0, 0, 1)[None, :, None]
    a, b = img[y0][:, x0], img[y0][:, x1]
    c, d = img[y1][:, x0], img[y1][:, x1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def photo_crops(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] float32 in 0..255 from scikit-learn's sample photographs."""
    from sklearn.datasets import load_sample_images
    photos = [np.asarray(p, np.float32) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        side = int(rng.integers(size * 2, min(h, w) // 2))
        y, x = rng.integers(0, h - side), rng.integers(0, w - side)
        crop = img[y:y + side, x:x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        # average-pool down to ~2x the target first (anti-aliasing), then bilinear
        k = max(1, side // (2 * size))
        s = (side // k) * k
        crop = crop[:s, :s].reshape(s // k, k, s // k, k, 3).mean(axis=(1, 3))
        out[i] = np.clip(_resize(crop, size), 0, 255)
    return out


def kws_variants(x: np.ndarray, n: int, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """[n, *x.shape[1:]] variants of one float sample x [1, T, F, 1]: the original first,
    then random time shifts (+-8 frames), gain (0.8..1.2) and Gaussian noise of `noise`
    times the sample's standard deviation."""
    rng = np.random.default_rng(seed)
    base = np.asarray(x, np.float32)[0]
    out = np.empty((n,) + base.shape, np.float32)
    out[0] = base
    sd = float(base.std())
    for i in range(1, n):
        v = np.roll(base, int(rng.integers(-8, 9)), axis=0)
        v = v * rng.uniform(0.8, 1.2) + rng.normal(0, noise * sd, base.shape)
        out[i] = v
    return out
