"""Build the Keras model zoo: small Keras models of the architectures users deploy on MCUs,
seeded random weights, quantized to full-integer int8 by the TFLite converter exactly as the
TFLite Micro guides tell users to (a representative dataset, `TFLITE_BUILTINS_INT8`), written
to tests/zoo/keras/<name>.tflite with manifest.json (model, family, input shapes, io, source).

TensorFlow is a development tool here, never a dependency of edgeforge or of its tests: the
.tflite files are committed and the tests read them.

    /path/to/a/tf-venv/bin/python -m tests.zoo.export_keras_zoo          # all models
    /path/to/a/tf-venv/bin/python -m tests.zoo.export_keras_zoo gru_kws  # some
    /path/to/a/tf-venv/bin/python -m tests.zoo.export_keras_zoo --variants  # tests/models/keras

`MODELS` is the registry: name -> builder returning a built keras.Model. A model named in
`FLOAT_IO` keeps the converter's default float32 input/output (QUANTIZE / DEQUANTIZE at the
graph edges, what a user gets without setting inference_input_type); every other one has
int8 input and output (`inference_input_type = inference_output_type = tf.int8`).
Every model is deterministic (keras.utils.set_random_seed per model name) and small (each
.tflite well under 1 MB). BatchNormalization layers get random moving statistics, so the
converter's folding meets non-trivial numbers.
"""
from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "keras"
N_REPRESENTATIVE = 16

import keras
import tensorflow as tf
from keras import layers as L


# ---------------------------------------------------------------- building blocks
def conv_bn(x, filters: int, k=3, s=1, act: str | None = "relu", name: str | None = None):
    x = L.Conv2D(filters, k, strides=s, padding="same", use_bias=False, name=name)(x)
    x = L.BatchNormalization()(x)
    return L.Activation(act)(x) if act else x


def dw_bn(x, k=3, s=1, act: str | None = "relu"):
    x = L.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation(act)(x) if act else x


