"""QONNX import and export against qonnx's own execution: graphs as Brevitas and FINN write them,
ties at the thresholds, negative batch-norm scales, every refusal, and the round trip."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from bnn.cli import main
from interop.qonnx import QonnxImportError, export_qonnx, import_qonnx
from interop.thresholds import smallest_firing
from model import train
from model.bits import unpack_signs
from model.datasets import load_dataset
from model.fold import fold
from model.golden import infer, layer_preactivations
from model.layers import Conv, Dense, MaxPool
from model.modelfile import BinaryLayer, ConvLayer, save_model
from model.random_models import random_conv_model, random_images, random_model
from model.student import init_binary_network
from tests.model.strategies import binary_models

from .support import GraphBuilder, run_graph

IMAGES = 300


def _file_bytes(model, path):
    save_model(model, path)
    return path.read_bytes()


def _agrees(proto, model, images, *, scale=(1, 255), classes=None):
    """The imported ``model``'s golden classes equal qonnx's on ``images``: the graph's output
    ``classes``, or the argmax of its first output; returns the graph's outputs and the golden result."""
    map_shape = None if model.is_dense and len(proto.graph.input[0].type.tensor_type.shape.dim) == 2 \
        else model.input.map_shape
    outputs = run_graph(proto, images, map_shape=map_shape, scale=scale)
    golden = infer(model, images)
    graph_classes = np.argmax(outputs[proto.graph.output[0].name], axis=1) if classes is None \
        else outputs[classes].reshape(len(images))
    assert np.array_equal(golden.classes, graph_classes)
    return outputs, golden


def _ties(model, images):
    """How many hidden pre-activations of ``images`` sit exactly at their threshold."""
    inputs = [images] + infer(model, images).activations
    return sum(int(np.sum(layer_preactivations(model, k, inputs[k]) == layer.thresholds))
               for k, layer in enumerate(model.layers[:-1]) if isinstance(layer, (BinaryLayer, ConvLayer)))


# --- graphs as Brevitas writes them ------------------------------------------------------------------
def brevitas_dense(*, input_bits, seed=0, ties=False, head=None, quantizer="BipolarQuant", gemm=False,
                   input_quant_scale=np.float32(1 / 255)):
    g = GraphBuilder([1, 8, 8], seed)
    if input_bits == 1:   # Brevitas' bnn_pal TFC: x.view(x.shape[0], -1), 2x - 1, a binary QuantIdentity
        g.nodes.append(helper.make_node("Shape", ["image"], ["shape"]))
        g.nodes.append(helper.make_node("Gather", ["shape", g.const(0, np.int64)], ["batch"], axis=0))
        g.nodes.append(helper.make_node("Unsqueeze", ["batch", g.const([0], np.int64)], ["batch1"]))
        g.nodes.append(helper.make_node("Concat", ["batch1", g.const([-1], np.int64)], ["target"], axis=0))
        g.node("Reshape", "target")
        g.node("Mul", g.const(2.0))
        g.node("Add", g.const(-1.0))
        g.bipolar()
    else:
        g.quant(input_quant_scale, 8)
        g.node("Flatten", axis=1)
    sizes = [64, 33, 17, 10]
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if gemm:   # PyTorch's Linear: weights (out, in), transB; a bias in the hidden layers only (in the
            # last one it would change the argmax)
            w = g.weights((fan_out, fan_in), quantizer)
            g.node("Gemm", w, *[g.const(g.rng.normal(size=fan_out))][:k < len(sizes) - 2], transB=1)
        else:
            g.node("MatMul", g.weights((fan_in, fan_out), quantizer))
        if k == len(sizes) - 2:
            break
        g.batchnorm(fan_out, ties_with=fan_in if ties and (k > 0 or input_bits == 1) else None)
        g.bipolar()
    g.node("Mul", g.const(0.25))
    g.node("Add", g.const(1.5))
    return _with_head(g, head)


