"""The deployed (folded, integers-only) binary network and its versioned file format.

The format is specified in ``docs/model-format.md``; this module is its one implementation.
Version 1 holds fully connected layers only; version 2 adds binary convolutions and 2 x 2 max-pools
in front of them. :func:`save_model` writes version 1 whenever every layer is fully connected, so a
dense model's file is the same as before version 2 existed; :func:`load_model` reads both.

Semantics
---------
A layer with weights computes, for each output ``j``, the integer pre-activation
``y_j = sum_i x_i * w_ji`` where ``w_ji`` is in {-1,+1} and ``x_i`` is the layer's input:

* first layer, 8-bit input: the raw unsigned pixel value, 0..255;
* first layer, 1-bit input: +1 if ``pixel >= input.threshold`` else -1;
* later layers: the previous layer's activation, in {-1,+1}.

A fully connected layer's ``x`` is its whole input (a feature map flattened with channels
innermost, :mod:`model.layers`); a convolution's ``x`` is the ``kernel x kernel x in_channels``
window under one output pixel, in ``(ky, kx, c)`` order, and ``j`` is the output channel. A hidden
layer outputs +1 where ``y_j >= thresholds[j]`` and -1 otherwise (a convolution's thresholds are
per output channel). A 2 x 2 max-pool outputs +1 where any of its four inputs is +1. The last
layer is fully connected and has no thresholds: its ``y`` are the class scores, and the class is
the argmax, ties to the lowest index.
"""

import json
import struct
import zlib
from dataclasses import dataclass, field, replace
from math import prod

import numpy as np

from .bits import packed_bytes, pad_bits_are_zero
from .errors import ModelFileError
from .fileio import read_bounded, write_atomically
from .layers import Conv, Dense, MaxPool, arch_string, layer_shapes

MAGIC = b"BNNMODEL"
DENSE_VERSION = 1   # fully connected layers only
CONV_VERSION = 2    # adds convolutions and max-pools
_PREFIX = struct.Struct("<8sII")  # magic, version, header length
MAX_HEADER_BYTES = 1 << 20
# The largest model file read: 512 Mbit of weights, far beyond any FPGA this project targets.
MAX_FILE_BYTES = 1 << 26


@dataclass(frozen=True)
class InputEncoding:
    """How the first layer sees a pixel: ``bits`` is 8 (raw 0..255) or 1 (binarized).

    ``shape`` is the image's shape, ``size`` its number of pixels. A model whose first layer is a
    convolution reads the image as a feature map: ``shape`` is ``(H, W)`` (one channel) or
    ``(H, W, C)``, pixels flattened channels innermost. For a fully connected first layer the
    shape is for display only.
    """

    bits: int
    size: int
    shape: tuple
    threshold: int | None = None

    @property
    def max_value(self):
        """Largest magnitude of one input value as the first layer sees it."""
        return 255 if self.bits == 8 else 1

    @property
    def map_shape(self):
        """The image as a feature map ``(H, W, C)``, or None if ``shape`` is not ``(H, W)`` or ``(H, W, C)``."""
        if len(self.shape) == 2:
            return (*self.shape, 1)
        return tuple(self.shape) if len(self.shape) == 3 else None


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

    @property
    def spec(self):
        return Dense(self.fan_out)

    @property
    def out_shape(self):
        return (self.fan_out,)

    @property
    def weights_shape(self):
        return (self.fan_out, packed_bytes(self.fan_in))


@dataclass(frozen=True)
class ConvLayer:
    """One binary 2-D convolution: ``kernel`` x ``kernel``, stride 1, no padding, always hidden.

    ``in_shape`` is the ``(H, W, C_in)`` map it reads; it writes ``out_shape``,
    ``(H - kernel + 1, W - kernel + 1, out_channels)``. ``weights`` is
    ``(out_channels, ceil(fan_in/8))`` uint8 with ``fan_in = kernel * kernel * C_in``: row ``o`` is
    output channel ``o``'s kernel in ``(ky, kx, c_in)`` order (``c_in`` innermost), packed as in
    :mod:`model.bits`. ``thresholds`` is ``(out_channels,)`` int32, one per output channel.
    """

    in_shape: tuple
    kernel: int
    out_channels: int
    weights: np.ndarray
    thresholds: np.ndarray

    @property
    def fan_in(self):
        """Inputs of one output value: the window's ``kernel * kernel * C_in`` values."""
        return self.kernel * self.kernel * self.in_shape[2]

    @property
    def spec(self):
        return Conv(self.out_channels, self.kernel)

    @property
    def out_shape(self):
        height, width, _ = self.in_shape
        return (height - self.kernel + 1, width - self.kernel + 1, self.out_channels)

    @property
    def weights_shape(self):
        return (self.out_channels, packed_bytes(self.fan_in))