def squeeze_excite(x, ratio: int = 4, gate: str = "sigmoid", act: str = "relu"):
    """The Keras applications' SE block: global pool, Reshape to 1x1xC, two 1x1 convs, gate."""
    c = x.shape[-1]
    s = L.GlobalAveragePooling2D()(x)
    s = L.Reshape((1, 1, c))(s)
    s = L.Conv2D(max(c // ratio, 4), 1, activation=act)(s)
    s = L.Conv2D(c, 1, activation=gate)(s)
    return L.Multiply()([x, s])


def inverted_residual(x, cout: int, k: int, s: int, expand: int, act="relu6",
                      se: str | None = None, se_act: str = "relu"):
    cin = x.shape[-1]
    y = conv_bn(x, cin * expand, 1, act=act) if expand != 1 else x
    y = dw_bn(y, k, s, act=act)
    if se:
        y = squeeze_excite(y, 4, se, se_act)
    y = conv_bn(y, cout, 1, act=None)
    return L.Add()([x, y]) if s == 1 and cin == cout else y


# ---------------------------------------------------------------- the families
def conv1d_kws():
    x = inp = keras.Input((49, 10))
    x = L.Conv1D(24, 3, padding="same", activation="relu")(x)
    x = L.Conv1D(32, 3, strides=2, padding="valid", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(48, 3, padding="same", dilation_rate=2, activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    out = L.Dense(12, activation="softmax")(x)
    return keras.Model(inp, out)


def dscnn_kws():
    x = inp = keras.Input((49, 10, 1))
    x = conv_bn(x, 32, (10, 4), (2, 2))
    for _ in range(3):
        x = dw_bn(x)
        x = conv_bn(x, 32, 1)
    x = L.AveragePooling2D(x.shape[1:3])(x)
    x = L.Flatten()(x)
    out = L.Dense(12, activation="softmax")(x)
    return keras.Model(inp, out)


def mobilenet_v2():
    return keras.applications.MobileNetV2(input_shape=(48, 48, 3), alpha=0.35, weights=None,
                                          classes=10)


def mobilenet_v3_small():
    """keras.applications.MobileNetV3Small (alpha 0.75, 48x48) as a feature extractor with a
    new Dense head, as transfer-learning users build it (the 1024-wide top would be 1.3 MB)."""
    base = keras.applications.MobileNetV3Small(input_shape=(48, 48, 3), alpha=0.75,
                                               weights=None, include_top=False, pooling="avg",
                                               include_preprocessing=False)
    out = L.Dense(10, activation="softmax")(base.output)
    return keras.Model(base.input, out)


def mobilenet_v3_small_se():
    """MobileNetV3-small blocks written by hand: hard_swish, SE with a Reshape and hard_sigmoid
    (Keras's `hard_sigmoid` is relu6(x + 3) / 6; the converter spells parts of it as
    MINIMUM / MAXIMUM)."""
    x = inp = keras.Input((48, 48, 3))
    x = conv_bn(x, 8, 3, 2, act="hard_swish")
    cfg = [(3, 1, 8, True, "relu", 2), (3, 4, 12, False, "relu", 2),
           (5, 4, 20, True, "hard_swish", 2), (5, 3, 24, True, "hard_swish", 1)]
    for k, e, c, se, act, s in cfg:
        x = inverted_residual(x, c, k, s, e, act, "hard_sigmoid" if se else None)
    x = conv_bn(x, 64, 1, act="hard_swish")
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Conv2D(96, 1, activation="hard_swish")(x)
    x = L.Flatten()(x)
    out = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


def efficientnet_b0ish():
    """EfficientNet-B0's MBConv blocks (swish, SE via Reshape, sigmoid gate), narrow, 48x48,
    with the Rescaling layer Keras's EfficientNet starts with."""
    x = inp = keras.Input((48, 48, 3))
    x = L.Rescaling(1.0 / 4.0)(x)
    x = conv_bn(x, 16, 3, 2, act="swish")
    cfg = [(1, 8, 3, 1, 1), (6, 12, 3, 2, 2), (6, 20, 5, 2, 1), (6, 40, 3, 2, 1)]
    for t, c, k, s, n in cfg:
        for i in range(n):
            x = inverted_residual(x, c, k, s if i == 0 else 1, t, "swish", "sigmoid", "swish")
    x = conv_bn(x, 96, 1, act="swish")
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    out = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


def se_net():
    x = inp = keras.Input((32, 32, 3))
    for c in (16, 32, 48):
        x = conv_bn(x, c, 3, 2)
        x = squeeze_excite(x, 4, "hard_sigmoid")
    x = L.GlobalMaxPooling2D()(x)
    out = L.Dense(10)(x)
    return keras.Model(inp, out)


def resnet_small():
    def block(x, c, s):
        y = conv_bn(x, c, 3, s)
        y = conv_bn(y, c, 3, 1, act=None)
        if s != 1 or x.shape[-1] != c:
            x = conv_bn(x, c, 1, s, act=None)
        return L.ReLU()(L.Add()([x, y]))
    x = inp = keras.Input((32, 32, 3))
    x = conv_bn(x, 16, 3, 1)
    x = L.MaxPooling2D(2)(x)
    for c, s in ((16, 1), (32, 2), (48, 2)):
        x = block(x, c, s)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


def unet_small():
    x = inp = keras.Input((32, 32, 3))
    e1 = conv_bn(x, 8)
    e2 = conv_bn(L.MaxPooling2D(2)(e1), 16)
    b = conv_bn(L.MaxPooling2D(2)(e2), 24)
    d2 = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(b)
    d2 = conv_bn(L.Concatenate()([d2, e2]), 16)
    d1 = L.UpSampling2D(2)(d2)
    d1 = conv_bn(L.Concatenate()([d1, e1]), 8)
    out = L.Conv2D(2, 1, activation="sigmoid")(d1)
    return keras.Model(inp, out)


def det_head():
    """FPN-style head with two outputs: a nearest x2 and a bilinear x2 top-down path."""
    x = inp = keras.Input((64, 64, 3))
    c2 = conv_bn(x, 16, 3, 2)
    c3 = conv_bn(c2, 24, 3, 2)
    c4 = conv_bn(c3, 32, 3, 2)
    p4 = L.Conv2D(24, 1)(c4)
    p3 = L.Add()([L.UpSampling2D(2, interpolation="nearest")(p4), L.Conv2D(24, 1)(c3)])
    p2 = L.Concatenate()([L.UpSampling2D(2, interpolation="bilinear")(p3), c2])
    boxes = L.Conv2D(4 * 3, 3, padding="same", name="boxes")(p3)
    heat = L.Conv2D(3, 3, padding="same", activation="sigmoid", name="heatmap")(p2)
    return keras.Model(inp, [boxes, heat])


def ad_autoencoder():
    x = inp = keras.Input((640,))
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.Dense(units)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    out = L.Dense(640)(x)
    return keras.Model(inp, out)


def vibration_1d():
    x = inp = keras.Input((256, 3))
    x = L.Conv1D(16, 7, strides=2, padding="same", activation="relu")(x)
    x = L.BatchNormalization()(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(24, 5, padding="same", dilation_rate=2, activation="relu")(x)
    x = L.AveragePooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.Flatten()(x)
    x = L.Dense(32, activation="relu")(x)
    out = L.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out)


def gru_kws():
    """GRU keyword spotter. `unroll=True` because the converter's default for a Keras GRU is a
    WHILE loop over TensorList ops, which has no int8 TFLite Micro form."""
    x = inp = keras.Input((49, 10), batch_size=1)
    x = L.GRU(32, unroll=True)(x)
    out = L.Dense(12, activation="softmax")(x)
    return keras.Model(inp, out)


def lstm_kws():
    """LSTM keyword spotter (two stacked LSTMs) built with tf_keras (Keras 2, `pip install
    tf-keras` in the TF venv): its LSTM layer is what the converter fuses into TFLite's
    UNIDIRECTIONAL_SEQUENCE_LSTM (int8 with an int16 cell state); Keras 3's LSTM becomes a
    WHILE loop (no int8 TFLite Micro form) and its calibration crashes TF 2.21's converter."""
    import os
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras
    tf_keras.utils.set_random_seed(_seed("lstm_kws"))
    x = inp = tf_keras.Input((49, 10), batch_size=1)
    x = tf_keras.layers.LSTM(32, return_sequences=True)(x)
    x = tf_keras.layers.LSTM(24)(x)
    out = tf_keras.layers.Dense(12, activation="softmax")(x)
    return tf_keras.Model(inp, out)


def transformer_tiny():
    """One encoder layer as Keras users write it: Dense embedding + position embedding,
    MultiHeadAttention, LayerNormalization, a GELU MLP, global pooling, classifier."""
    seq, d = 16, 32
    x = inp = keras.Input((seq, 20), batch_size=1)
    x = L.Dense(d)(x)
    pos = L.Embedding(seq, d)(np.arange(seq)[None])
    x = L.Add()([x, pos])
    a = L.MultiHeadAttention(num_heads=2, key_dim=d // 2)(x, x)
    x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, a]))
    m = L.Dense(2 * d, activation="gelu")(x)
    m = L.Dense(d)(m)
    x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, m]))
    x = L.GlobalAveragePooling1D()(x)
    out = L.Dense(5, activation="softmax")(x)
    return keras.Model(inp, out)


