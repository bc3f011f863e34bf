"""QONNX import and export: binary networks from Brevitas and FINN, and this project's models to them.

:func:`import_qonnx` reads a QONNX graph (a path or an ``onnx.ModelProto``) into a
:class:`model.modelfile.BinaryModel` whose golden classes equal qonnx's execution of the graph on
every image; :func:`export_qonnx` writes a model as a QONNX graph that qonnx executes to the same
scores. Export then import gives the same model file, byte for byte. What is accepted, how it folds
and what is refused: ``docs/interop.md``. Refusals raise :class:`QonnxImportError` (one line: the
node, its op type and why) before anything is written.
"""

from .graph import QonnxImportError
from .qonnx_export import export_qonnx
from .qonnx_import import DEFAULT_INPUT_SCALE, import_qonnx

__all__ = ["DEFAULT_INPUT_SCALE", "QonnxImportError", "export_qonnx", "import_qonnx"]
