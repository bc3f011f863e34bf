"""Interchange with the field's tools: QONNX import and export (:mod:`interop.qonnx`).

The optional extra ``onnx`` (``pip install '.[onnx]'``) brings what this package needs: ``onnx`` and
``qonnx``. The core packages never import it; the ``bnn import`` and ``bnn export`` commands do, when
they run.
"""
