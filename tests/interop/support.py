"""QONNX graphs as Brevitas' export_qonnx writes them and FINN's streamlining leaves them, built with
onnx.helper (no PyTorch), and qonnx's execution of a graph on a batch of images."""

from fractions import Fraction

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.util.basic import qonnx_make_model

from interop.execute import execute_graph

QONNX = "qonnx.custom_op.general"


class GraphBuilder:
    """Appends nodes to one data path; ``x`` is the name of its current tensor."""

    def __init__(self, input_dims, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.constants, self.x, self.count = [], [], "image", 0
        self.input_dims = list(input_dims)

    def const(self, value, dtype=np.float32):
        name = f"c{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, *inputs, domain="", name=None, **attrs):
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op, [self.x, *inputs], [out], name=name or f"{op}_{self.count}",
                                           domain=domain, **attrs))
        self.x = out
        return self.nodes[-1]

    def bipolar(self, scale=1.0):
        return self.node("BipolarQuant", self.const(scale), domain=QONNX)

    def quant(self, scale, bits, zeropt=0.0, signed=0):
        return self.node("Quant", self.const(scale), self.const(zeropt), self.const(bits), domain=QONNX,
                         signed=signed, narrow=0, rounding_mode="ROUND")

    def threshold(self, thresholds):
        """FINN's bipolar MultiThreshold: +1 where x >= threshold, else -1."""
        return self.node("MultiThreshold", self.const(np.asarray(thresholds).reshape(-1, 1)), domain=QONNX,
                         out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)

    def weights(self, shape, quantizer="BipolarQuant"):
        """A float weight initializer through a 1-bit quantizer; returns the quantized tensor's name."""
        w = self.const(self.rng.normal(size=shape))
        out = f"{w}_q"
        if quantizer == "BipolarQuant":
            self.nodes.append(helper.make_node("BipolarQuant", [w, self.const(1.0)], [out], domain=QONNX))
        elif quantizer == "Quant":
            self.nodes.append(helper.make_node("Quant", [w, self.const(0.5), self.const(0.0), self.const(1.0)], [out],
                                               domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"))
        else:   # plain -1/+1 weights, as FINN's streamlining leaves them
            return self.const(np.where(self.rng.normal(size=shape) >= 0, 1.0, -1.0))
        return out

    def batchnorm(self, channels, *, negative=0.3, ties_with=None):
        """BatchNormalization with a fraction ``negative`` of negative scales; ``ties_with`` (fan-in)
        puts each mean on a reachable pre-activation, beta 0, so that the output is exactly 0 there."""
        gamma = self.rng.uniform(0.5, 2, channels) * np.where(self.rng.random(channels) < negative, -1, 1)
        if ties_with is None:
            beta, mean = self.rng.normal(size=channels), self.rng.normal(0, 2, channels)
        else:
            beta, mean = np.zeros(channels), ties_with % 2 + 2 * self.rng.integers(-1, 2, channels)
        var = self.rng.uniform(0.5, 2, channels)
        return self.node("BatchNormalization", *(self.const(v) for v in (gamma, beta, mean, var)), epsilon=1e-5)

    def model(self, outputs=None, batch=1):
        outputs = outputs or [(self.x, TensorProto.FLOAT)]
        graph = helper.make_graph(
            self.nodes, "test", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, *self.input_dims])],
            [helper.make_tensor_value_info(name, kind, None) for name, kind in outputs], self.constants)
        return qonnx_make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)])


def run_graph(proto, images, *, map_shape=None, scale=(1, 255)):
    """:func:`interop.execute.execute_graph` with the input scale as a (numerator, denominator) pair."""
    return execute_graph(proto, images, map_shape=map_shape, input_scale=Fraction(*scale))