@dataclass(frozen=True)
class MaxPoolLayer:
    """A 2 x 2 max-pool with stride 2 over an ``(H, W, C)`` map: +1 where any of the four inputs is
    +1; an odd last row or column is dropped, so it writes ``(H // 2, W // 2, C)``. No weights."""

    in_shape: tuple

    @property
    def spec(self):
        return MaxPool()

    @property
    def out_shape(self):
        height, width, channels = self.in_shape
        return (height // 2, width // 2, channels)


@dataclass(frozen=True)
class BinaryModel:
    """A deployed network: its input encoding, its layers in order, and free-form metadata.

    ``layers`` holds :class:`ConvLayer` and :class:`MaxPoolLayer` (each max-pool directly after a
    convolution) followed by :class:`BinaryLayer`; the last layer is a :class:`BinaryLayer`
    without thresholds. A model of :class:`BinaryLayer` only (:attr:`is_dense`) is what the
    fully connected engine and version 1 files hold.
    """

    input: InputEncoding
    layers: tuple
    metadata: dict = field(default_factory=dict)

    @property
    def is_dense(self):
        """True if every layer is fully connected (no convolution, no max-pool)."""
        return all(isinstance(layer, BinaryLayer) for layer in self.layers)

    @property
    def classes(self):
        return self.layers[-1].fan_out

    @property
    def layer_input_shape(self):
        """The shape the first layer reads: ``input.map_shape`` before a convolution, else ``(input.size,)``."""
        if self.is_dense or self.input.map_shape is None:
            return (self.input.size,)
        return self.input.map_shape

    @property
    def arch(self):
        """The architecture as a string, e.g. ``"64-256-256-10"`` or ``"28x28-c32k3-p-256-10"``."""
        return arch_string(self.layer_input_shape, [layer.spec for layer in self.layers])

    def preactivation_bound(self, index):
        """Largest ``|y|`` layer ``index`` (a layer with weights) can produce."""
        x_max = self.input.max_value if index == 0 else 1
        return self.layers[index].fan_in * x_max

    def validate(self):
        """Check every invariant of the format; raise :class:`ModelFileError` naming the first broken one."""
        self._validate_shapes()
        for k, layer in enumerate(self.layers):
            if not isinstance(layer, MaxPoolLayer):
                self._validate_parameters(k, layer)
        return self

    def _validate_shapes(self):
        """Every invariant that does not involve weights or thresholds (a model file's header)."""
        enc = self.input
        if enc.bits not in (1, 8):
            raise ModelFileError(f"input bits must be 1 or 8, not {enc.bits!r}")
        if enc.size < 1 or prod(enc.shape) != enc.size:
            raise ModelFileError(f"input shape {list(enc.shape)} does not hold {enc.size} values")
        if enc.bits == 1 and (enc.threshold is None or not 0 <= enc.threshold <= 256):
            raise ModelFileError(f"1-bit input needs a threshold in 0..256, not {enc.threshold!r}")
        if enc.bits == 8 and enc.threshold is not None:
            raise ModelFileError("8-bit input takes no threshold")
        if not all(isinstance(layer, (BinaryLayer, ConvLayer, MaxPoolLayer)) for layer in self.layers):
            raise ModelFileError("layers must be BinaryLayer, ConvLayer or MaxPoolLayer")
        shapes = layer_shapes(self.layer_input_shape, [layer.spec for layer in self.layers])
        for k, (layer, feeding) in enumerate(zip(self.layers, [self.layer_input_shape] + shapes)):
            if isinstance(layer, BinaryLayer):
                if layer.fan_in != prod(feeding):
                    described = "" if len(feeding) == 1 else f" ({' x '.join(map(str, feeding))} map)"
                    raise ModelFileError(f"layer {k}: fan-in {layer.fan_in} does not match "
                                         f"the {prod(feeding)} values{described} feeding it")
            elif tuple(layer.in_shape) != feeding:
                raise ModelFileError(f"layer {k} ({layer.spec}): input shape {list(layer.in_shape)} "
                                     f"does not match the {list(feeding)} map feeding it")
        if self.classes < 2:
            raise ModelFileError(f"layer {len(self.layers) - 1}: the output layer needs at least 2 classes")

    def _validate_parameters(self, k, layer):
        where = f"layer {k}"
        shape = layer.weights_shape
        if not isinstance(layer.weights, np.ndarray) or layer.weights.dtype != np.uint8 or layer.weights.shape != shape:
            raise ModelFileError(f"{where}: weights must be uint8 of shape {shape}")
        if not pad_bits_are_zero(layer.weights, layer.fan_in):
            raise ModelFileError(f"{where}: weight pad bits beyond fan-in {layer.fan_in} must be 0")
        if k == len(self.layers) - 1:
            if layer.thresholds is not None:
                raise ModelFileError(f"{where}: the output layer takes no thresholds")
            return
        t = layer.thresholds
        if not isinstance(t, np.ndarray) or t.dtype != np.int32 or t.shape != shape[:1]:
            raise ModelFileError(f"{where}: thresholds must be int32 of shape ({shape[0]},)")
        bound = self.preactivation_bound(k)
        if t.min() < -bound or t.max() > bound + 1:
            raise ModelFileError(
                f"{where}: thresholds must lie in [{-bound}, {bound + 1}], found [{t.min()}, {t.max()}]")


def file_version(model):
    """The version :func:`save_model` writes: 1 if every layer is fully connected, else 2."""
    return DENSE_VERSION if model.is_dense else CONV_VERSION


def _layer_entry(layer, version):
    """A layer's entry in the header's ``layers`` list."""
    if isinstance(layer, BinaryLayer):
        entry = {"fan_in": layer.fan_in, "fan_out": layer.fan_out}
        return entry if version == DENSE_VERSION else {"kind": "dense", **entry}
    if isinstance(layer, ConvLayer):
        return {"kind": "conv", "in_shape": list(layer.in_shape), "kernel": layer.kernel,
                "out_channels": layer.out_channels}
    return {"kind": "maxpool", "in_shape": list(layer.in_shape)}


def save_model(model, path):
    """Validate ``model`` and write it to ``path`` (version :func:`file_version`), all or nothing
    (:func:`model.fileio.write_atomically`)."""
    model.validate()
    version = file_version(model)
    chunks = []
    for layer in model.layers:
        if isinstance(layer, MaxPoolLayer):
            continue
        chunks.append(np.ascontiguousarray(layer.weights).tobytes())
        if layer.thresholds is not None:
            chunks.append(layer.thresholds.astype("<i4").tobytes())
    payload = b"".join(chunks)
    header = {
        "input": {"bits": model.input.bits, "size": model.input.size, "shape": list(model.input.shape),
                  "threshold": model.input.threshold},
        "layers": [_layer_entry(layer, version) for layer in model.layers],
        "classes": model.classes,
        "payload_bytes": len(payload),
        "payload_crc32": zlib.crc32(payload),
        "metadata": model.metadata,
    }
    header_bytes = json.dumps(header, indent=1, sort_keys=True).encode()

    def write(f):
        f.write(_PREFIX.pack(MAGIC, version, len(header_bytes)))
        f.write(header_bytes)
        f.write(payload)

    write_atomically(path, write)


def _check_keys(mapping, keys, where):
    """``mapping`` must be a JSON object with exactly ``keys``: none missing, none unknown."""
    if not isinstance(mapping, dict):
        raise ModelFileError(f"model header: {where} must be a JSON object, not {mapping!r}")
    missing, unknown = sorted(set(keys) - set(mapping)), sorted(set(mapping) - set(keys))
    if missing:
        raise ModelFileError(f"model header: {where} lacks '{missing[0]}'")
    if unknown:
        raise ModelFileError(f"model header: {where} has unknown key '{unknown[0]}'")


def _integer(mapping, key, where):
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(f"model header: {where}.{key} must be an integer, not {value!r}")
    return value


def _shape(mapping, key, where, rank=None):
    """A list of positive integers (of ``rank`` of them, if given) as a tuple."""
    value = mapping[key]
    if (not isinstance(value, list) or (rank is not None and len(value) != rank)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)):
        count = "" if rank is None else f"{rank} "
        raise ModelFileError(f"model header: {where}.{key} must be a list of {count}positive integers, not {value!r}")
    return tuple(value)