MODELS: dict[str, Callable[[], keras.Model]] = {
    "conv1d_kws": conv1d_kws,
    "dscnn_kws": dscnn_kws,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mobilenet_v3_small_se": mobilenet_v3_small_se,
    "efficientnet_b0ish": efficientnet_b0ish,
    "se_net": se_net,
    "resnet_small": resnet_small,
    "unet_small": unet_small,
    "det_head": det_head,
    "ad_autoencoder": ad_autoencoder,
    "vibration_1d": vibration_1d,
    "gru_kws": gru_kws,
    "lstm_kws": lstm_kws,
    "transformer_tiny": transformer_tiny,
}
FAMILY = {"conv1d_kws": "1-D CNN KWS", "dscnn_kws": "DS-CNN", "mobilenet_v2": "MobileNetV2",
          "mobilenet_v3_small": "MobileNetV3", "mobilenet_v3_small_se": "MobileNetV3",
          "efficientnet_b0ish": "EfficientNet", "se_net": "squeeze-excite",
          "resnet_small": "ResNet", "unet_small": "U-Net", "det_head": "detection",
          "ad_autoencoder": "FC autoencoder", "vibration_1d": "1-D CNN", "gru_kws": "GRU",
          "lstm_kws": "LSTM", "transformer_tiny": "transformer"}
# the converter's default float32 input/output (QUANTIZE / DEQUANTIZE at the edges)
FLOAT_IO = {"mobilenet_v2", "vibration_1d"}


# ---------------------------------------------------------------- pattern variants
# tiny models, one Keras spelling each, written to tests/models/keras/ for
# tests/unit/test_keras_patterns.py (how the converter spells them, not model families)
def _one(shape, *layers_, batch: int | None = None):
    """Batch None as users write it: the converter then spells a dilated Conv1D with
    SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND (with batch 1 it uses the conv's dilation)."""
    x = inp = keras.Input(shape, batch_size=batch)
    for layer in layers_:
        x = layer(x)
    return keras.Model(inp, x)


