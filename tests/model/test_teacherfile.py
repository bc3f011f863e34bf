"""The teacher file: round trip, and a one-line TeacherFileError for every kind of bad file."""

import io
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import teacherfile
from model.datasets import load_dataset
from model.errors import TeacherFileError
from model.teacher import init_teacher, teacher_logits
from model.teacherfile import check_teacher, load_teacher, save_teacher


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _saved_teacher(tmp_path, arch=(64, 8, 10), max_value=16):
    teacher = init_teacher(arch, max_value, np.random.default_rng(0))
    teacher.params["b0"][:] = np.arange(arch[1], dtype=np.float32)   # not all zero: a round trip shows it
    path = tmp_path / "teacher.npz"
    save_teacher(teacher, path)
    return teacher, path


def _entries(path):
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def _rewrite(path, **changes):
    """Save the teacher file at ``path`` again with entries changed (None: removed)."""
    entries = _entries(path)
    entries.update(changes)
    for name in [k for k, v in changes.items() if v is None]:
        del entries[name]
    np.savez(path, **entries)


def test_round_trip(tmp_path, digits):
    teacher, path = _saved_teacher(tmp_path)
    loaded = load_teacher(path)
    assert loaded.arch == teacher.arch and loaded.input_scale == 16
    assert loaded.params.keys() == teacher.params.keys()
    for name in teacher.params:
        assert loaded.params[name].dtype == np.float32
        np.testing.assert_array_equal(loaded.params[name], teacher.params[name])
        assert loaded.params[name].flags.writeable
    check_teacher(loaded, digits)
    np.testing.assert_array_equal(teacher_logits(loaded, digits.test_images),
                                  teacher_logits(teacher, digits.test_images))


def test_the_file_holds_exactly_the_documented_entries(tmp_path):
    _, path = _saved_teacher(tmp_path, arch=(64, 8, 5, 10))
    entries = _entries(path)
    assert sorted(entries) == sorted(["format", "version", "arch", "input_scale", "w0", "b0", "w1", "b1", "w2", "b2"])
    assert str(entries["format"]) == "bnn-teacher" and int(entries["version"]) == 1
    assert entries["arch"].tolist() == [64, 8, 5, 10] and int(entries["input_scale"]) == 16
    assert entries["w1"].shape == (5, 8) and entries["b1"].shape == (5,) and entries["w1"].dtype == np.float32
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


@pytest.mark.parametrize("change, message", [
    ({"format": np.array("something-else")}, "not a teacher file"),
    ({"format": np.array(7)}, "not a teacher file"),
    ({"version": np.array(9)}, "version 9 is not supported"),
    ({"version": np.array("1")}, "version '1' is not supported"),
    ({"w1": None}, "lacks the 'w1' entry"),
    ({"input_scale": None}, "lacks the 'input_scale' entry"),
    ({"w0": np.zeros((8, 63), np.float32)}, "w0 must be float32 of shape (8, 64)"),
    ({"w0": np.zeros((8, 64), np.float64)}, "w0 must be float32 of shape (8, 64), not float64"),
    ({"b0": np.full(8, np.nan, np.float32)}, "b0 holds non-finite values"),
    ({"arch": np.array([64])}, "at least two positive sizes"),
    ({"arch": np.array([64.0, 8.0, 10.0])}, "at least two positive sizes"),
    ({"arch": np.array([64, 0, 10])}, "at least two positive sizes"),
    ({"input_scale": np.array(0)}, "input_scale must be a positive integer"),
    ({"extra": np.zeros(2)}, "unexpected entries: extra"),
])
def test_bad_entries_are_rejected(tmp_path, change, message):
    _, path = _saved_teacher(tmp_path)
    _rewrite(path, **change)
    with pytest.raises(TeacherFileError, match=re.escape(message)) as caught:
        load_teacher(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_missing_and_foreign_files_are_rejected(tmp_path):
    with pytest.raises(TeacherFileError, match="no such teacher file"):
        load_teacher(tmp_path / "absent.npz")
    with pytest.raises(TeacherFileError, match="is a directory"):
        load_teacher(tmp_path)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(TeacherFileError, match=r"not a teacher file \(not an .npz archive\)"):
        load_teacher(text)
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(TeacherFileError, match="not a teacher file"):
        load_teacher(single)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TeacherFileError, match="damaged teacher file"):
        load_teacher(pickled)


def test_reading_is_bounded(tmp_path, monkeypatch):
    _, path = _saved_teacher(tmp_path)
    size = path.stat().st_size
    monkeypatch.setattr(teacherfile, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(TeacherFileError, match="larger than"):
        load_teacher(path)
    # compressed entries that unpack beyond the limit: refused before they are unpacked
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, **_entries(path), extra=np.zeros(1 << 20, np.uint8))
    monkeypatch.setattr(teacherfile, "MAX_FILE_BYTES", bomb.stat().st_size * 4)
    with pytest.raises(TeacherFileError, match="unpack to"):
        load_teacher(bomb)


def test_an_array_larger_than_its_entry_is_refused_before_allocation(tmp_path):
    _, path = _saved_teacher(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("huge.npy", header.getvalue() + bytes(16))
    with pytest.raises(TeacherFileError, match=r"does not fit its \d+-byte entry"):
        load_teacher(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bytes_give_teacher_file_error_and_nothing_else(tmp_path, data):
    _, path = _saved_teacher(tmp_path, arch=(8, 3, 2), max_value=255)
    original = path.read_bytes()
    corrupted = bytearray(original)
    positions = data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=8))
    for position in positions:
        corrupted[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        corrupted = corrupted[:data.draw(st.integers(0, len(corrupted)))]
    path.write_bytes(bytes(corrupted))
    try:
        loaded = load_teacher(path)
    except TeacherFileError as e:
        assert "\n" not in str(e)
    else:   # a change the format cannot see (e.g. in a ZIP comment or a weight): still a valid teacher
        assert loaded.arch == (8, 3, 2)


def test_teacher_must_fit_the_data_set(tmp_path, digits):
    _, path = _saved_teacher(tmp_path, arch=(784, 8, 10))
    with pytest.raises(TeacherFileError, match="does not fit digits"):
        check_teacher(load_teacher(path), digits)
    _, path = _saved_teacher(tmp_path, arch=(64, 8, 10), max_value=255)
    with pytest.raises(TeacherFileError, match="trained on pixels up to 255 but digits pixels reach 16"):
        check_teacher(load_teacher(path), digits)
