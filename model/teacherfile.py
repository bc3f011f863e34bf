"""The teacher file: a trained float teacher (:class:`model.teacher.TeacherNetwork`) saved for reuse.

``bnn train --teacher`` saves the teacher it trains as ``<model stem>.teacher.npz``;
``bnn train --teacher PATH`` distils from a saved one instead of training a new one.

Format
------
A NumPy ``.npz`` archive: a ZIP file (entries stored uncompressed as :func:`numpy.savez` writes
them; compressed entries are read too) whose entry ``NAME.npy`` holds the array ``NAME`` in
NumPy's ``.npy`` format, with no pickled objects. It holds exactly these arrays, for a teacher of
``L`` layers:

========================  ==========================================================================
``format``                0-d string array, ``"bnn-teacher"``
``version``               0-d integer array, ``1``
``arch``                  1-d integer array of the ``L + 1 >= 2`` layer sizes, input size first; each >= 1
``input_scale``           0-d integer array >= 1: the largest pixel value of the data set trained on
``w{k}``, ``b{k}``        for ``k = 0 .. L-1``: float32 arrays of shape ``(arch[k+1], arch[k])`` and
                          ``(arch[k+1],)``, all values finite
========================  ==========================================================================

The network they describe: ``x_0 = pixels / input_scale``; ``x_{k+1} = max(0, x_k @ w{k}.T + b{k})``
for ``k < L - 1``; the logits are ``x_{L-1} @ w{L-1}.T + b{L-1}``.

A reader refuses (with :class:`TeacherFileError`) files larger than :data:`MAX_FILE_BYTES`, entries
that unpack to more than that, any other entry, and any other version.
"""

import io
import math
import zipfile
import zlib

import numpy as np

from .errors import TeacherFileError
from .fileio import read_bounded, write_atomically
from .arch import arch_name
from .teacher import TeacherNetwork

TEACHER_FORMAT = "bnn-teacher"
TEACHER_VERSION = 1
# The largest teacher file read: 64 M float32 parameters, far beyond any teacher trained here
# (784-1024-1024-10 takes 7.5 MiB).
MAX_FILE_BYTES = 1 << 28
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# What reading a damaged ZIP archive or .npy entry can raise.
_DAMAGED = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, NotImplementedError, RuntimeError)


def save_teacher(teacher, path):
    """Write ``teacher`` to ``path`` in the format above, atomically (see :func:`model.fileio.write_atomically`)."""
    arrays = {"format": np.array(TEACHER_FORMAT), "version": np.array(TEACHER_VERSION),
              "arch": np.array(teacher.arch, np.int64), "input_scale": np.array(teacher.input_scale, np.int64)}
    for k in range(len(teacher.arch) - 1):
        arrays[f"w{k}"] = np.asarray(teacher.params[f"w{k}"], np.float32)
        arrays[f"b{k}"] = np.asarray(teacher.params[f"b{k}"], np.float32)
    write_atomically(path, lambda f: np.savez(f, **arrays))