VARIANTS: dict[str, Callable[[], keras.Model]] = {
    "conv1d_dil3_valid": lambda: _one((40, 4), L.Conv1D(8, 3, dilation_rate=3)),
    "conv1d_dil2_causal": lambda: _one((30, 4), L.Conv1D(8, 3, padding="causal",
                                                         dilation_rate=2, activation="relu")),
    "conv1d_dil4_same_odd": lambda: _one((33, 3), L.Conv1D(6, 5, padding="same",
                                                           dilation_rate=4)),
    "sepconv1d_dil2": lambda: _one((24, 6), L.SeparableConv1D(8, 3, padding="same",
                                                              dilation_rate=2)),
    "conv1d_dil2_b1": lambda: _one((30, 4), L.Conv1D(8, 3, padding="same", dilation_rate=2),
                                   batch=1),
    "conv2d_dil2": lambda: _one((17, 13, 3), L.Conv2D(8, 3, padding="same", dilation_rate=2)),
    "conv2d_dil_1x3": lambda: _one((12, 16, 3), L.Conv2D(4, 3, padding="same",
                                                         dilation_rate=(1, 3))),
    "dwconv2d_dil2": lambda: _one((15, 15, 4), L.DepthwiseConv2D(3, padding="same",
                                                                 dilation_rate=2)),
    "upsample_3x2": lambda: _one((5, 7, 4), L.UpSampling2D((3, 2))),
    "upsample_h_only": lambda: _one((6, 5, 3), L.UpSampling2D((2, 1))),
    "upsample1d_3": lambda: _one((10, 4), L.UpSampling1D(3)),
    "tile_broadcast": lambda: _one((8, 8, 6), L.GlobalAveragePooling2D(keepdims=True),
                                   L.Lambda(lambda t: keras.ops.tile(t, [1, 8, 8, 1]))),
    "layernorm_plain": lambda: _one((6, 16), L.Dense(16), L.LayerNormalization(
        center=False, scale=False)),
    "layernorm_last2": lambda: _one((4, 5, 8), L.LayerNormalization(axis=(-2, -1))),
    "gru_reset_before": lambda: _one((12, 5), L.GRU(8, reset_after=False, unroll=True)),
    "simple_rnn": lambda: _one((10, 4), L.SimpleRNN(8, unroll=True)),
    "gru_sequences": lambda: _one((8, 5), L.GRU(6, return_sequences=True, unroll=True)),
}
VARIANTS_OUT = OUT.parents[1] / "models" / "keras"


def export_variants(names: list[str]) -> None:
    VARIANTS_OUT.mkdir(parents=True, exist_ok=True)
    for name in names or list(VARIANTS):
        keras.utils.set_random_seed(_seed(name))
        model = VARIANTS[name]()
        _randomize_bn(model, np.random.default_rng(_seed(name) + 1))
        data = convert(model, name)
        (VARIANTS_OUT / f"{name}.tflite").write_bytes(data)
        print(f"{name:24s} {len(data):9d} B", flush=True)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _randomize_bn(model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.75, 1.25, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.75, 1.25, c)])


def convert(model, name: str) -> bytes:
    rng = np.random.default_rng(_seed(name))
    shapes = [tuple(d or 1 for d in t.shape) for t in model.inputs]

    def representative():
        for _ in range(N_REPRESENTATIVE):
            yield [rng.standard_normal(s).astype(np.float32) for s in shapes]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if name not in FLOAT_IO:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def export(name: str, out: Path = OUT) -> dict:
    keras.utils.set_random_seed(_seed(name))
    model = MODELS[name]()
    _randomize_bn(model, np.random.default_rng(_seed(name) + 1))
    data = convert(model, name)
    path = out / f"{name}.tflite"
    path.write_bytes(data)
    return {"model": name, "family": FAMILY.get(name, name),
            "input_shapes": [[d or 1 for d in t.shape] for t in model.inputs],
            "io": "float32" if name in FLOAT_IO else "int8",
            "source": (MODELS[name].__doc__ or name).strip().splitlines()[0],
            "params": int(model.count_params()), "tflite_bytes": len(data),
            "exporter": f"tf.lite.TFLiteConverter.from_keras_model, TensorFlow {tf.__version__},"
                        f" Keras {keras.__version__}"}


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = OUT / "manifest.json"
    rows = {r["model"]: r for r in json.loads(manifest.read_text())} if manifest.exists() else {}
    for name in names or list(MODELS):
        rows[name] = export(name)
        print(f"{name:24s} {rows[name]['params']:8d} params {rows[name]['tflite_bytes']:9d} B",
              flush=True)
    order = [n for n in MODELS if n in rows]
    manifest.write_text(json.dumps([rows[n] for n in order], indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--variants"]:
        export_variants(sys.argv[2:])
    else:
        main(sys.argv[1:])