_LAYER_KEYS = {"dense": {"fan_in", "fan_out"}, "conv": {"in_shape", "kernel", "out_channels"},
               "maxpool": {"in_shape"}}


def _parse_layer(entry, version, where):
    """A layer without weights or thresholds from its header entry."""
    if not isinstance(entry, dict):
        raise ModelFileError(f"model header: {where} must be a JSON object, not {entry!r}")
    kind, keys = "dense", _LAYER_KEYS["dense"]
    if version == CONV_VERSION:
        if "kind" not in entry:
            raise ModelFileError(f"model header: {where} lacks 'kind'")
        kind = entry["kind"]
        if not isinstance(kind, str) or kind not in _LAYER_KEYS:
            raise ModelFileError(f"model header: {where}.kind must be one of {sorted(_LAYER_KEYS)}, not {kind!r}")
        keys = _LAYER_KEYS[kind] | {"kind"}
    elif "kind" in entry:
        kind = entry["kind"]
        if kind != "dense":
            raise ModelFileError(f"model header: {where} is a {kind!r} layer, which needs format version "
                                 f"{CONV_VERSION}; version {DENSE_VERSION} holds fully connected layers only")
        raise ModelFileError(f"model header: {where} has unknown key 'kind' (version {DENSE_VERSION} layers have "
                             f"none; it came with version {CONV_VERSION})")
    _check_keys(entry, keys, where)
    if kind == "dense":
        return BinaryLayer(_integer(entry, "fan_in", where), _integer(entry, "fan_out", where), None, None)
    in_shape = _shape(entry, "in_shape", where, rank=3)
    if kind == "conv":
        return ConvLayer(in_shape, _integer(entry, "kernel", where), _integer(entry, "out_channels", where),
                         None, None)
    return MaxPoolLayer(in_shape)


