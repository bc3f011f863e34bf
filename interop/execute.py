"""qonnx's own execution of a graph on a batch of images: the reference an import is checked against."""

import warnings
from fractions import Fraction

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes


def execute_graph(proto, images, *, map_shape=None, input_scale=Fraction(1, 255)):
    """The outputs (a dict by name) of qonnx's execution of ``proto`` on ``images``, ``(B, size)`` uint8
    pixels, flattened channels innermost as the engine reads them. Pixel ``p`` goes in as
    ``float32(p * numerator) / float32(denominator)`` of ``input_scale``, as an NCHW map when
    ``map_shape`` ``(H, W, C)`` is given; the graph's batch size is set to ``len(images)``."""
    model = type(proto)()
    model.CopyFrom(proto)
    del model.graph.value_info[:]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = len(images)
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    scale = Fraction(input_scale)
    x = np.asarray(images, np.float32) * np.float32(scale.numerator) / np.float32(scale.denominator)
    if map_shape is not None:
        x = x.reshape(len(images), *map_shape).transpose(0, 3, 1, 2)
    x = x.reshape([len(images)] + [d.dim_value for d in dims][1:])
    wrapper = ModelWrapper(model).transform(InferShapes())
    with warnings.catch_warnings():
        # shape inference cannot follow a reshape whose target the graph computes (x.view(x.shape[0], -1));
        # qonnx warns, then runs the node correctly
        warnings.filterwarnings("ignore", "Output shapes disagree", UserWarning)
        return execute_onnx(wrapper, {model.graph.input[0].name: np.ascontiguousarray(x)})
