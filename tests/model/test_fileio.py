"""Output files: written whole or not at all, output locations checked before the work, and never
written over what is not a regular file (issue 20)."""

import errno
import os
import socket
import stat

import numpy as np
import pytest

from model import fileio, train
from model.errors import BnnError
from model.fileio import OutputFileError, check_output_paths, check_replaceable, write_atomically
from model.plot import plot_training_curves
from model.teacher import init_teacher
from model.teacherfile import save_teacher


class Interrupted(Exception):
    """Stands for anything that stops a write half-way."""


def _half_then(failure):
    """A ``write`` that writes some bytes, then raises ``failure``."""
    def write(f):
        f.write(b"half of a file")
        raise failure
    return write


def _full_disk():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_writes_and_replaces_a_file(tmp_path):
    path = tmp_path / "out.bin"
    write_atomically(path, lambda f: f.write(b"first"))
    assert path.read_bytes() == b"first"
    write_atomically(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"
    write_atomically(path, lambda f: f.write("text \u00e9\n"), text=True)
    assert path.read_text(encoding="utf-8") == "text \u00e9\n"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("failure", [Interrupted("stop"), KeyboardInterrupt(), _full_disk()])
@pytest.mark.parametrize("existing", [None, b"the old content"])
def test_a_failed_write_leaves_no_partial_file_and_the_old_one_untouched(tmp_path, failure, existing):
    path = tmp_path / "out.bin"
    if existing is not None:
        path.write_bytes(existing)
    expected = OutputFileError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected):
        write_atomically(path, _half_then(failure))
    assert os.listdir(tmp_path) == ([] if existing is None else ["out.bin"])
    if existing is not None:
        assert path.read_bytes() == existing


def test_a_disk_error_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(OutputFileError) as caught:
        write_atomically(path, _half_then(_full_disk()))
    assert isinstance(caught.value, BnnError)
    assert str(caught.value) == f"cannot write {str(path)!r}: No space left on device"
    with pytest.raises(OutputFileError, match="No such file or directory"):
        write_atomically(tmp_path / "missing" / "out.bin", lambda f: f.write(b"x"))
    with pytest.raises(OutputFileError, match="it is a folder, not a regular file"):
        write_atomically(tmp_path, lambda f: f.write(b"x"))
    assert os.listdir(tmp_path) == []


def _fit_result():
    history = [train.EpochRecord(epoch, 1.0 / epoch, 0.5, 1.2 / epoch, 0.4) for epoch in (1, 2, 3)]
    return train.FitResult(None, history, best_epoch=2, seconds=0.0)


def _write_teacher(path):
    save_teacher(init_teacher((4, 3, 2), 255, np.random.default_rng(0)), path)


def _write_plot(path):
    plot_training_curves(path, "title", _fit_result(), _fit_result())


@pytest.mark.parametrize("write", [_write_teacher, _write_plot], ids=["teacher", "plot"])
def test_the_project_s_files_survive_a_full_disk(tmp_path, monkeypatch, write):
    """Each writer goes through write_atomically: a full disk at the end keeps the previous file."""
    path = tmp_path / "file"
    write(path)
    before = path.read_bytes()
    assert before
    # the disk fills up as the file is flushed: the last moment before the rename
    def fsync(fd):
        raise _full_disk()
    monkeypatch.setattr(fileio.os, "fsync", fsync)
    with pytest.raises(OutputFileError, match="No space left on device"):
        write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["file"]


def test_check_output_paths_creates_folders_and_refuses_what_cannot_be_written(tmp_path):
    check_output_paths([str(tmp_path / "a" / "b" / "m.bnn"), "relative-name-in-the-current-folder.bnn"])
    assert (tmp_path / "a" / "b").is_dir() and not os.listdir(tmp_path / "a" / "b")
    with pytest.raises(OutputFileError, match="it is a folder, not a regular file"):
        check_output_paths([str(tmp_path / "a")])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputFileError, match="cannot create the folder"):
        check_output_paths([str(blocker / "m.bnn")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_check_output_paths_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    with pytest.raises(OutputFileError, match="is not writable"):
        check_output_paths([str(folder / "m.bnn")])


def _special_files(tmp_path):
    """``{kind: path}`` of a named pipe, a socket and a folder in ``tmp_path``."""
    os.mkfifo(tmp_path / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "socket"))
    listener.close()           # the socket file stays
    (tmp_path / "folder").mkdir()
    return {"a named pipe": tmp_path / "pipe", "a socket": tmp_path / "socket", "a folder": tmp_path / "folder"}


def test_what_is_not_a_regular_file_is_never_written_over(tmp_path):
    for kind, path in _special_files(tmp_path).items():
        mode = os.stat(path).st_mode
        message = f"cannot write {str(path)!r}: it is {kind}, not a regular file"
        for write in (lambda: write_atomically(path, lambda f: pytest.fail("written")),
                      lambda: check_output_paths([path])):
            with pytest.raises(OutputFileError) as caught:
                write()
            assert str(caught.value) == message
        assert os.stat(path).st_mode == mode
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "pipe")   # judged by what it points to
    with pytest.raises(OutputFileError, match="it is a named pipe"):
        check_replaceable(link)
    assert sorted(os.listdir(tmp_path)) == ["folder", "link", "pipe", "socket"]
    check_replaceable(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    check_replaceable(tmp_path / "file")


def test_a_device_is_refused_by_what_it_is(tmp_path):
    # only looked at: nothing is written anywhere near /dev/null
    with pytest.raises(OutputFileError) as caught:
        check_replaceable("/dev/null")
    assert str(caught.value) == "cannot write '/dev/null': it is a character device, not a regular file"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
