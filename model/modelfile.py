"""The deployed (folded, integers-only) binary network and its versioned file format.

The format is specified in ``docs/model-format.md``; this module is its one implementation.

Semantics
---------
Layer ``k`` computes, for each neuron ``j``, the integer pre-activation
``y_j = sum_i x_i * w_ji`` where ``w_ji`` is in {-1,+1} and ``x_i`` is the layer's input:

* first layer, 8-bit input: the raw unsigned pixel value, 0..255;
* first layer, 1-bit input: +1 if ``pixel >= input.threshold`` else -1;
* later layers: the previous layer's activation, in {-1,+1}.

A hidden layer outputs +1 where ``y_j >= thresholds[j]`` and -1 otherwise. The last layer has no
thresholds: its ``y`` are the class scores, and the class is the argmax, ties to the lowest index.
"""

import json
import os
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .bits import packed_bytes, pad_bits_are_zero
from .errors import ModelFileError

MAGIC = b"BNNMODEL"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")  # magic, version, header length
MAX_HEADER_BYTES = 1 << 20
# The largest model file read: 512 Mbit of weights, far beyond any FPGA this project targets.
MAX_FILE_BYTES = 1 << 26


@dataclass(frozen=True)
class InputEncoding:
    """How the first layer sees a pixel: ``bits`` is 8 (raw 0..255) or 1 (binarized)."""

    bits: int
    size: int
    shape: tuple
    threshold: int | None = None

    @property
    def max_value(self):
        """Largest magnitude of one input value as the first layer sees it."""
        return 255 if self.bits == 8 else 1


@dataclass(frozen=True)
class BinaryLayer:
    """One fully connected binary layer.

    ``weights`` is ``(fan_out, ceil(fan_in/8))`` uint8, each row packed as in :mod:`model.bits`.
    ``thresholds`` is ``(fan_out,)`` int32 for a hidden layer, None for the output layer.
    """

    fan_in: int
    fan_out: int
    weights: np.ndarray
    thresholds: np.ndarray | None


@dataclass(frozen=True)
class BinaryModel:
    input: InputEncoding
    layers: tuple
    metadata: dict = field(default_factory=dict)

    @property
    def classes(self):
        return self.layers[-1].fan_out

    @property
    def arch(self):
        """The layer sizes as a string, e.g. ``"64-256-256-10"``."""
        return "-".join(str(n) for n in [self.input.size] + [l.fan_out for l in self.layers])

    def preactivation_bound(self, index):
        """Largest ``|y|`` layer ``index`` can produce."""
        x_max = self.input.max_value if index == 0 else 1
        return self.layers[index].fan_in * x_max

    def validate(self):
        """Check every invariant of the format; raise :class:`ModelFileError` naming the first broken one."""
        enc = self.input
        if enc.bits not in (1, 8):
            raise ModelFileError(f"input bits must be 1 or 8, not {enc.bits!r}")
        if enc.size < 1 or int(np.prod(enc.shape)) != enc.size:
            raise ModelFileError(f"input shape {list(enc.shape)} does not hold {enc.size} values")
        if enc.bits == 1 and (enc.threshold is None or not 0 <= enc.threshold <= 256):
            raise ModelFileError(f"1-bit input needs a threshold in 0..256, not {enc.threshold!r}")
        if enc.bits == 8 and enc.threshold is not None:
            raise ModelFileError("8-bit input takes no threshold")
        if not self.layers:
            raise ModelFileError("a model needs at least one layer")
        expected_in = enc.size
        for k, layer in enumerate(self.layers):
            where = f"layer {k}"
            if layer.fan_in != expected_in:
                raise ModelFileError(f"{where}: fan-in {layer.fan_in} does not match the {expected_in} values feeding it")
            if layer.fan_out < 1:
                raise ModelFileError(f"{where}: fan-out must be at least 1, not {layer.fan_out}")
            shape = (layer.fan_out, packed_bytes(layer.fan_in))
            if not isinstance(layer.weights, np.ndarray) or layer.weights.dtype != np.uint8 or layer.weights.shape != shape:
                raise ModelFileError(f"{where}: weights must be uint8 of shape {shape}")
            if not pad_bits_are_zero(layer.weights, layer.fan_in):
                raise ModelFileError(f"{where}: weight pad bits beyond fan-in {layer.fan_in} must be 0")
            last = k == len(self.layers) - 1
            if last:
                if layer.thresholds is not None:
                    raise ModelFileError(f"{where}: the output layer takes no thresholds")
                if layer.fan_out < 2:
                    raise ModelFileError(f"{where}: the output layer needs at least 2 classes")
            else:
                t = layer.thresholds
                if not isinstance(t, np.ndarray) or t.dtype != np.int32 or t.shape != (layer.fan_out,):
                    raise ModelFileError(f"{where}: thresholds must be int32 of shape ({layer.fan_out},)")
                bound = self.preactivation_bound(k)
                if t.min() < -bound or t.max() > bound + 1:
                    raise ModelFileError(
                        f"{where}: thresholds must lie in [{-bound}, {bound + 1}], found [{t.min()}, {t.max()}]")
            expected_in = layer.fan_out
        return self


