"""Reading a QONNX graph's nodes: attributes, constants evaluated as they come, weights as signs and
scales, and the layout operations (Flatten, Reshape, Transpose) applied to an order (:mod:`interop.graph`)."""

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from qonnx.custom_op.registry import getCustomOp

from .graph import QonnxImportError, refuse

_ARITHMETIC = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def attributes(node):
    """The node's attributes as a dict of Python values (strings stay bytes)."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load_graph(source):
    """A copy of the ``onnx.ModelProto`` ``source``, or the one read from the path ``source``."""
    proto = onnx.ModelProto()
    if isinstance(source, onnx.ModelProto):
        proto.CopyFrom(source)
        return proto
    try:
        return onnx.load(str(source))
    except FileNotFoundError:
        raise QonnxImportError(f"{source}: no such file") from None
    except Exception as e:  # onnx raises protobuf's DecodeError, OSError and others
        raise QonnxImportError(f"{source}: not an ONNX model ({type(e).__name__})") from None


def fold(node, constants, graph):
    """Evaluate ``node``, all of whose inputs are in ``constants`` (name to array), into ``constants``:
    weights through their quantizer (qonnx's own code), a reshaped or rescaled constant, a shape
    computed from constants (PyTorch's ``x.view(x.shape[0], -1)``: Shape, Gather, Unsqueeze, Concat;
    the standard operations through ONNX's reference evaluator)."""
    if any(name and name not in constants for name in node.input):
        raise refuse(node, "reads a tensor that no earlier node computes")
    ins = [constants[name] if name else None for name in node.input]
    op, attrs = node.op_type, attributes(node)
    if op == "Constant":
        value = attrs.get("value")
        result = numpy_helper.to_array(value) if value is not None else np.asarray(next(iter(attrs.values())))
    elif op in ("Quant", "BipolarQuant", "MultiThreshold"):
        context = dict(zip(node.input, ins))
        getCustomOp(node).execute_node(context, graph)
        result = context[node.output[0]]
    elif op == "Identity":
        result = ins[0]
    elif op == "Transpose":
        result = np.transpose(ins[0], attrs.get("perm"))
    elif op == "Reshape":
        result = ins[0].reshape([int(ins[0].shape[k]) if d == 0 else int(d) for k, d in enumerate(ins[1])])
    elif op in _ARITHMETIC:
        result = _ARITHMETIC[op](*ins)
    elif op == "Neg":
        result = -ins[0]
    elif not node.domain or node.domain == "ai.onnx":
        try:
            result = ReferenceEvaluator(node).run(None, {name: v for name, v in zip(node.input, ins) if name})[0]
        except Exception as e:  # the reference evaluator raises whatever its operation raises
            raise refuse(node, f"cannot be evaluated on its constants ({type(e).__name__})") from None
    else:
        raise refuse(node, "an operation on constants that the importer does not evaluate")
    constants[node.output[0]] = np.asarray(result)


def reorder(node, order, constants):
    """The order after the layout operation ``node`` (Flatten, Reshape, Transpose or Identity)."""
    op, attrs = node.op_type, attributes(node)
    if op == "Flatten":
        if attrs.get("axis", 1) != 1:
            raise refuse(node, "flattens from an axis other than 1")
        return order.reshape(1, -1)
    if op == "Transpose":
        perm = list(attrs.get("perm", range(order.ndim)[::-1]))
        if perm[0] != 0:
            raise refuse(node, f"moves the batch axis (perm {perm})")
        return order.transpose(perm)
    if op == "Reshape":
        if node.input[1] not in constants:
            raise refuse(node, "its shape is not a constant")
        target = [order.shape[k] if d == 0 else int(d) for k, d in enumerate(constants[node.input[1]])]
        try:
            order = order.reshape(target)
        except ValueError:
            raise refuse(node, f"cannot reshape {list(order.shape)} to {target}") from None
        if order.shape[0] != 1:
            raise refuse(node, f"reshapes into the batch axis ({target})")
    return order


def uniform(array):
    """``array`` reduced to one element (same rank) if all its elements are equal, else None."""
    array = np.asarray(array)
    if array.size and np.all(array == array.flat[0]):
        return array.reshape(-1)[:1].reshape((1,) * array.ndim)
    return None


def binarize(rows, node):
    """``(signs, scales)`` of a weight matrix whose row ``j`` holds only ``-scale_j`` and ``+scale_j``:
    ``signs`` int8 -1/+1, ``scales`` float64 > 0."""
    scales = np.abs(rows).max(axis=1).astype(np.float64)
    if not np.all(np.abs(rows) == scales[:, None]) or not np.all(scales > 0):
        values = np.unique(rows)
        raise refuse(node, f"its weights are not binary (values {values[:4].tolist()}"
                           f"{' ...' if len(values) > 4 else ''}); the engine's weights are -s and +s")
    return np.where(rows > 0, 1, -1).astype(np.int8), scales