def load_model(path):
    """Read and fully validate a model file; raise :class:`ModelFileError` with a one-line reason."""
    data = read_bounded(path, MAX_FILE_BYTES, ModelFileError, "model file")
    try:
        return parse_model(data)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def parse_model(data):
    """Parse the bytes of a model file (see :func:`load_model`)."""
    if len(data) < _PREFIX.size or data[:8] != MAGIC:
        raise ModelFileError("not a BNN model file (bad magic number)")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version not in (DENSE_VERSION, CONV_VERSION):
        raise ModelFileError(f"model format version {version} is not supported "
                             f"(this tool reads versions {DENSE_VERSION} and {CONV_VERSION})")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(data):
        raise ModelFileError("truncated model file (header)")
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"model header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ModelFileError("model header must be a JSON object")
    payload = data[_PREFIX.size + header_len:]

    _check_keys(header, {"classes", "input", "layers", "metadata", "payload_bytes", "payload_crc32"}, "header")
    enc = header["input"]
    _check_keys(enc, {"bits", "shape", "size", "threshold"}, "input")
    threshold = enc["threshold"]
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)):
        raise ModelFileError(f"model header: input.threshold must be an integer or null, not {threshold!r}")
    encoding = InputEncoding(_integer(enc, "bits", "input"), _integer(enc, "size", "input"),
                             _shape(enc, "shape", "input"), threshold)
    if not isinstance(header["layers"], list):
        raise ModelFileError(f"model header: header.layers must be a list, not {header['layers']!r}")
    skeleton = BinaryModel(encoding, tuple(_parse_layer(entry, version, f"layers[{k}]")
                                           for k, entry in enumerate(header["layers"])))
    skeleton._validate_shapes()
    classes = _integer(header, "classes", "header")
    if classes != skeleton.classes:
        raise ModelFileError(f"header says {classes} classes but the last layer has {skeleton.classes} neurons")
    metadata = header["metadata"]
    if not isinstance(metadata, dict):
        raise ModelFileError("model header: metadata must be a JSON object")

    last = len(skeleton.layers) - 1
    sizes = [(0, 0) if isinstance(layer, MaxPoolLayer) else
             (prod(layer.weights_shape), 0 if k == last else 4 * layer.weights_shape[0])
             for k, layer in enumerate(skeleton.layers)]
    expected = sum(w + t for w, t in sizes)
    declared = _integer(header, "payload_bytes", "header")
    if declared != expected:
        raise ModelFileError(f"header declares {declared} payload bytes but the layers need {expected}")
    if len(payload) < expected:
        raise ModelFileError(f"truncated model file: payload has {len(payload)} of {expected} bytes")
    if len(payload) > expected:
        raise ModelFileError(f"model file has {len(payload) - expected} unexpected bytes after the payload")
    if zlib.crc32(payload) != _integer(header, "payload_crc32", "header"):
        raise ModelFileError("payload checksum mismatch (file corrupted)")

    layers, offset = [], 0
    for layer, (w_size, t_size) in zip(skeleton.layers, sizes):
        if isinstance(layer, MaxPoolLayer):
            layers.append(layer)
            continue
        weights = np.frombuffer(payload, np.uint8, w_size, offset).reshape(layer.weights_shape).copy()
        offset += w_size
        thresholds = None
        if t_size:
            thresholds = np.frombuffer(payload, "<i4", t_size // 4, offset).astype(np.int32)
            offset += t_size
        layers.append(replace(layer, weights=weights, thresholds=thresholds))
    return BinaryModel(encoding, tuple(layers), metadata).validate()
