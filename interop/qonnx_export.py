""":class:`model.modelfile.BinaryModel` to a QONNX graph that qonnx executes to the same scores.

The graph reads the raw pixels 0..255 as float32 in NCHW (``(1, C, H, W)``; ``(1, size)`` for a
vector), and holds every value the golden model computes, as an exact float32:

* 8-bit input: ``Quant`` (scale 1, zero point 0, 8 bits, unsigned): the pixels themselves;
  1-bit input: ``MultiThreshold`` at ``input.threshold`` to -1/+1;
* each layer's weights: an initializer of -1/+1 through ``BipolarQuant`` (scale 1); a fully
  connected layer is a ``MatMul`` (after a ``Flatten`` of a map, its weight rows in ONNX's
  ``(c, y, x)`` order), a convolution a ``Conv`` (stride 1, no padding);
* a hidden layer's activation: ``MultiThreshold`` at its thresholds (one per output channel),
  ``out_scale`` 2 and ``out_bias`` -1: +1 where ``y >= t``, else -1; a max-pool: ``MaxPool`` 2 x 2;
* the output ``scores``, ``(1, classes)``: the golden model's integer scores.

What the model file holds beyond the graph (metadata, the image's shape) is kept in the graph's
metadata property ``bnn_fpga``, so that :func:`interop.qonnx.import_qonnx` gives the same file back.
"""

import json

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

from model.bits import unpack_signs
from model.modelfile import ConvLayer, MaxPoolLayer

from .graph import PROPERTY, QONNX_DOMAIN, map_order

OPSET = 13


def _input_dims(model):
    """The NCHW dims of the graph's input and its order (:mod:`interop.graph`)."""
    shape = model.input.map_shape
    if shape is None or (model.is_dense and len(model.input.shape) == 1):
        return [1, model.input.size], np.arange(model.input.size).reshape(1, -1)
    return [1, shape[2], shape[0], shape[1]], map_order(shape)


def _threshold(name, data, thresholds, out):
    """A ``MultiThreshold`` node: -1/+1 by ``data >= thresholds`` (one per channel, as ``(C, 1)``)."""
    constant = numpy_helper.from_array(np.asarray(thresholds, np.float32).reshape(-1, 1), f"{name}_thresholds")
    node = helper.make_node("MultiThreshold", [data, constant.name], [out], name=name, domain=QONNX_DOMAIN,
                            out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    return node, constant


def export_qonnx(model):
    """The QONNX ``onnx.ModelProto`` of ``model`` (see the module docstring); its output ``scores``
    equals :func:`model.golden.infer`'s scores for images fed as float32 pixels."""
    dims, order = _input_dims(model)
    nodes, constants = [], [numpy_helper.from_array(np.float32(1.0), "one")]
    data = "image"
    if model.input.bits == 8:
        constants += [numpy_helper.from_array(np.float32(0.0), "zero"),
                      numpy_helper.from_array(np.float32(8.0), "eight")]
        nodes.append(helper.make_node("Quant", [data, "one", "zero", "eight"], ["pixels"], name="input_quant",
                                      domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND"))
    else:
        node, constant = _threshold("input_threshold", data, [model.input.threshold], "pixels")
        nodes.append(node)
        constants.append(constant)
    data = "pixels"
    for k, layer in enumerate(model.layers):
        out = f"layer{k}"
        if isinstance(layer, MaxPoolLayer):
            nodes.append(helper.make_node("MaxPool", [data], [out], name=f"pool{k}", kernel_shape=[2, 2],
                                          strides=[2, 2]))
            data, order = out, map_order(layer.out_shape)
            continue
        signs = unpack_signs(layer.weights, layer.fan_in).astype(np.float32)
        if isinstance(layer, ConvLayer):
            height, width, channels = layer.in_shape
            weights = signs.reshape(len(signs), layer.kernel, layer.kernel, channels).transpose(0, 3, 1, 2)
            op, attrs = "Conv", {"kernel_shape": [layer.kernel] * 2, "strides": [1, 1], "pads": [0] * 4}
        else:
            if order.ndim != 2:
                nodes.append(helper.make_node("Flatten", [data], [f"{out}_flat"], name=f"flatten{k}", axis=1))
                data, order = f"{out}_flat", order.reshape(1, -1)
            weights, op, attrs = np.ascontiguousarray(signs[:, order[0]].T), "MatMul", {}
        constants.append(numpy_helper.from_array(weights, f"w{k}"))
        nodes.append(helper.make_node("BipolarQuant", [f"w{k}", "one"], [f"w{k}_q"], name=f"weight_quant{k}",
                                      domain=QONNX_DOMAIN))
        last = layer.thresholds is None
        nodes.append(helper.make_node(op, [data, f"w{k}_q"], ["scores" if last else f"{out}_y"],
                                      name=f"{op.lower()}{k}", **attrs))
        if last:
            break
        node, constant = _threshold(f"threshold{k}", f"{out}_y", layer.thresholds, out)
        nodes.append(node)
        constants.append(constant)
        data = out
        order = map_order(layer.out_shape) if isinstance(layer, ConvLayer) else np.arange(layer.fan_out).reshape(1, -1)
    graph = helper.make_graph(
        nodes, "bnn_fpga", [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, model.classes])], constants)
    proto = qonnx_make_model(graph, producer_name="bnn-fpga",
                             opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)])
    saved = {"metadata": model.metadata, "input_shape": list(model.input.shape), "input_scale": "1"}
    helper.set_model_props(proto, {PROPERTY: json.dumps(saved, sort_keys=True)})
    wrapper = ModelWrapper(proto).transform(InferShapes())
    wrapper.set_tensor_datatype("image", DataType["UINT8"])
    return wrapper.model