def _with_head(g, head):
    if head == "argmax":
        g.node("ArgMax", axis=1, keepdims=1)
        return g.model([(g.x, TensorProto.INT64)])
    if head == "topk":
        g.node("TopK", g.const([1], np.int64), axis=1)
        g.nodes[-1].output[:] = ["values", "indices"]
        return g.model([("values", TensorProto.FLOAT), ("indices", TensorProto.INT64)])
    return g.model([(g.x, TensorProto.FLOAT)])


def brevitas_conv(*, input_bits=8, seed=0, ties=False):
    g = GraphBuilder([1, 10, 10], seed)
    if input_bits == 8:
        g.quant(np.float32(1 / 255), 8)
    else:
        g.node("Mul", g.const(2.0))
        g.node("Add", g.const(-1.0))
        g.bipolar()
    g.node("Conv", g.weights((4, 1, 3, 3)), g.const(g.rng.normal(size=4)), kernel_shape=[3, 3])
    g.batchnorm(4, negative=0.5)
    g.bipolar()
    g.node("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.node("Conv", g.weights((6, 4, 2, 2), "Quant"), kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[1, 1])
    g.batchnorm(6, negative=0.5, ties_with=16 if ties else None)
    g.bipolar()
    g.node("Flatten", axis=1)
    g.node("MatMul", g.weights((54, 12)))
    g.batchnorm(12, negative=0.5, ties_with=54 if ties else None)
    g.bipolar()
    g.node("MatMul", g.weights((12, 5)))
    g.node("Mul", g.const(0.5))
    return g.model()


def finn_streamlined(seed=0):
    """FINN after streamlining: MultiThreshold activations (one unipolar 0/1), plain -1/+1 weights,
    the map transposed to NHWC before its reshape, a scalar Mul and TopK at the end."""
    g = GraphBuilder([1, 10, 10], seed)
    g.threshold([0.5])
    g.node("Conv", g.weights((4, 1, 3, 3), None), kernel_shape=[3, 3])
    g.threshold(g.rng.normal(0, 2, 4).round(1))
    g.node("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.node("Transpose", perm=[0, 2, 3, 1])
    g.node("Reshape", g.const([-1, 64], np.int64))
    g.node("MatMul", g.weights((64, 20), None))
    g.node("MultiThreshold", g.const(g.rng.normal(0, 3, (20, 1)).round()), domain="qonnx.custom_op.general",
           out_dtype="BINARY")
    g.node("MatMul", g.weights((20, 16), None))
    g.threshold(g.rng.normal(5, 3, 16).round(2))
    g.node("MatMul", g.weights((16, 10), None))
    g.node("Mul", g.const(0.125))
    return _with_head(g, "topk")


@pytest.mark.parametrize("input_bits", [1, 8])
@pytest.mark.parametrize("head", [None, "argmax", "topk"])
def test_brevitas_dense_network_imports_to_the_same_classes(input_bits, head):
    proto = brevitas_dense(input_bits=input_bits, seed=input_bits, head=head, gemm=head == "argmax",
                           quantizer="Quant" if head == "topk" else "BipolarQuant")
    model = import_qonnx(proto)
    assert model.arch == "64-33-17-10" and model.input.bits == input_bits
    assert model.input.threshold == (128 if input_bits == 1 else None)   # 2 p / 255 - 1 >= 0
    images = random_images(IMAGES, 64, seed=1)
    classes = {None: None, "argmax": proto.graph.output[0].name, "topk": "indices"}[head]
    outputs, golden = _agrees(proto, model, images, classes=classes)
    if head is None:   # the scores up to the stated affine scale
        expected = model.metadata["score_scale"] * golden.scores + model.metadata["score_offset"]
        assert np.allclose(outputs[proto.graph.output[0].name], expected, rtol=1e-5)


def test_scores_are_the_graphs_up_to_the_stated_scale():
    proto = brevitas_dense(input_bits=1, seed=5)
    model = import_qonnx(proto)
    images = random_images(IMAGES, 64, seed=2)
    graph = run_graph(proto, images)[proto.graph.output[0].name]
    assert model.metadata["score_scale"] == 0.25 and model.metadata["score_offset"] == 1.5
    assert np.array_equal(graph, np.float32(0.25) * infer(model, images).scores.astype(np.float32) + np.float32(1.5))


def test_ties_and_negative_scales_fold_exactly():
    for seed, bits in ((11, 1), (12, 8)):
        proto = brevitas_dense(input_bits=bits, seed=seed, ties=True, input_quant_scale=np.float32(1.0))
        model = import_qonnx(proto, input_scale=1)
        images = random_images(IMAGES, 64, seed=seed)
        _agrees(proto, model, images, scale=(1, 1))
        assert _ties(model, images) > 50   # the folding met many ties, and took them as qonnx does
        _check_negated_rows(proto, model)


def _check_negated_rows(proto, model):
    """Each hidden neuron's weight row is the graph's, negated where its batch norm's scale is negative."""
    constants = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    layers = [n for n in proto.graph.node if n.op_type == "MatMul"]
    norms = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    assert any(np.any(constants[norm.input[1]] < 0) for norm in norms)
    for layer, matmul, norm in zip(model.layers, layers, norms):
        graph_rows = np.where(constants[matmul.input[1].removesuffix("_q")] >= 0, 1, -1).T
        negative = constants[norm.input[1]] < 0
        expected = np.where(negative[:, None], -graph_rows, graph_rows)
        assert np.array_equal(unpack_signs(layer.weights, layer.fan_in), expected)


@pytest.mark.parametrize("input_bits", [1, 8])
def test_brevitas_cnn_imports_to_the_same_classes(input_bits):
    proto = brevitas_conv(input_bits=input_bits, seed=input_bits, ties=input_bits == 1)
    model = import_qonnx(proto)
    assert model.arch == "10x10-c4k3-p-c6k2-12-5"
    images = random_images(IMAGES, 100, seed=3)
    _agrees(proto, model, images)
    if input_bits == 1:
        assert _ties(model, images) > 0


def test_finn_streamlined_network_imports_to_the_same_classes():
    proto = finn_streamlined(seed=4)
    model = import_qonnx(proto)
    assert model.arch == "10x10-c4k3-p-20-16-10" and model.input.threshold == 128
    _agrees(proto, model, random_images(IMAGES, 100, seed=4), classes="indices")


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300).flatmap(lambda bound: st.tuples(
    st.just(bound), st.lists(st.tuples(st.integers(-bound - 3, bound + 4), st.sampled_from([-1, 1])), min_size=1,
                             max_size=12))))
