"""Reaching the optional extra `onnx` (bnn import, bnn export): apart from bnn/common.py, so that the other
commands, and the benches that run them, do not depend on it."""

from model.errors import BnnError


class MissingExtraError(BnnError):
    """A command needs an optional extra that is not installed."""


def qonnx_interop():
    """The module :mod:`interop.qonnx`, or :class:`MissingExtraError` saying how to install the extra it needs."""
    try:
        from interop import qonnx
    except ImportError as e:
        raise MissingExtraError(f"QONNX import and export need the optional extra 'onnx' ({e.name} is missing): "
                                f"pip install '.[onnx]' (or: pip install 'bnn-fpga[onnx]')") from None
    return qonnx