def load_teacher(path):
    """Read and check a teacher file; return a :class:`TeacherNetwork`.

    Raises :class:`TeacherFileError` with a one-line reason naming ``path`` if the file is missing,
    unreadable, too large, not a teacher file, or breaks any rule of the format.
    """
    data = read_bounded(path, MAX_FILE_BYTES, TeacherFileError, "teacher file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED:
        raise TeacherFileError(f"{path}: not a teacher file (not an .npz archive)") from None
    try:
        with archive:
            arrays = _read_arrays(archive)
    except _DAMAGED as e:
        raise TeacherFileError(f"{path}: damaged teacher file ({e})") from None
    try:
        return _teacher_from_arrays(arrays)
    except TeacherFileError as e:
        raise TeacherFileError(f"{path}: {e}") from None


def check_teacher(teacher, dataset):
    """Raise :class:`TeacherFileError` unless ``teacher`` takes ``dataset``'s images and predicts its classes."""
    if teacher.arch[0] != dataset.input_size or teacher.arch[-1] != dataset.classes:
        raise TeacherFileError(f"teacher {arch_name(teacher.arch)} does not fit {dataset.name} "
                               f"({dataset.input_size} inputs, {dataset.classes} classes)")
    if teacher.input_scale != dataset.max_value:
        raise TeacherFileError(f"teacher was trained on pixels up to {teacher.input_scale} but "
                               f"{dataset.name} pixels reach {dataset.max_value}")


def _read_arrays(archive):
    """The arrays of the open ``.npz`` ``archive`` (a :class:`zipfile.ZipFile`) by name.

    Raises one of ``_DAMAGED`` if an entry is not a ``.npy`` array or the entries unpack to more
    than :data:`MAX_FILE_BYTES`.
    """
    entries = archive.infolist()
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_FILE_BYTES:
        raise ValueError(f"its entries unpack to {unpacked} bytes, more than {MAX_FILE_BYTES >> 20} MiB")
    arrays = {}
    for entry in entries:
        if not entry.filename.endswith(".npy"):
            raise ValueError(f"entry {entry.filename!r} is not an .npy array")
        with archive.open(entry) as f:
            arrays[entry.filename[:-len(".npy")]] = _read_npy(f, entry.file_size)
    return arrays


def _read_npy(f, size):
    """The array in the seekable ``.npy`` stream ``f`` of ``size`` bytes.

    Its header is checked first: an array declaring more data than the stream holds raises
    :class:`ValueError` before any memory is set aside for it.
    """
    version = np.lib.format.read_magic(f)
    if version not in _NPY_HEADER_READERS:
        raise ValueError(f".npy format version {version} is not supported")
    shape, _, dtype = _NPY_HEADER_READERS[version](f)
    if math.prod(shape) * dtype.itemsize > size:
        raise ValueError(f"an array of shape {shape} and type {dtype} does not fit its {size}-byte entry")
    f.seek(0)
    return np.lib.format.read_array(f, allow_pickle=False)


def _entry(arrays, name):
    if name not in arrays:
        raise TeacherFileError(f"teacher file lacks the '{name}' entry")
    return arrays[name]


def _is_integer_scalar(value):
    return value.shape == () and value.dtype.kind in "iu"


def _teacher_from_arrays(arrays):
    """Check ``arrays`` against the format; return the :class:`TeacherNetwork` they describe."""
    fmt = _entry(arrays, "format")
    if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt) != TEACHER_FORMAT:
        raise TeacherFileError(f"not a teacher file (format {fmt.tolist()!r})")
    version = _entry(arrays, "version")
    if not _is_integer_scalar(version) or int(version) != TEACHER_VERSION:
        raise TeacherFileError(f"teacher format version {version.tolist()!r} is not supported "
                               f"(this tool reads version {TEACHER_VERSION})")
    arch = _entry(arrays, "arch")
    if arch.ndim != 1 or len(arch) < 2 or arch.dtype.kind not in "iu" or arch.min() < 1:
        raise TeacherFileError(f"teacher arch must be at least two positive sizes, not {arch.tolist()}")
    scale = _entry(arrays, "input_scale")
    if not _is_integer_scalar(scale) or int(scale) < 1:
        raise TeacherFileError(f"teacher input_scale must be a positive integer, not {scale.tolist()!r}")
    arch = tuple(int(n) for n in arch)
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(arch[:-1], arch[1:])):
        for name, shape in ((f"w{k}", (fan_out, fan_in)), (f"b{k}", (fan_out,))):
            value = _entry(arrays, name)
            if value.dtype != np.float32 or value.shape != shape:
                raise TeacherFileError(f"teacher {name} must be float32 of shape {shape}, "
                                       f"not {value.dtype} {value.shape}")
            if not np.all(np.isfinite(value)):
                raise TeacherFileError(f"teacher {name} holds non-finite values")
            params[name] = value.copy()   # writable, like a trained teacher's
    unexpected = sorted(set(arrays) - set(params) - {"format", "version", "arch", "input_scale"})
    if unexpected:
        raise TeacherFileError(f"teacher file holds unexpected entries: {', '.join(unexpected)}")
    return TeacherNetwork(arch, int(scale), params)
