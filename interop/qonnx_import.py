"""QONNX graph to :class:`model.modelfile.BinaryModel`, exactly (the derivation is in ``docs/interop.md``).

The importer walks the graph's nodes in order. Constants (initializers, ``Constant`` nodes, weights
through ``BipolarQuant`` or ``Quant``) are evaluated as they come; the one computed tensor, starting at
the graph's input, is followed through a small set of states:

* pixels: the graph's input, pixel ``p`` being the float32 value ``p * input_scale``, with the
  elementwise nodes applied to it so far;
* values: a layer's binary outputs (or the input after its quantizer), the graph holding
  ``mid + half * v`` where ``v`` is the project's value (+1/-1, or a pixel 0..255 after an 8-bit
  ``Quant``);
* pre-activations: the output of a ``MatMul``, ``Gemm`` or ``Conv``, ``scale_j * (half * y_j +
  mid * S_j)`` for the project's integer ``y_j`` (``S_j`` the sum of output ``j``'s weight signs), with
  the elementwise nodes that follow it (bias, ``Mul``, ``Add``, ``BatchNormalization``) up to an
  activation.

A hidden output's threshold is found by running its nodes with qonnx on the exact pre-activation
values: the smallest ``y`` that qonnx's own arithmetic binarizes to the higher level, by bisection
(the nodes are monotone in ``y``), checked at ``t - 1`` and ``t``. An output that is higher for
smaller ``y`` (a negative batch-norm scale) gets its weight row negated.
"""

import json
from fractions import Fraction
from math import prod

import numpy as np
import onnx
from onnx import helper, numpy_helper

from model.bits import pack_signs
from model.errors import ModelFileError
from model.modelfile import BinaryLayer, BinaryModel, ConvLayer, InputEncoding, MaxPoolLayer

from .graph import PROPERTY, QonnxImportError, map_order, refuse, run_nodes
from .nodes import attributes, binarize, fold, load_graph, reorder, uniform
from .states import Pixels, Pre, Scores, Values
from .thresholds import activation_levels, smallest_firing

# Pixel p is the graph input float32(p) / 255, as torchvision's ToTensor gives Brevitas and FINN.
DEFAULT_INPUT_SCALE = Fraction(1, 255)
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Neg", "Identity"}
ACTIVATIONS = {"BipolarQuant", "MultiThreshold", "Quant"}
SHAPES = {"Flatten", "Reshape", "Transpose", "Identity"}
_START = "bnn_fpga.pixels"   # the name of the pixels in the nodes run on them