def test_the_search_finds_every_threshold_and_direction(case):
    """Outputs that switch anywhere, beyond the reachable pre-activations too, rising or falling."""
    bound, outputs = case
    switches, directions = (np.array(column) for column in zip(*outputs))

    def fires(y):   # rising at the switch, or falling (fires for -y >= switch)
        return directions * y >= switches

    flips, found = smallest_firing(fires, len(outputs), bound, None)
    thresholds = np.clip(switches, -bound, bound + 1)
    constant = (thresholds == -bound) | (thresholds == bound + 1)   # fires always or never: no direction
    assert np.array_equal(found, thresholds)
    assert np.array_equal(flips[~constant], directions[~constant])


def test_an_input_binarization_that_fires_for_dark_pixels_negates_the_first_layer():
    g = GraphBuilder([16], 3)
    g.node("Mul", g.const(-2.0))   # 1 - 2x >= 0: +1 for p <= 127, the engine's -1 (its +1 is p >= 128)
    g.node("Add", g.const(1.0))
    g.bipolar()
    g.node("MatMul", g.weights((16, 9)))
    g.batchnorm(9)
    g.bipolar()
    g.node("MatMul", g.weights((9, 4)))
    proto = g.model()
    model = import_qonnx(proto)
    assert model.input.threshold == 128
    _agrees(proto, model, random_images(IMAGES, 16, seed=8))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(-12, 12), st.integers(-8, 8), st.sampled_from([-2, -1, -0.5, 0.5, 1, 2]),
                          st.sampled_from([0.25, 1, 4, 16])), min_size=3, max_size=3))