def save_model(model, path):
    """Validate ``model`` and write it to ``path``."""
    model.validate()
    chunks = []
    for layer in model.layers:
        chunks.append(np.ascontiguousarray(layer.weights).tobytes())
        if layer.thresholds is not None:
            chunks.append(layer.thresholds.astype("<i4").tobytes())
    payload = b"".join(chunks)
    header = {
        "input": {"bits": model.input.bits, "size": model.input.size, "shape": list(model.input.shape),
                  "threshold": model.input.threshold},
        "layers": [{"fan_in": l.fan_in, "fan_out": l.fan_out} for l in model.layers],
        "classes": model.classes,
        "payload_bytes": len(payload),
        "payload_crc32": zlib.crc32(payload),
        "metadata": model.metadata,
    }
    header_bytes = json.dumps(header, indent=1, sort_keys=True).encode()
    # written to a temporary name beside it, then renamed: a full disk or a kill never leaves a
    # half-written model under the name
    partial = f"{path}.partial-{os.getpid()}"
    try:
        with open(partial, "wb") as f:
            f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
            f.write(header_bytes)
            f.write(payload)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _field(mapping, key, kind, where):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ModelFileError(f"model header: {where} lacks '{key}'")
    value = mapping[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ModelFileError(f"model header: {where}.{key} must be an integer, not {value!r}")
    if kind is list and not isinstance(value, list):
        raise ModelFileError(f"model header: {where}.{key} must be a list, not {value!r}")
    return value


def load_model(path):
    """Read and fully validate a model file; raise :class:`ModelFileError` with a one-line reason."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)   # bounded: a device such as /dev/zero never ends
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, not a model file")
    try:
        return parse_model(data)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def parse_model(data):
    """Parse the bytes of a model file (see :func:`load_model`)."""
    if len(data) < _PREFIX.size or data[:8] != MAGIC:
        raise ModelFileError("not a BNN model file (bad magic number)")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ModelFileError(f"model format version {version} is not supported (this tool reads version {FORMAT_VERSION})")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(data):
        raise ModelFileError("truncated model file (header)")
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"model header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ModelFileError("model header must be a JSON object")
    payload = data[_PREFIX.size + header_len:]

    enc = _field(header, "input", dict, "header")
    bits = _field(enc, "bits", int, "input")
    size = _field(enc, "size", int, "input")
    shape = _field(enc, "shape", list, "input")
    threshold = enc.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)):
        raise ModelFileError(f"model header: input.threshold must be an integer or null, not {threshold!r}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ModelFileError(f"model header: input.shape must be positive integers, not {shape!r}")
    layer_specs = _field(header, "layers", list, "header")
    if not layer_specs:
        raise ModelFileError("a model needs at least one layer")
    dims = []
    for k, spec in enumerate(layer_specs):
        fan_in = _field(spec, "fan_in", int, f"layers[{k}]")
        fan_out = _field(spec, "fan_out", int, f"layers[{k}]")
        if fan_in < 1 or fan_out < 1:
            raise ModelFileError(f"layer {k}: sizes must be positive, not {fan_in}x{fan_out}")
        expected_in = dims[-1][1] if dims else size
        if fan_in != expected_in:
            raise ModelFileError(f"layer {k}: fan-in {fan_in} does not match the {expected_in} values feeding it")
        dims.append((fan_in, fan_out))
    classes = _field(header, "classes", int, "header")
    if classes != dims[-1][1]:
        raise ModelFileError(f"header says {classes} classes but the last layer has {dims[-1][1]} neurons")

    last = len(dims) - 1
    sizes = [(fo * packed_bytes(fi), 0 if k == last else 4 * fo) for k, (fi, fo) in enumerate(dims)]
    expected = sum(w + t for w, t in sizes)
    declared = _field(header, "payload_bytes", int, "header")
    if declared != expected:
        raise ModelFileError(f"header declares {declared} payload bytes but the layers need {expected}")
    if len(payload) < expected:
        raise ModelFileError(f"truncated model file: payload has {len(payload)} of {expected} bytes")
    if len(payload) > expected:
        raise ModelFileError(f"model file has {len(payload) - expected} unexpected bytes after the payload")
    if zlib.crc32(payload) != _field(header, "payload_crc32", int, "header"):
        raise ModelFileError("payload checksum mismatch (file corrupted)")

    layers, offset = [], 0
    for k, ((fan_in, fan_out), (w_size, t_size)) in enumerate(zip(dims, sizes)):
        weights = np.frombuffer(payload, np.uint8, w_size, offset).reshape(fan_out, packed_bytes(fan_in)).copy()
        offset += w_size
        thresholds = None
        if t_size:
            thresholds = np.frombuffer(payload, "<i4", fan_out, offset).astype(np.int32)
            offset += t_size
        layers.append(BinaryLayer(fan_in, fan_out, weights, thresholds))
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError("model header: metadata must be a JSON object")
    model = BinaryModel(InputEncoding(bits, size, tuple(shape), threshold), tuple(layers), metadata)
    return model.validate()
