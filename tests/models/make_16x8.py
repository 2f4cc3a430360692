"""Write tests/models/int16/*.tflite: small 16x8 models (int16 activations, int8 weights)
made by the TFLite converter itself, one per core op plus two small networks (committed;
tests never run this, and need no TensorFlow).

    /path/to/tf-venv/bin/python tests/models/make_16x8.py      # TensorFlow 2.x

Each model is a seeded Keras function converted with
`supported_ops = [EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]` and int16
input/output types, calibrated on 32 seeded N(0, 1) samples, so the files carry what the
converter really writes: symmetric int16 activation scales (zero point 0), per-channel int8
weights, int64 bias for conv/depthwise/FC, and its LUT-op fixed output scales.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

K = keras.ops

OUT = Path(__file__).resolve().parent / "int16"


def _conv(x):
    return keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)


def _conv_s2(x):
    return keras.layers.Conv2D(5, 3, strides=2, padding="valid")(x)


def _dw(x):
    return keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2,
                                           activation="relu6")(x)


def _fc(x):
    return keras.layers.Dense(7)(keras.layers.Flatten()(x))


def _fc_bias(x):
    return keras.layers.Dense(6, activation="relu", bias_initializer="random_normal")(
        keras.layers.Flatten()(x))


def _conv_nobias(x):
    return keras.layers.Conv2D(4, 3, use_bias=False)(x)


def _add(x):
    a = keras.layers.Conv2D(4, 1)(x)
    return keras.layers.Add()([a, x * 0.5])


def _mul(x):
    a = keras.layers.Conv2D(4, 1)(x)
    return keras.layers.Multiply()([a, x])


def _avgpool(x):
    return keras.layers.AveragePooling2D(2)(x)


def _maxpool(x):
    return keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)


def _mean(x):
    return K.mean(x, axis=[1, 2], keepdims=True)


def _softmax(x):
    return K.softmax(keras.layers.Dense(10)(keras.layers.Flatten()(x)))


def _logistic(x):
    return K.sigmoid(x * 2.0)


def _tanh(x):
    return K.tanh(x * 1.5)


def _reshape(x):
    return K.reshape(keras.layers.Conv2D(2, 1)(x), (1, -1, 8))


def _small_cnn(x):
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(y)
    r = keras.layers.Conv2D(8, 1)(y)
    y = keras.layers.ReLU()(keras.layers.Add()([y, r]))
    y = keras.layers.GlobalAveragePooling2D()(y)
    return K.softmax(keras.layers.Dense(5)(y))


MODELS = {
    "conv_relu": (_conv, (1, 8, 8, 4)),
    "conv_s2_valid": (_conv_s2, (1, 9, 9, 3)),
    "dwconv_relu6": (_dw, (1, 8, 8, 4)),
    "fc": (_fc, (1, 4, 4, 3)),
    "fc_bias_relu": (_fc_bias, (1, 3, 3, 4)),
    "conv_nobias": (_conv_nobias, (1, 6, 6, 3)),
    "add": (_add, (1, 6, 6, 4)),
    "mul": (_mul, (1, 6, 6, 4)),
    "avgpool": (_avgpool, (1, 8, 8, 4)),
    "maxpool": (_maxpool, (1, 7, 7, 4)),
    "mean": (_mean, (1, 6, 6, 5)),
    "softmax": (_softmax, (1, 2, 2, 4)),
    "logistic": (_logistic, (1, 4, 4, 4)),
    "tanh": (_tanh, (1, 4, 4, 4)),
    "reshape": (_reshape, (1, 4, 4, 4)),
    "small_cnn": (_small_cnn, (1, 16, 16, 3)),
}


def convert(name: str, fn, shape: tuple[int, ...]) -> bytes:
    keras.utils.set_random_seed(sum(map(ord, name)))
    inp = keras.Input(shape[1:], batch_size=1)
    model = keras.Model(inp, fn(inp))
    rng = np.random.default_rng(7)
    calib = [rng.normal(0, 1, shape).astype(np.float32) for _ in range(32)]

    def rep():
        for c in calib:
            yield [c]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = tf.int16
    conv.inference_output_type = tf.int16
    return conv.convert()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (fn, shape) in MODELS.items():
        data = convert(name, fn, shape)
        (OUT / f"{name}.tflite").write_bytes(data)
        print(f"{name}: {len(data)} B")


if __name__ == "__main__":
    main()