def test_thresholds_are_the_exact_batch_norm_thresholds(channels):
    """With parameters whose float arithmetic is exact, each threshold is the real-number one:
    fires iff gamma * (y - mean) / sqrt(var) + beta >= 0, so y >= ceil(mean - beta * sqrt(var) / gamma)
    for gamma > 0 and -y >= -floor(...) (the row negated) for gamma < 0; equality fires."""
    mean, beta4, gamma, var = (np.array(column, np.float64) for column in zip(*channels))
    beta = beta4 / 4
    g = GraphBuilder([7], 0)
    g.threshold([0.5])
    g.node("MatMul", g.weights((7, 3), None))
    g.node("BatchNormalization", *(g.const(v) for v in (gamma, beta, mean, var)), epsilon=0.0)
    g.bipolar()
    g.node("MatMul", g.weights((3, 2), None))
    model = import_qonnx(g.model())
    layer = model.layers[0]
    for j, (m, b, c, v) in enumerate(zip(mean, beta, gamma, var)):
        edge = Fraction(m) - Fraction(b) * Fraction(math.sqrt(v)) / Fraction(c)   # the square roots are exact
        expected = math.ceil(edge) if c > 0 else -math.floor(edge)
        assert layer.thresholds[j] == min(max(expected, -7), 8)