class _Importer:
    def __init__(self, proto, input_scale):
        self.proto = proto
        self.graph = proto.graph
        self.opsets = list(proto.opset_import)
        self.properties = {p.key: p.value for p in proto.metadata_props}
        self.saved = json.loads(self.properties[PROPERTY]) if PROPERTY in self.properties else {}
        self.input_scale = Fraction(input_scale if input_scale is not None
                                    else self.saved.get("input_scale", DEFAULT_INPUT_SCALE))
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.states, self.read = {}, set()
        self.layers, self.encoding, self.score_line, self.last_pre = [], None, None, None
        for k, node in enumerate(self.graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{k}"

    # --- the walk -----------------------------------------------------------------------------
    def run(self):
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise QonnxImportError(f"the graph has {len(inputs)} inputs besides its weights; "
                                   "the engine reads one image")
        self.states[inputs[0].name] = Pixels(self._input_order(inputs[0]))
        for node in self.graph.node:
            if node.op_type == "Shape" and node.input[0] in self.states:   # a constant: the shapes are fixed
                state, attrs = self.states[node.input[0]], attributes(node)
                shape = np.array(state.shape if isinstance(state, Pre) else state.order.shape, np.int64)
                self.constants[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", len(shape))]
                continue
            data = [name for name in node.input if name in self.states]
            if not data:
                fold(node, self.constants, self.graph)
                continue
            if len(data) > 1:
                raise refuse(node, "combines two computed tensors; the engine's layers form a chain")
            if data[0] in self.read:
                raise refuse(node, f"reads {data[0]!r}, which another node reads too; the engine's layers form a chain")
            self.read.add(data[0])
            self.states.update(dict.fromkeys(node.output, self._step(node, self.states[data[0]])))
        return self._finish()

    def _finish(self):
        outputs = [o.name for o in self.graph.output]
        last = self.states.get(outputs[0]) if outputs else None
        if isinstance(last, Pre) and self.last_pre is None:
            self._scores(last, None)
        if not all(isinstance(self.states.get(name), Scores) or self.states.get(name) is self.last_pre
                   for name in outputs) or self.last_pre is None:
            raise QonnxImportError("the graph's outputs are not the last layer's scores or classes")
        metadata = self.saved.get("metadata", {
            "source": "qonnx", "producer": f"{self.proto.producer_name} {self.proto.producer_version}".strip(),
            "score_scale": self.score_line[0], "score_offset": self.score_line[1],
            "input_scale": str(self.input_scale)})
        try:
            return BinaryModel(self.encoding, tuple(self.layers), metadata).validate()
        except ModelFileError as e:
            raise QonnxImportError(f"the imported network does not fit the engine: {e}") from None

    def _input_order(self, value):
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
        if len(dims) not in (1, 2, 3) or min(dims, default=0) < 1:
            raise QonnxImportError(f"the graph's input {value.name!r} has shape {dims}; expected (N, size), "
                                   "(N, H, W) or (N, C, H, W) with known sizes")
        if len(dims) == 3:
            channels, height, width = dims
            shape, order = (height, width) + (channels,) * (channels != 1), map_order((height, width, channels))
        else:
            shape, order = tuple(dims), np.arange(prod(dims)).reshape(1, *dims)
        saved = tuple(self.saved.get("input_shape", shape))
        self.input_shape = saved if prod(saved) == prod(shape) else shape
        return order

    def _step(self, node, state):
        """The state of ``node``'s outputs, from the state of the computed tensor it reads."""
        op = node.op_type
        if op in SHAPES and not isinstance(state, Pre):
            return type(state)(**{**state.__dict__, "order": reorder(node, state.order, self.constants)})
        if isinstance(state, Scores):
            raise refuse(node, "follows the class scores; only ArgMax or TopK may")
        if isinstance(state, Pixels):
            if op in ELEMENTWISE:
                return Pixels(state.order, state.chain + [node])
            if op in ACTIVATIONS:
                return self._first_quantizer(node, state)
        elif isinstance(state, Values):
            if op in ELEMENTWISE:
                return self._relevel(node, state)
            if op in ("MatMul", "Gemm", "Conv"):
                return self._weights(node, state)
            if op == "MaxPool":
                return self._pool(node, state)
        else:   # Pre
            if op in ELEMENTWISE | {"BatchNormalization"}:
                return self._extend(node, state)
            if op in ACTIVATIONS:
                return self._activate(node, state)
            if op in ("ArgMax", "TopK"):
                return self._scores(state, node)
            if op == "MaxPool":
                raise refuse(node, "pools pre-activations; the engine pools a convolution's binary outputs")
        if op in ("MatMul", "Gemm", "Conv"):
            what = "pre-activations" if isinstance(state, Pre) else "the graph's input"
            raise refuse(node, f"its input ({what}) is not binarized and not an 8-bit Quant")
        raise refuse(node, "this operation is not supported by the engine")

    # --- constants ----------------------------------------------------------------------------
    def _constant(self, node, name, what):
        if name not in self.constants:
            raise refuse(node, f"its {what} {name!r} is not a constant")
        return self.constants[name]

    # --- the first layer's input --------------------------------------------------------------
    def _pixel_values(self):
        if not (0 < self.input_scale.numerator < 1 << 24 and 0 < self.input_scale.denominator < 1 << 24):
            raise QonnxImportError(f"input scale {self.input_scale} is not a positive fraction of integers "
                                   "below 2**24")
        pixels = np.arange(256, dtype=np.float32) * np.float32(self.input_scale.numerator)
        return (pixels / np.float32(self.input_scale.denominator)).reshape(256, 1)

    def _uniform_constants(self, nodes, why):
        """The constants ``nodes`` read, each reduced to one element; refuses one whose elements differ."""
        constants = {}
        for node in nodes:
            for name in node.input:
                if name in self.constants:
                    constants[name] = uniform(self.constants[name])
                    if constants[name] is None:
                        raise refuse(node, f"its constant {name!r} differs from element to element; {why}")
        return constants

    def _first_quantizer(self, node, state):
        nodes = self._rewire(state.chain + [node])
        constants = self._uniform_constants(nodes, "the engine binarizes every pixel at one threshold")
        out = run_nodes(nodes, constants, _START, self._pixel_values(), node.output[0], self.opsets)
        size = state.order.size
        if node.op_type == "Quant" and self._bitwidth(node) == 8:
            scale, zeropt = (float(constants[n].flat[0]) for n in node.input[1:3])
            expected = (np.arange(256, dtype=np.float32) - np.float32(zeropt)) * np.float32(scale)
            attrs = attributes(node)
            if attrs.get("signed", 1) or attrs.get("narrow", 0) or not np.array_equal(out[:, 0], expected):
                raise refuse(node, f"its levels are not the pixels 0..255 under input scale {self.input_scale} "
                                   f"(--input-scale); the engine reads 8-bit pixels")
            self.encoding = InputEncoding(8, size, self.input_shape, None)
            return Values(state.order, float(expected[0]), float(scale), pixels=True)
        low, high = self._levels(node, constants, (1,))
        fires = out[:, 0] > (low + high) / 2
        rising = int(np.argmax(fires)) if fires.any() else 256
        falling = int(fires.sum())
        pixels = np.arange(256)
        if np.array_equal(fires, pixels >= rising):
            threshold, plus, minus = rising, high, low
        elif np.array_equal(fires, pixels < falling):
            threshold, plus, minus = falling, low, high
        else:
            raise refuse(node, "binarizes the pixels at more than one threshold")
        self.encoding = InputEncoding(1, size, self.input_shape, threshold)
        return Values(state.order, (plus + minus) / 2, (plus - minus) / 2)

    def _rewire(self, nodes):
        """Copies of the elementwise ``nodes`` each reading the one before (the shape operations
        between them act on the order only), the first reading the tensor ``_START``."""
        copies, previous = [], _START
        for node in nodes:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.input[:] = [name if name in self.constants or not name else previous for name in node.input]
            copies.append(copy)
            previous = node.output[0]
        return copies

    def _bitwidth(self, node):
        if node.op_type != "Quant":
            return 1
        return float(self._constant(node, node.input[3], "bit width").flat[0])

    def _levels(self, node, constants, channel_shape):
        """The two output levels of the activation ``node`` (:func:`activation_levels`), if it has two."""
        if node.op_type == "Quant" and self._bitwidth(node) != 1:
            raise refuse(node, f"quantizes to {self._bitwidth(node):g} bits; the engine's activations are binary")
        if node.op_type == "MultiThreshold" and self.constants[node.input[1]].shape[-1] != 1:
            raise refuse(node, f"has {self.constants[node.input[1]].shape[-1]} thresholds per channel "
                               "(a multi-bit activation); the engine's activations are binary")
        return activation_levels(node, constants, channel_shape, self.opsets)

    # --- binary values ------------------------------------------------------------------------
    def _relevel(self, node, state):
        if state.pixels:
            raise refuse(node, "rescales the quantized pixels; the engine's first layer reads them as they are")
        constants = self._uniform_constants([node], "the engine's binary values have two levels for all")
        plus, minus = state.mid + state.half, state.mid - state.half
        out = run_nodes([node], constants, next(n for n in node.input if n not in self.constants),
                        np.array([[plus], [minus]], np.float32), node.output[0], self.opsets)
        plus, minus = float(out[0, 0]), float(out[1, 0])
        return Values(state.order, (plus + minus) / 2, (plus - minus) / 2)

    def _pool(self, node, state):
        attrs = attributes(node)
        if (list(attrs.get("kernel_shape", [])) != [2, 2] or list(attrs.get("strides", [1, 1])) != [2, 2]
                or any(attrs.get("pads", [])) or attrs.get("ceil_mode", 0)
                or any(d != 1 for d in attrs.get("dilations", []))):
            raise refuse(node, "only a 2 x 2 max-pool with stride 2 and no padding is supported by the engine")
        if not self.layers or not isinstance(self.layers[-1], ConvLayer):
            raise refuse(node, "a max-pool must directly follow a convolution's activation")
        if state.half < 0:
            raise refuse(node, "pools values whose higher level is the engine's -1 (a min-pool)")
        pool = MaxPoolLayer(self.layers[-1].out_shape)
        self._check_map(node, state.order, pool.in_shape)
        self.layers.append(pool)
        return Values(map_order(pool.out_shape), state.mid, state.half)

    @staticmethod
    def _check_map(node, order, shape):
        if order.shape != (1, shape[2], shape[0], shape[1]) or not np.array_equal(order, map_order(shape)):
            raise refuse(node, f"reads a tensor of shape {list(order.shape)} that is not the "
                               f"{' x '.join(map(str, shape))} map in NCHW order")

    # --- layers with weights ------------------------------------------------------------------
    def _weights(self, node, state):
        op, attrs = node.op_type, attributes(node)
        if node.input[0] not in self.states:
            raise refuse(node, "multiplies the weights by the data from the left; expected data times weights")
        weights = self._constant(node, node.input[1], "weight tensor").astype(np.float64)
        bias = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and bias is None:
            raise refuse(node, "its bias is not a constant")
        in_shape, x_max = None, 255 if not self.layers and self.encoding.bits == 8 else 1
        if op == "Conv":
            if any(isinstance(layer, BinaryLayer) for layer in self.layers):
                raise refuse(node, "a convolution after a fully connected layer is not supported by the engine")
            kernel = list(attrs.get("kernel_shape", weights.shape[2:]))
            for key, good in (("strides", 1), ("dilations", 1)):
                if any(v != good for v in attrs.get(key, [])):
                    raise refuse(node, f"{key[:-1]} {list(attrs[key])} is not supported by the engine (1 only)")
            if attrs.get("group", 1) != 1:
                raise refuse(node, f"group {attrs['group']} is not supported by the engine (1 only)")
            if any(attrs.get("pads", [])) or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
                raise refuse(node, f"padding {list(attrs.get('pads', [])) or attrs['auto_pad'].decode()} is not "
                                   "supported by the engine (valid convolutions only)")
            if weights.ndim != 4 or kernel[0] != kernel[1]:
                raise refuse(node, f"kernel {kernel} is not square; the engine's are K x K")
            if state.order.ndim != 4:
                raise refuse(node, f"convolves a tensor of shape {list(state.order.shape)}; expected (1, C, H, W)")
            in_shape = (state.order.shape[2], state.order.shape[3], state.order.shape[1])
            self._check_map(node, state.order, in_shape)
            signs, scales = binarize(weights.transpose(0, 2, 3, 1).reshape(len(weights), -1), node)
            out = (in_shape[0] - kernel[0] + 1, in_shape[1] - kernel[0] + 1)
            shape, bias_shape = (1, len(weights), *out), (1, len(weights), 1, 1)
        else:
            if op == "Gemm":
                if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                    raise refuse(node, "transA, alpha or beta differ from 0, 1, 1")
                weights = weights.T if attrs.get("transB", 0) else weights
            if state.order.ndim != 2 or weights.ndim != 2 or weights.shape[0] != state.order.shape[1]:
                raise refuse(node, f"multiplies {list(state.order.shape)} by {list(weights.shape)}; "
                                   "expected (1, K) by (K, N)")
            rows, scales = binarize(weights.T, node)
            signs = np.empty_like(rows)
            signs[:, state.order[0]] = rows
            shape, bias_shape = (1, weights.shape[1]), (1, weights.shape[1])
        pre = Pre(node, signs, scales, signs.sum(axis=1, dtype=np.int64), state.mid, state.half,
                   signs.shape[1] * x_max, in_shape, shape, node.output[0])
        if bias is not None:
            pre.start = f"{node.output[0]}.without_bias"
            pre.constants[f"{node.output[0]}.bias"] = np.ascontiguousarray(
                bias.reshape(bias_shape) if op == "Conv" else np.broadcast_to(bias, bias_shape))
            pre.chain.append(helper.make_node("Add", [pre.start, f"{node.output[0]}.bias"], [node.output[0]]))
        return pre

    def _extend(self, node, pre):
        if node.op_type == "Div" and node.input[0] not in self.states:
            raise refuse(node, "divides by the pre-activations, which is not monotone")
        constants = {}
        for k, name in enumerate(node.input):
            if name in self.states or not name:
                continue
            value = self._constant(node, name, "parameter")
            if (node.op_type, k) in (("MultiThreshold", 1), ("Quant", 3)):
                pass
            elif node.op_type == "BatchNormalization":
                if value.shape != (pre.shape[1],):
                    raise refuse(node, f"parameter {name!r} has shape {list(value.shape)}, not ({pre.shape[1]},)")
            else:
                try:
                    broad = np.broadcast_to(value, pre.shape)
                except ValueError:
                    raise refuse(node, f"its constant of shape {list(value.shape)} does not fit "
                                       f"{list(pre.shape)}") from None
                if len(pre.shape) == 4 and not np.all(broad == broad[:, :, :1, :1]):
                    raise refuse(node, "its constant differs from pixel to pixel within a channel")
                value = broad[:, :, :1, :1] if len(pre.shape) == 4 else broad
            constants[name] = np.ascontiguousarray(value)
        return Pre(**{**pre.__dict__, "chain": pre.chain + [node], "constants": {**pre.constants, **constants}})

    def _preactivations(self, pre, y):
        """The float32 tensor the graph holds for integer pre-activations ``y`` (rows, outputs)."""
        z = pre.scales * (pre.half * y + pre.mid * pre.sums)
        return z.astype(np.float32).reshape(len(y), *pre.channel_shape)

    def _activate(self, node, pre):
        if attributes(node).get("data_layout", b"") not in (b"NCHW", b"NC", b""):
            raise refuse(node, "thresholds channels-last data; the importer follows NCHW graphs")
        pre = self._extend(node, pre)
        low, high = self._levels(node, pre.constants, pre.channel_shape)

        def fires(y):
            out = run_nodes(pre.chain, pre.constants, pre.start, self._preactivations(pre, y), node.output[0],
                            self.opsets)
            return out.reshape(len(y), -1) > (low + high) / 2

        flips, thresholds = smallest_firing(fires, len(pre.signs), pre.bound, node)
        self._add_layer(pre, pre.signs * flips[:, None].astype(np.int8), thresholds)
        order = map_order(self.layers[-1].out_shape) if pre.in_shape else np.arange(len(pre.signs)).reshape(1, -1)
        return Values(order, (low + high) / 2, (high - low) / 2)

    def _add_layer(self, pre, signs, thresholds):
        packed = pack_signs(signs)
        if pre.in_shape:
            kernel = round((signs.shape[1] // pre.in_shape[2]) ** 0.5)
            self.layers.append(ConvLayer(pre.in_shape, kernel, len(signs), packed, thresholds))
        else:
            self.layers.append(BinaryLayer(signs.shape[1], len(signs), packed, thresholds))

    def _scores(self, pre, node):
        last = node or pre.node
        if pre.in_shape:
            raise refuse(last, "the last layer is a convolution; the engine's last layer is fully connected")
        if node is not None:
            self._check_choice(node)
        self.last_pre = pre
        for name, value in pre.constants.items():
            if uniform(value) is None:
                holder = next((n for n in pre.chain if name in n.input and n.name), pre.node)
                raise refuse(holder, "adds or multiplies the class scores by per-class constants; the argmax "
                                    "would change")
        if not (np.all(pre.scales == pre.scales[0]) and (pre.mid == 0 or np.all(pre.sums == pre.sums[0]))):
            raise refuse(pre.node, "per-class weight scales or offsets: the argmax would not be preserved")
        ys = np.array([[-1] * len(pre.signs), [0] * len(pre.signs), [1] * len(pre.signs)])
        z = self._preactivations(pre, ys)
        end = pre.chain[-1].output[0] if pre.chain else None
        out = run_nodes(pre.chain, pre.constants, pre.start, z, end, self.opsets) if pre.chain else z
        out = out.reshape(3, -1)[:, 0].astype(np.float64)
        if out[2] == out[0]:
            raise refuse(last, "the scores do not depend on the last layer's pre-activations")
        direction = 1 if out[2] > out[0] else -1
        self.score_line = (float(direction * (out[2] - out[0]) / 2), float(out[1]))
        self._add_layer(pre, pre.signs * np.int8(direction), None)
        return Scores()

    def _check_choice(self, node):
        attrs = attributes(node)
        if node.op_type == "TopK" and int(self._constant(node, node.input[1], "k").flat[0]) != 1:
            raise refuse(node, "keeps more than one class; the engine gives the best one")
        if attrs.get("axis", -1 if node.op_type == "TopK" else 0) not in (1, -1):
            raise refuse(node, f"chooses along axis {attrs.get('axis', 0)}, not the classes' axis 1")
        if attrs.get("select_last_index", 0) or attrs.get("largest", 1) != 1:
            raise refuse(node, "does not pick the highest score, ties to the lowest index")


def import_qonnx(source, *, input_scale=None):
    """The :class:`BinaryModel` that computes exactly what the QONNX graph ``source`` (a path or an
    ``onnx.ModelProto``) computes; see ``docs/interop.md`` for what is accepted.

    ``input_scale`` (a :class:`fractions.Fraction`, an integer, or text such as ``"1/255"``) says what the
    graph's input holds for pixel ``p``: the float32 ``p * input_scale`` (``p * numerator / denominator``
    rounded once; numerator and denominator below 2**24). None
    means the scale recorded by :func:`interop.qonnx.export_qonnx` in the graph, else 1/255.
    Raises :class:`QonnxImportError` with one line naming the node, its op type and why.
    """
    return _Importer(load_graph(source), input_scale).run()
