"""The TFLite converter's side of benchmarks/quant_fidelity.py --int16 (needs TensorFlow 2.x;
run by that benchmark with the interpreter given as --tf-python, never imported by edgeforge).

    TF_PYTHON benchmarks/peers/tflite16.py MODEL.h5|mobilenet:ALPHA:SIZE CALIB.npy OUT_DIR

Writes OUT_DIR/float.tflite (the float model, converted without optimizations: what
edgeforge quantizes) and OUT_DIR/tflite_16x8.tflite (the converter's own 16x8:
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 with CALIB.npy as the
representative dataset, float I/O as the converter leaves it). MODEL is a Keras .h5 (the
MLPerf Tiny trained models) or mobilenet:ALPHA:SIZE, a Keras MobileNet (v1) of that width
and input size with seeded random weights (seed 0), 10 classes, and batch-norm statistics
from CALIB.npy.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def load_model(spec: str):
    import keras
    if spec.startswith("mobilenet:"):
        _, alpha, size = spec.split(":")
        keras.utils.set_random_seed(0)
        return keras.applications.MobileNet(input_shape=(int(size), int(size), 3),
                                            alpha=float(alpha), weights=None, classes=10)

    class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """Keras 2 .h5 files carry a `groups` key Keras 3's depthwise layer refuses."""

        def __init__(self, *args, groups=None, **kwargs):
            super().__init__(*args, **kwargs)
    return keras.models.load_model(spec, compile=False,
                                   custom_objects={"DepthwiseConv2D": DepthwiseConv2D})


def main() -> int:
    import tensorflow as tf
    spec, calib_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(spec)
    calib = np.load(calib_path).astype(np.float32)
    if spec.startswith("mobilenet:"):
        # seeded weights, untrained batch norms: set their moving statistics from the
        # calibration data (forward passes in training mode), so activations keep a trained
        # network's scale instead of growing layer by layer
        for _ in range(30):
            for i in range(0, len(calib), 50):
                model(calib[i:i + 50], training=True)
    (out / "float.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    def rep():
        for x in calib:
            yield [x[None]]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    (out / "tflite_16x8.tflite").write_bytes(conv.convert())
    return 0


if __name__ == "__main__":
    sys.exit(main())