# --- export, and the round trip ----------------------------------------------------------------------
ROUND_TRIP = {
    "dense 8-bit": lambda: random_model([64, 40, 20, 10], seed=1, extreme_thresholds=0.2),
    "dense 1-bit": lambda: random_model([64, 20, 10], input_bits=1, seed=2, input_threshold=0),
    "cnn 8-bit": lambda: random_conv_model((10, 10), [Conv(4, 3), MaxPool(), Conv(6, 2), Dense(12), Dense(5)],
                                           seed=3, extreme_thresholds=0.2),
    "cnn 1-bit, 2 channels": lambda: random_conv_model((9, 9, 2), [Conv(4, 3), Conv(3, 2), MaxPool(), Dense(7)],
                                                       input_bits=1, seed=4, input_threshold=256),
    "dense over a map": lambda: random_conv_model((6, 6, 3), [Dense(9), Dense(4)], seed=5),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_export_runs_to_the_golden_scores_and_imports_to_the_same_file(name, tmp_path):
    model = ROUND_TRIP[name]()
    model.metadata.update(dataset="digits", note=name)
    proto = export_qonnx(model)
    images = random_images(IMAGES, model.input.size, seed=6)
    map_shape = model.input.map_shape if len(proto.graph.input[0].type.tensor_type.shape.dim) == 4 else None
    scores = run_graph(proto, images, map_shape=map_shape, scale=(1, 1))["scores"]
    assert np.array_equal(scores, infer(model, images).scores)
    assert _file_bytes(import_qonnx(proto), tmp_path / "b.bnn") == _file_bytes(model, tmp_path / "a.bnn")


def test_a_trained_model_exports_exactly_on_the_whole_test_split(tmp_path):
    digits = load_dataset("digits")
    rng = np.random.default_rng(1)
    net = init_binary_network((8, 8, 1), (Conv(8, 3), MaxPool(), Dense(16), Dense(10)), 1, digits.max_value,
                              "ste", rng, input_threshold=8)
    train.train_binary(train.split_validation(digits, 0.1, 1), net, train.TrainSettings(2, 64, 1e-2), rng,
                       progress=False)
    model = fold(net, digits.shape)
    model.metadata.update(dataset="digits")
    proto = export_qonnx(model)
    scores = run_graph(proto, digits.test_images, map_shape=model.input.map_shape, scale=(1, 1))["scores"]
    assert np.array_equal(scores, infer(model, digits.test_images).scores)
    assert _file_bytes(import_qonnx(proto), tmp_path / "b.bnn") == _file_bytes(model, tmp_path / "a.bnn")


@settings(max_examples=20, deadline=None)
@given(binary_models(with_metadata=True))
def test_round_trip_is_byte_identical(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("round")
    assert _file_bytes(import_qonnx(export_qonnx(model)), folder / "b.bnn") == _file_bytes(model, folder / "a.bnn")


def test_commands_round_trip(tmp_path, capsys):
    model = random_conv_model((8, 8), [Conv(3, 3), MaxPool(), Dense(6)], seed=7)
    save_model(model, tmp_path / "m.bnn")
    assert main(["export", str(tmp_path / "m.bnn"), "--out", str(tmp_path / "out" / "m.onnx")]) == 0
    assert main(["import", str(tmp_path / "out" / "m.onnx"), "--out", str(tmp_path / "back.bnn"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["arch"] == "8x8-c3k3-p-6" and report["input_bits"] == 8
    assert (tmp_path / "back.bnn").read_bytes() == (tmp_path / "m.bnn").read_bytes()


def test_an_input_scale_on_the_command_line(tmp_path, capsys):
    g = GraphBuilder([16], 0)   # a graph that reads raw pixels 0..255
    g.threshold([99.5])
    g.node("MatMul", g.weights((16, 3)))
    path = tmp_path / "g.onnx"
    path.write_bytes(g.model().SerializeToString())
    assert main(["import", str(path), "--out", str(tmp_path / "m.bnn"), "--input-scale", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_threshold"] == 100
    with pytest.raises(SystemExit) as exit:
        main(["import", str(path), "--out", str(tmp_path / "m.bnn"), "--input-scale", "0"])
    assert exit.value.code == 2


def test_a_file_that_is_not_onnx_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "g.onnx").write_bytes(b"not a graph")
    assert main(["import", str(tmp_path / "g.onnx"), "--out", str(tmp_path / "m.bnn")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an ONNX model" in err and not (tmp_path / "m.bnn").exists()


def test_import_without_the_extra_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    import sys
    for name in [n for n in sys.modules if n == "interop" or n.startswith("interop.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["import", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "m.bnn")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install '.[onnx]'" in err
    assert not (tmp_path / "m.bnn").exists()


# --- refusals ----------------------------------------------------------------------------------------
def _refused_graphs():
    """(case, graph, the refused node's name and op, words of the reason)."""
    cases = []

    def conv_graph(name, **conv):
        g = GraphBuilder([1, 8, 8], 0)
        g.quant(np.float32(1 / 255), 8)
        node = g.node("Conv", g.weights((2, 1, 3, 3)), **{"kernel_shape": [3, 3], **conv})
        g.bipolar()
        g.node("Flatten", axis=1)
        g.node("MatMul", g.weights((18, 3)))
        cases.append((name, g.model(), node))

    conv_graph("stride", strides=[2, 2])
    conv_graph("padding", pads=[1, 1, 1, 1])
    conv_graph("dilation", dilations=[2, 2])

    def dense_graph(name, build, reason):
        g = GraphBuilder([16], 0)
        g.node("Mul", g.const(2.0))
        g.node("Add", g.const(-1.0))
        g.bipolar()
        node = build(g)
        cases.append((name, g.model(), node, reason))

    def hidden(g, activation):
        g.node("MatMul", g.weights((16, 8)))
        node = activation(g)
        g.node("MatMul", g.weights((8, 3)))
        return node

    dense_graph("relu", lambda g: hidden(g, lambda g: g.node("Relu")), "not supported")
    dense_graph("2-bit activation", lambda g: hidden(g, lambda g: g.quant(1.0, 2.0, signed=1)), "2 bits")
    dense_graph("multi-bit threshold", lambda g: hidden(g, lambda g: g.node(
        "MultiThreshold", g.const(np.sort(g.rng.normal(size=(8, 3)))), domain="qonnx.custom_op.general",
        out_dtype="UINT2")), "3 thresholds per channel")
    dense_graph("sign", lambda g: hidden(g, lambda g: g.node("Sign")), "not supported")

    def two_bit_weights(g):
        w = g.const(g.rng.normal(size=(16, 3)))
        g.nodes.append(helper.make_node(
            "Quant", [w, g.const(0.5), g.const(0.0), g.const(2.0)], ["w2"], domain="qonnx.custom_op.general",
            signed=1, narrow=0, rounding_mode="ROUND"))
        return g.node("MatMul", "w2")
    dense_graph("2-bit weights", two_bit_weights, "not binary")

    def residual(g):
        skip = g.x
        g.node("MatMul", g.weights((16, 16)))
        g.bipolar()
        node = g.node("Add", skip)
        g.node("MatMul", g.weights((16, 3)))
        return node
    dense_graph("residual", residual, "two computed tensors")

    def per_class_scale(g):
        g.node("MatMul", g.weights((16, 3)))
        return g.node("Mul", g.const([1.0, 2.0, 3.0]))
    dense_graph("per-class scale", per_class_scale, "per-class constants")

    def softmax(g):
        g.node("MatMul", g.weights((16, 3)))
        return g.node("Softmax", axis=1)
    dense_graph("softmax", softmax, "not supported")

    def last_index(g):
        g.node("MatMul", g.weights((16, 3)))
        return g.node("ArgMax", axis=1, select_last_index=1)
    dense_graph("argmax to the last index", last_index, "ties to the lowest index")

    def unquantized(g):
        return g.node("MatMul", g.weights((16, 3)))
    g = GraphBuilder([16], 0)
    node = unquantized(g)
    cases.append(("unquantized input", g.model(), node, "not binarized"))

    g = GraphBuilder([16], 0)
    node = g.quant(np.float32(1 / 128), 8)
    g.node("MatMul", g.weights((16, 3)))
    cases.append(("8-bit levels off the pixels", g.model(), node, "levels are not the pixels"))

    g = GraphBuilder([1, 6, 6], 0)
    g.quant(np.float32(1 / 255), 8)
    g.node("Conv", g.weights((2, 1, 3, 3)), kernel_shape=[3, 3])
    node = g.node("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.bipolar()
    g.node("Flatten", axis=1)
    g.node("MatMul", g.weights((8, 3)))
    cases.append(("max-pool of pre-activations", g.model(), node, "pools pre-activations"))

    g = GraphBuilder([1, 6, 6], 0)
    g.quant(np.float32(1 / 255), 8)
    g.node("Conv", g.weights((2, 1, 3, 3)), kernel_shape=[3, 3])
    g.bipolar()
    node = g.node("MaxPool", kernel_shape=[3, 3], strides=[3, 3])
    g.node("Flatten", axis=1)
    g.node("MatMul", g.weights((2, 3)))
    cases.append(("3 x 3 max-pool", g.model(), node, "2 x 2"))

    g = GraphBuilder([1, 6, 6], 0)
    g.quant(np.float32(1 / 255), 8)
    g.node("Transpose", perm=[0, 2, 3, 1])
    node = g.node("Conv", g.weights((2, 6, 3, 3)), kernel_shape=[3, 3])
    cases.append(("convolution of a channels-last map", g.model(), node, "not the 6 x 1 x 6 map in NCHW order"))

    g = GraphBuilder([1, 6, 6], 0)
    g.quant(np.float32(1 / 255), 8)
    node = g.node("Conv", g.weights((2, 1, 3, 3)), kernel_shape=[3, 3])
    cases.append(("convolution as the last layer", g.model(), node, "last layer is a convolution"))

    def top_two(g):
        g.node("MatMul", g.weights((16, 3)))
        node = g.node("TopK", g.const([2], np.int64), axis=1)
        g.nodes[-1].output[:] = ["values", "indices"]
        return node
    dense_graph("top 2", top_two, "more than one class")
    return [case if len(case) == 4 else (*case, case[0]) for case in cases]


REFUSED = _refused_graphs()


@pytest.mark.parametrize("case", REFUSED, ids=[case[0] for case in REFUSED])
def test_each_unsupported_construct_is_refused_in_one_line_and_nothing_is_written(case, tmp_path, capsys):
    name, proto, node, reason = case
    path = tmp_path / "g.onnx"
    path.write_bytes(proto.SerializeToString())
    assert main(["import", str(path), "--out", str(tmp_path / "m.bnn")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"node {node.name} ({node.op_type}): " in err and reason in err, err
    assert not (tmp_path / "m.bnn").exists()
    with pytest.raises(QonnxImportError):
        import_qonnx(proto)
