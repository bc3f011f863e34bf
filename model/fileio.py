"""Files in and out, safely: checking output locations before the work, writing whole files, and
reading input files with a size limit.

Every file the project writes (model, teacher, training-curve PNG, VCD, JSON, a build's files)
goes through :func:`write_atomically`, so that a full disk, an error or a kill never leaves a
half-written file under its name; :func:`check_output_paths` finds an unwritable location before a
long run starts rather than after it; :func:`check_replaceable`, which both call, keeps an output
from ever replacing what is not a regular file (``--out /dev/null`` run as root would otherwise
put a model file in the place of the system's /dev/null); :func:`read_bounded` reads the model and
teacher files.
"""

import os
import stat
import tempfile

from .errors import OutputFileError

# What a path names, by the test of its mode
_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def path_kind(path):
    """What ``path`` (a string or path-like object; a symbolic link is followed) names, in words:
    "a regular file", "a folder", "a character device", ... ; None if nothing, or nothing that
    can be examined."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def output_error(path, error):
    """The one-line :class:`OutputFileError` for the :class:`OSError` ``error`` met writing ``path``."""
    return OutputFileError(f"cannot write {os.fspath(path)!r}: {error.strerror or error}")


def check_replaceable(path):
    """Raise :class:`OutputFileError` if ``path`` (a string or path-like object) exists and is not a
    regular file: a folder, a device such as /dev/null, a named pipe or a socket (a symbolic link
    is judged by what it points to). An output is written under a temporary name and renamed onto
    its path, which would replace such a thing rather than write into it; so it is refused, with
    what it is, before anything is written. A missing path or a regular file passes, and so does
    a path that cannot be examined (the write then says why it fails).
    """
    kind = path_kind(path)
    if kind not in (None, "a regular file"):
        raise OutputFileError(f"cannot write {os.fspath(path)!r}: it is {kind}, not a regular file")


def check_output_paths(paths):
    """Make sure each of ``paths`` (strings or path-like objects) can be written, before the work that writes it.

    Creates each path's folder if it is missing. Raises :class:`OutputFileError` with a one-line
    reason if a path exists and is not a regular file (:func:`check_replaceable`), its folder
    cannot be created, or a file cannot be created in its folder (tried with a temporary file,
    removed at once). Leaves no file.
    """
    for path in map(os.fspath, paths):
        check_replaceable(path)
        folder = os.path.dirname(path) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise OutputFileError(f"cannot create the folder {folder!r} for {path!r}: {e.strerror}") from None
        try:  # a real file, not os.access: root passes that check for read-only file systems and /proc
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise OutputFileError(f"cannot write {path!r}: the folder {folder!r} takes no files "
                                  f"({e.strerror})") from None


def write_atomically(path, write, *, text=False):
    """Create or replace the file ``path`` (a string or path-like object) with what ``write(file)`` writes,
    all or nothing.

    ``write`` receives a file object open for writing, binary by default or, with ``text=True``,
    text in UTF-8; its return value is ignored. The content goes to the temporary file
    ``<path>.partial-<process id>`` in the same folder, which is flushed to disk and then renamed
    to ``path`` in one step. So ``path`` holds either its previous content (or stays absent) or
    the complete new content: never a part. If anything fails (``write`` raises, the disk is
    full, the process is interrupted), the temporary file is removed and ``path`` is untouched;
    only a process killed outright (SIGKILL, power loss before the rename) can leave the
    temporary file behind, never a partial ``path``.

    A ``path`` that exists and is not a regular file is refused before anything is written
    (:func:`check_replaceable`). An :class:`OSError` (while opening, writing or renaming) becomes
    :class:`OutputFileError` naming ``path`` and the reason (:func:`output_error`); any other
    exception from ``write`` propagates unchanged. The folder of ``path`` must exist (see
    :func:`check_output_paths`).
    """
    path = os.fspath(path)
    check_replaceable(path)
    partial = f"{path}.partial-{os.getpid()}"
    try:
        with open(partial, "w" if text else "wb", encoding="utf-8" if text else None) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException as e:
        if os.path.lexists(partial):
            os.remove(partial)
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise


def read_bounded(path, limit, error, what):
    """The bytes of the file ``path``, at most ``limit`` of them (so a device such as /dev/zero,
    or a wrong file of gigabytes, cannot exhaust memory).

    Raises ``error`` (a :class:`BnnError` class) with a one-line reason naming ``path`` if the
    file is missing, a folder, unreadable, or larger than ``limit``; ``what`` names the kind of
    file expected (e.g. ``"model file"``).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit >> 20} MiB, not a {what}")
    return data
