"""What QONNX import and export share: the error, the layout of maps in ONNX, running nodes with qonnx.

Layouts
-------
ONNX stores a map as ``(N, C, H, W)`` ("NCHW"); the project stores it channels innermost, ``(H, W, C)``
(:mod:`model.layers`). Both sides describe a tensor's layout by an *order*: an integer array of the
ONNX tensor's shape (batch of one included) whose element is the index, in the project's flattened
order, of the value held there. Flatten, Reshape and Transpose act on the order as they act on the
tensor, so the importer follows them exactly, and a fully connected layer's weight columns are put in
the project's order by reading the order of the tensor that feeds it.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

from model.errors import BnnError

QONNX_DOMAIN = "qonnx.custom_op.general"
# The graph property that holds what a model file has beyond the graph (its metadata, the image's
# shape, the pixel scale of the graph's input): written by export, read back by import.
PROPERTY = "bnn_fpga"


class QonnxImportError(BnnError):
    """A QONNX graph cannot be read or holds what the engine cannot compute exactly; one line,
    naming the node, its op type and why."""


def refuse(node, why):
    """The :class:`QonnxImportError` for ``node``: ``"node NAME (OP): why"``."""
    return QonnxImportError(f"node {node.name} ({node.op_type}): {why}")


def map_order(shape):
    """The order (module docstring) of an NCHW tensor ``(1, C, H, W)`` holding the ``(H, W, C)`` map ``shape``."""
    height, width, channels = shape
    return np.arange(height * width * channels).reshape(1, height, width, channels).transpose(0, 3, 1, 2)


def vector_order(size):
    """The order of a ``(1, size)`` tensor holding a vector in the project's order."""
    return np.arange(size).reshape(1, size)


def run_nodes(nodes, constants, input_name, values, output_name, opsets):
    """Execute ``nodes`` with qonnx (:func:`qonnx.core.onnx_exec.execute_onnx`, as a user would run
    the graph) on ``values`` fed to the tensor ``input_name``; return the float32 tensor
    ``output_name``. Every other input of the nodes is a constant of ``constants`` (name to array).

    The nodes must keep the shape of ``values`` (elementwise operations and activations)."""
    values = np.asarray(values, np.float32)
    needed = {name for node in nodes for name in node.input if name and name in constants}
    graph = helper.make_graph(
        list(nodes), "evaluate",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, values.shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, values.shape)],
        [numpy_helper.from_array(np.asarray(constants[name]), name) for name in sorted(needed)])
    wrapper = ModelWrapper(qonnx_make_model(graph, opset_imports=list(opsets)))
    wrapper = wrapper.transform(InferShapes())
    return execute_onnx(wrapper, {input_name: values})[output_name]
