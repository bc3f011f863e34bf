"""Convolutional models: the golden model against a plain-loop reference, the model file's version 2,
the layer descriptions' shape rules, and the worked example of docs/model-format.md."""

import struct
import zlib
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import golden
from model.bits import pack_bits, unpack_signs
from model.errors import ModelFileError, TrainingError
from model.golden import infer
from model.layers import Conv, Dense, MaxPool, arch_string, layer_shapes
from model.modelfile import (CONV_VERSION, DENSE_VERSION, BinaryLayer, BinaryModel, ConvLayer, InputEncoding,
                             MaxPoolLayer, load_model, parse_model, save_model)
from model.random_models import random_conv_model, random_model
from tests.model import test_modelfile as model_file_bytes

# --- a reference written as plain loops over docs/model-format.md, sharing no code with the golden model


def _weight(row, i):
    """``w_i`` in {-1,+1}: bit ``i % 8`` of byte ``i // 8``, 1 meaning +1."""
    return 1 if (int(row[i // 8]) >> (i % 8)) & 1 else -1


def _kernel(layer, o):
    """Output channel ``o``'s kernel as ``w[ky, kx, c]``, input ``i = (ky * K + kx) * C_in + c`` of its row."""
    size, channels = layer.kernel, layer.in_shape[2]
    w = np.empty((size, size, channels), np.int64)
    for ky in range(size):
        for kx in range(size):
            for c in range(channels):
                w[ky, kx, c] = _weight(layer.weights[o], (ky * size + kx) * channels + c)
    return w


def _as_map(flat, shape):
    """``(B, H, W, C)`` from ``(B, H*W*C)``: value ``(i, j, c)`` is element ``(i * W + j) * C + c``."""
    height, width, channels = shape
    out = np.empty((len(flat), height, width, channels), flat.dtype)
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                out[:, i, j, c] = flat[:, (i * width + j) * channels + c]
    return out


def _flatten(maps):
    """Inverse of :func:`_as_map`."""
    batch, height, width, channels = maps.shape
    out = np.empty((batch, height * width * channels), maps.dtype)
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                out[:, (i * width + j) * channels + c] = maps[:, i, j, c]
    return out


def _conv(layer, x):
    """Every output position and channel: the sum over the window whose top-left corner it is."""
    size = layer.kernel
    out_h, out_w, out_c = layer.out_shape
    kernels = [_kernel(layer, o) for o in range(out_c)]
    y = np.empty((len(x), out_h, out_w, out_c), np.int64)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i:i + size, j:j + size, :]
            for o in range(out_c):
                y[:, i, j, o] = (window * kernels[o]).sum(axis=(1, 2, 3))
    return y


def _pool(x):
    """The largest of each 2 x 2 window; an odd last row or column is left out."""
    batch, height, width, channels = x.shape
    out = np.empty((batch, height // 2, width // 2, channels), x.dtype)
    for i in range(height // 2):
        for j in range(width // 2):
            out[:, i, j, :] = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :].max(axis=(1, 2))
    return out


def _dense(layer, x):
    y = np.empty((len(x), layer.fan_out), np.int64)
    for j in range(layer.fan_out):
        w = np.array([_weight(layer.weights[j], i) for i in range(layer.fan_in)], np.int64)
        y[:, j] = x @ w
    return y


def reference(model, images):
    """``(outputs, scores)``: ``outputs[k]`` is layer ``k``'s -1/+1 output, a ``(B, H, W, C)`` map or a
    ``(B, n)`` vector, for every layer but the last; ``scores`` are the last layer's ``y``."""
    if model.input.bits == 8:
        x = images.astype(np.int64)
    else:
        x = np.where(images >= model.input.threshold, 1, -1).astype(np.int64)
    if isinstance(model.layers[0], ConvLayer):
        x = _as_map(x, model.layers[0].in_shape)
    outputs = []
    for layer in model.layers:
        if isinstance(layer, MaxPoolLayer):
            x = _pool(x)
        elif isinstance(layer, ConvLayer):
            x = np.where(_conv(layer, x) >= layer.thresholds, 1, -1)
        else:
            y = _dense(layer, _flatten(x) if x.ndim == 4 else x)
            if layer.thresholds is None:
                return outputs, y
            x = np.where(y >= layer.thresholds, 1, -1)
        outputs.append(x)
    raise AssertionError("a valid model ends with a layer without thresholds")


def assert_golden_matches_reference(model, images):
    result = infer(model, images)
    outputs, scores = reference(model, images)
    assert result.scores.dtype == np.int64
    np.testing.assert_array_equal(result.scores, scores)
    np.testing.assert_array_equal(result.classes, np.argmax(scores, axis=1))
    assert len(result.activations) == len(outputs) == len(model.layers) - 1
    for k, (packed, expected) in enumerate(zip(result.activations, outputs)):
        flat = _flatten(expected) if expected.ndim == 4 else expected
        np.testing.assert_array_equal(unpack_signs(packed, flat.shape[1]), flat, err_msg=f"layer {k}")


# --- random models with awkward shapes

ARCHITECTURES = [
    # K = 1, then a 3 x 3 map pooled (odd) to 1 x 1
    ((5, 5), [Conv(3, 1), Conv(4, 3), MaxPool(), Dense(2)]),
    # 3 input channels, K = 5, not square; the pool drops the last row of a 3 x 5 map
    ((7, 9, 3), [Conv(5, 5), MaxPool(), Dense(7), Dense(3)]),
    # 28 x 28, 17 channels into a K = 5 convolution (fan-in 425), pool after 9 x 9
    ((28, 28), [Conv(17, 3), MaxPool(), Conv(6, 5), MaxPool(), Dense(3)]),
    # 17 input channels, two convolutions in a row, pool after 9 x 11
    ((11, 13, 17), [Conv(8, 3), Conv(9, 1), MaxPool(), Dense(10)]),
    # 65 channels: fan-in 585 spans several 64-bit words; rows of 9 bytes
    ((8, 8), [Conv(65, 3), Conv(3, 3), MaxPool(), Dense(5), Dense(2)]),
    # the kernel as tall as the map, no pool
    ((6, 5), [Conv(2, 5), Dense(4)]),
]


def _spread_thresholds(model, rng, fraction):
    """``model`` with a ``fraction`` of its hidden thresholds drawn uniformly from the whole range
    ``[-bound, bound + 1]``."""
    layers = list(model.layers)
    for k, layer in enumerate(layers[:-1]):
        if isinstance(layer, MaxPoolLayer):
            continue
        bound = model.preactivation_bound(k)
        t = layer.thresholds.copy()
        chosen = rng.random(len(t)) < fraction
        t[chosen] = rng.integers(-bound, bound + 2, int(chosen.sum()))
        layers[k] = replace(layer, thresholds=t)
    return replace(model, layers=tuple(layers)).validate()


def _images(rng, count, size):
    images = rng.integers(0, 256, (count, size), dtype=np.uint8)
    images[0], images[1] = 0, 255
    return images


@pytest.mark.parametrize("case", range(len(ARCHITECTURES)))
@pytest.mark.parametrize("input_bits", [8, 1])
@pytest.mark.parametrize("thresholds", ["calibrated", "whole range"])
def test_golden_matches_loop_reference(case, input_bits, thresholds):
    shape, specs = ARCHITECTURES[case]
    rng = np.random.default_rng([case, input_bits, len(thresholds)])
    input_threshold = int(rng.choice([0, 1, 100, 128, 255, 256]))
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=int(rng.integers(1 << 30)),
                              input_threshold=input_threshold,
                              extreme_thresholds=0.0 if thresholds == "calibrated" else 0.3)
    if thresholds == "whole range":
        model = _spread_thresholds(model, rng, 0.3)
    assert_golden_matches_reference(model, _images(rng, 12, model.input.size))


def test_random_conv_layers_fire_both_ways():
    """Guard the reference test against degenerate random models (outputs stuck at one value)."""
    shape, specs = ARCHITECTURES[2]
    model = random_conv_model(shape, specs, seed=3)
    outputs, _ = reference(model, _images(np.random.default_rng(3), 40, model.input.size))
    for k, x in enumerate(outputs):
        assert 0.05 < np.mean(x > 0) < 0.95, k
        if x.ndim == 4:   # every channel fires somewhere and stays off somewhere
            on = (x > 0).reshape(-1, x.shape[-1]).mean(axis=0)
            assert np.all((on > 0) & (on < 1)), k


def test_golden_chunks_give_the_same_results(monkeypatch):
    shape, specs = ARCHITECTURES[1]
    model = random_conv_model(shape, specs, seed=4)
    images = _images(np.random.default_rng(4), 9, model.input.size)
    whole = infer(model, images)
    monkeypatch.setattr(golden, "_CHUNK_BYTES", 1)   # one image per chunk
    one_by_one = infer(model, images)
    np.testing.assert_array_equal(whole.scores, one_by_one.scores)
    for a, b in zip(whole.activations, one_by_one.activations):
        np.testing.assert_array_equal(a, b)
    empty = infer(model, images[:0])
    assert empty.scores.shape == (0, 3) and [a.shape for a in empty.activations] == [(0, 10), (0, 2), (0, 1)]


@pytest.mark.parametrize("input_bits, fan_in", [(8, 128), (8, 129), (8, 650), (1, 32766), (1, 32767)])
def test_sums_at_the_limits_of_their_integer_types(input_bits, fan_in):
    """Fan-ins around the largest whose sums the golden model takes in int16 (pixels: 255 * 128,
    bits: 32766, whose thresholds reach 32767), with every input and weight +1 or every weight -1,
    so that the scores are the bounds themselves."""
    weights = np.zeros((2, -(-fan_in // 8)), np.uint8)
    weights[0] = pack_bits(np.ones(fan_in, np.uint8))
    conv = ConvLayer((1, 1, fan_in), 1, 2, weights, np.array([fan_in * 255 if input_bits == 8 else fan_in,
                                                              1 - fan_in * (255 if input_bits == 8 else 1)], np.int32))
    output = BinaryLayer(2, 2, np.array([[0b01], [0b10]], np.uint8), None)
    model = BinaryModel(InputEncoding(input_bits, fan_in, (1, 1, fan_in), None if input_bits == 8 else 1),
                        (conv, output)).validate()
    images = np.full((2, fan_in), 255, np.uint8)
    images[1] = 0
    bound = model.preactivation_bound(0)
    np.testing.assert_array_equal(golden.layer_preactivations(model, 0, images).reshape(2, 2),
                                  [[bound, -bound], [0, 0] if input_bits == 8 else [-bound, bound]])
    assert_golden_matches_reference(model, images)


# --- the worked example of docs/model-format.md


def _worked_example():
    conv = ConvLayer((3, 3, 1), 2, 1, np.array([[0x09]], np.uint8), np.array([0], np.int32))
    output = BinaryLayer(1, 2, np.array([[0x01], [0x00]], np.uint8), None)
    return BinaryModel(InputEncoding(8, 9, (3, 3)), (conv, MaxPoolLayer((2, 2, 1)), output)).validate()


def test_worked_example(tmp_path):
    model = _worked_example()
    image = np.array([[9, 0, 3, 1, 5, 7, 2, 8, 4]], np.uint8)
    assert golden.layer_preactivations(model, 0, image).reshape(-1).tolist() == [13, -1, 2, -6]
    result = infer(model, image)
    assert unpack_signs(result.activations[0], 4).tolist() == [[1, -1, 1, -1]]
    assert unpack_signs(result.activations[1], 1).tolist() == [[1]]
    assert result.scores.tolist() == [[1, -1]] and result.classes.tolist() == [0]
    assert_golden_matches_reference(model, image)
    path = tmp_path / "example.bnn"
    save_model(model, path)
    data = path.read_bytes()
    header, payload = _split(data)
    assert struct.unpack_from("<I", data, 8)[0] == CONV_VERSION
    assert payload == bytes.fromhex("09000000000100")
    assert header["layers"] == [{"kind": "conv", "in_shape": [3, 3, 1], "kernel": 2, "out_channels": 1},
                                {"kind": "maxpool", "in_shape": [2, 2, 1]},
                                {"kind": "dense", "fan_in": 1, "fan_out": 2}]
    assert model.arch == "3x3-c1k2-p-2"


def test_documented_payload_sizes():
    """The two example networks of docs/model-format.md."""
    for shape, specs, size, arch in [
        ((28, 28), [Conv(32, 3), MaxPool(), Conv(64, 3), MaxPool(), Dense(256), Dense(10)], 55296,
         "28x28-c32k3-p-c64k3-p-256-10"),
        ((32, 32, 3), [Conv(16, 5), MaxPool(), Dense(10)], 4144, "32x32x3-c16k5-p-10"),
    ]:
        model = random_conv_model(shape, specs, calibration_images=2)
        assert model.arch == arch
        payload = sum(layer.weights.nbytes + (0 if layer.thresholds is None else layer.thresholds.nbytes)
                      for layer in model.layers if not isinstance(layer, MaxPoolLayer))
        assert payload == size


# --- the model file, version 2


_join = partial(model_file_bytes._join, version=CONV_VERSION)   # a version 2 file from a header and payload
_split = model_file_bytes._split


def _file(model, tmp_path):
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return path.read_bytes()


def assert_same_model(a, b):
    assert a.input == b.input and a.metadata == b.metadata and len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        assert type(x) is type(y) and x.spec == y.spec
        if isinstance(x, MaxPoolLayer):
            assert x.in_shape == y.in_shape
            continue
        assert x.fan_in == y.fan_in and np.array_equal(x.weights, y.weights)
        assert (x.thresholds is None) == (y.thresholds is None)
        if x.thresholds is not None:
            assert y.thresholds.dtype == np.int32 and np.array_equal(x.thresholds, y.thresholds)


@pytest.mark.parametrize("case", [1, 3])
@pytest.mark.parametrize("input_bits", [8, 1])
def test_version_2_round_trip(tmp_path, case, input_bits):
    shape, specs = ARCHITECTURES[case]
    model = replace(random_conv_model(shape, specs, input_bits=input_bits, seed=case, extreme_thresholds=0.3),
                    metadata={"dataset": "none"})
    data = _file(model, tmp_path)
    assert struct.unpack_from("<I", data, 8)[0] == CONV_VERSION
    loaded = load_model(tmp_path / "m.bnn")
    assert_same_model(model, loaded)
    assert isinstance(loaded.layers[0].in_shape, tuple) and not loaded.is_dense and model.arch == loaded.arch
    images = _images(np.random.default_rng(case), 5, model.input.size)
    np.testing.assert_array_equal(infer(model, images).scores, infer(loaded, images).scores)
    assert _file(loaded, tmp_path) == data


def test_dense_models_keep_version_1(tmp_path):
    model = random_model([13, 9, 3], seed=1)
    assert model.is_dense
    data = _file(model, tmp_path)
    assert struct.unpack_from("<I", data, 8)[0] == DENSE_VERSION
    assert _split(data)[0]["layers"] == [{"fan_in": 13, "fan_out": 9}, {"fan_in": 9, "fan_out": 3}]
    # the same layers written as version 2 read back as the same model
    header, payload = _split(data)
    for entry in header["layers"]:
        entry["kind"] = "dense"
    assert_same_model(model, parse_model(_join(header, payload)))


def _conv_header(tmp_path):
    """The header and payload of ``7x9x3-c5k5-p-7-3``."""
    shape, specs = ARCHITECTURES[1]
    return _split(_file(random_conv_model(shape, specs, seed=2), tmp_path))


def _layer(k, **changes):
    return lambda header: header["layers"][k].update(changes)


def _insert(k, entry):
    return lambda header: header["layers"].insert(k, entry)


@pytest.mark.parametrize("edit, message", [
    (_layer(0, kernel=10), r"layer 0 \(c5k10\): kernel 10 x 10 is larger than the 7 x 9 map"),
    (_layer(0, kernel=7), r"layer 1 \(p\): a 2 x 2 max-pool needs a map of at least 2 x 2, not 1 x 3"),
    (_layer(2, fan_in=9), r"layer 2: fan-in 9 does not match the 10 values \(1 x 2 x 5 map\)"),
    (_layer(1, in_shape=[3, 5, 4]), r"layer 1 \(p\): input shape \[3, 5, 4\] does not match the \[3, 5, 5\] map"),
    (_layer(0, in_shape=[7, 9, 1]), r"layer 0 \(c5k5\): input shape \[7, 9, 1\] does not match the \[7, 9, 3\]"),
    (_insert(1, {"kind": "maxpool", "in_shape": [3, 5, 5]}), r"layer 2 \(p\): a 2 x 2 max-pool must follow a conv"),
    (_insert(3, {"kind": "conv", "in_shape": [1, 1, 7], "kernel": 1, "out_channels": 2}),
     r"layer 3 \(c2k1\): needs a feature map, but a fully connected layer gives a vector of 7 values"),
    (lambda h: h["layers"].__delitem__(slice(2, None)), r"the last layer \(p\) must be fully connected"),
    (lambda h: h["input"].update(shape=[189]), r"layer 0 \(c5k5\): needs a feature map, but the input gives a vector"),
    (lambda h: h["input"].update(shape=[7, 9, 3, 1]), "needs a feature map"),
    (lambda h: h["input"].update(shape=[7, 9, "3"]), r"input.shape must be a list of positive integers, not \[7, 9"),
    (_layer(0, kernel=0), r"layer 0 \(c5k0\): channels and kernel must be positive integers"),
    (_layer(0, out_channels=-1), "channels and kernel must be positive integers"),
    (_layer(0, kernel="5"), r"layers\[0\].kernel must be an integer, not '5'"),
    (_layer(0, in_shape=[7, 9]), r"layers\[0\].in_shape must be a list of 3 positive integers"),
    (_layer(1, kind="avgpool"), r"layers\[1\].kind must be one of \['conv', 'dense', 'maxpool'\], not 'avgpool'"),
    (_layer(0, kind=["conv"]), r"layers\[0\].kind must be one of .*, not \['conv'\]"),
    (lambda h: h["layers"][1].pop("kind"), r"layers\[1\] lacks 'kind'"),
    (_layer(0, padding=1), r"layers\[0\] has unknown key 'padding'"),
    (lambda h: h["layers"][2].pop("fan_out"), r"layers\[2\] lacks 'fan_out'"),
    (lambda h: h["layers"].append(3), r"layers\[4\] must be a JSON object, not 3"),
    (lambda h: h.update(layers=[]), "a model needs at least one layer"),
    (lambda h: h.update(classes=7), "header says 7 classes but the last layer has 3"),
])
def test_version_2_header_errors(tmp_path, edit, message):
    header, payload = _conv_header(tmp_path)
    edit(header)
    with pytest.raises(ModelFileError, match=message):
        parse_model(_join(header, payload))


def test_conv_layers_in_a_version_1_file_are_refused(tmp_path):
    header, payload = _conv_header(tmp_path)
    with pytest.raises(ModelFileError, match=r"layers\[0\] is a 'conv' layer, which needs format version 2; "
                                             r"version 1 holds fully connected layers only"):
        parse_model(_join(header, payload, version=DENSE_VERSION))


def test_conv_threshold_bound_and_pad_bits(tmp_path):
    header, payload = _conv_header(tmp_path)
    # conv rows: 5 channels of ceil(75 / 8) = 10 bytes, then 5 thresholds; B = 75 * 255
    damaged = bytearray(payload)
    damaged[50 + 4 * 2:50 + 4 * 3] = struct.pack("<i", -75 * 255 - 1)
    header["payload_crc32"] = zlib.crc32(damaged)
    with pytest.raises(ModelFileError, match=r"layer 0: thresholds must lie in \[-19125, 19126\], found \[-19126"):
        parse_model(_join(header, bytes(damaged)))
    damaged = bytearray(payload)
    damaged[9] |= 0x08   # fan-in 75: bit 75 of row 0 is padding
    header["payload_crc32"] = zlib.crc32(damaged)
    with pytest.raises(ModelFileError, match="layer 0: weight pad bits beyond fan-in 75 must be 0"):
        parse_model(_join(header, bytes(damaged)))


def test_programmatic_models_are_validated():
    model = random_conv_model((7, 9, 3), [Conv(5, 5), MaxPool(), Dense(3)], seed=1)
    conv = model.layers[0]
    with pytest.raises(ModelFileError, match=r"layer 0: weights must be uint8 of shape \(5, 10\)"):
        replace(model, layers=(replace(conv, weights=conv.weights[:, :9]), *model.layers[1:])).validate()
    with pytest.raises(ModelFileError, match=r"layer 0: thresholds must be int32 of shape \(5,\)"):
        replace(model, layers=(replace(conv, thresholds=None), *model.layers[1:])).validate()
    with pytest.raises(ModelFileError, match="layers must be BinaryLayer, ConvLayer or MaxPoolLayer"):
        replace(model, layers=(Conv(5, 5), *model.layers[1:])).validate()


# --- layer descriptions


def test_layer_shapes_and_arch_strings():
    specs = [Conv(32, 3), MaxPool(), Conv(64, 3), MaxPool(), Dense(256), Dense(10)]
    assert layer_shapes((28, 28, 1), specs) == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (256,), (10,)]
    assert arch_string((28, 28, 1), specs) == "28x28-c32k3-p-c64k3-p-256-10"
    assert arch_string((32, 32, 3), [Conv(16, 5), MaxPool(), Dense(10)]) == "32x32x3-c16k5-p-10"
    assert arch_string((64,), [Dense(256), Dense(10)]) == "64-256-10"
    with pytest.raises(TrainingError, match=r"layer 2 \(c8k5\): kernel 5 x 5 is larger than the 3 x 3 map"):
        layer_shapes((8, 8, 1), [Conv(4, 3), MaxPool(), Conv(8, 5), Dense(10)], TrainingError)


def test_dense_models_are_unchanged_in_memory():
    model = random_model([64, 32, 10], seed=0)
    assert model.is_dense and model.arch == "64-32-10" and model.layer_input_shape == (64,)
    conv = random_conv_model((8, 8), [Conv(4, 3), Dense(10)], seed=0)
    assert not conv.is_dense and conv.layer_input_shape == (8, 8, 1) and conv.classes == 10


# --- property tests: random architectures


@st.composite
def conv_architectures(draw):
    """``(input_shape, specs)``: one or two convolutions (each perhaps pooled) on a small image, then
    zero or one hidden fully connected layer and an output layer."""
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    channels = draw(st.sampled_from([None, 1, 2, 3]))
    shape = (height, width) if channels is None else (height, width, channels)
    specs = []
    for _ in range(draw(st.integers(1, 2))):
        kernel = draw(st.integers(1, min(height, width, 5)))
        specs.append(Conv(draw(st.integers(1, 9)), kernel))
        height, width = height - kernel + 1, width - kernel + 1
        if min(height, width) >= 2 and draw(st.booleans()):
            specs.append(MaxPool())
            height, width = height // 2, width // 2
    specs += [Dense(draw(st.integers(1, 9))) for _ in range(draw(st.integers(0, 1)))]
    specs.append(Dense(draw(st.integers(2, 5))))
    return shape, specs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(architecture=conv_architectures(), input_bits=st.sampled_from([8, 1]), seed=st.integers(0, 2**32 - 1),
       input_threshold=st.integers(0, 256))
def test_golden_matches_loop_reference_on_random_architectures(tmp_path, architecture, input_bits, seed,
                                                               input_threshold):
    shape, specs = architecture
    rng = np.random.default_rng(seed)
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=seed, input_threshold=input_threshold,
                              extreme_thresholds=0.2, calibration_images=4)
    model = _spread_thresholds(model, rng, 0.2)
    assert_golden_matches_reference(model, _images(rng, 4, model.input.size))
    path = tmp_path / "m.bnn"
    save_model(model, path)
    assert_same_model(model, load_model(path))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_version_2_files_give_model_file_error_and_nothing_else(tmp_path, data):
    shape, specs = data.draw(conv_architectures())
    path = tmp_path / "m.bnn"
    save_model(random_conv_model(shape, specs, calibration_images=2), path)
    damaged = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(damaged[:data.draw(st.integers(0, len(damaged)))]))
    try:
        load_model(path)
    except ModelFileError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
