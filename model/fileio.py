"""Files in and out, safely: checking output locations before the work, writing whole files, and
reading input files with a size limit.

Every file the project writes (model, teacher, training-curve PNG, VCD, JSON) goes through
:func:`write_atomically`, so that a full disk, an error or a kill never leaves a half-written file
under its name; :func:`check_output_paths` finds an unwritable location before a long run starts
rather than after it; :func:`read_bounded` reads the model and teacher files.
"""

import os
import tempfile

from .errors import OutputFileError


def check_output_paths(paths):
    """Make sure each of ``paths`` (strings or path-like objects) can be written, before the work that writes it.

    Creates each path's folder if it is missing. Raises :class:`OutputFileError` with a one-line
    reason if a path is an existing folder, its folder cannot be created, or a file cannot be
    created in its folder (tried with a temporary file, removed at once). Leaves no file.
    """
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            raise OutputFileError(f"cannot write {path!r}: it is a folder, not a file name")
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

    An :class:`OSError` (while opening, writing or renaming) becomes :class:`OutputFileError`
    naming ``path`` and the reason; any other exception from ``write`` propagates unchanged. The
    folder of ``path`` must exist (see :func:`check_output_paths`).
    """
    path = os.fspath(path)
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
            raise OutputFileError(f"cannot write {path!r}: {e.strerror or e}") from None
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
