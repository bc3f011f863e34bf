"""Inputs that cannot be meant get a one-line refusal at once (issue 9): sizes, seeds, unbounded files;
a model file is written whole or not at all."""

import os
import stat

import pytest

import model.fileio
import model.modelfile
from bnn.cli import main
from model.errors import ModelFileError, OutputFileError
from model.modelfile import load_model, save_model
from model.random_models import random_model


def _one_line_error(capsys, argv, status):
    assert main(argv) == status if status == 1 else pytest.raises(SystemExit, main, argv).value.code == status
    error = capsys.readouterr().err.strip()
    assert error and "Traceback" not in error
    return error.splitlines()[-1]


@pytest.fixture
def model_file(tmp_path):
    model = random_model([64, 12, 10], seed=1)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return str(path)


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", "-1"], "must be at least 0, not -1"),
    (["sim", "--tree-stages", "1000"], "must be at most 16, not 1000"),
    (["sim", "--tree-stages", "-1"], "must be at least 0, not -1"),
    (["sim", "--gather-rows", "9"], "must be at most 8, not 9"),
    (["sim", "--gather-rows", "0"], "must be at least 1, not 0"),
    (["build", "--board", "icebreaker", "--seed", "-3"], "must be at least 0, not -3"),
    (["train", "--out", ""], "an empty path names nothing"),
    (["build", "--board", "icebreaker", "--out", " "], "an empty path names nothing"),
])
def test_arguments_out_of_bounds_are_refused_by_the_parser(capsys, model_file, argv, message):
    argv = argv + (["--model", model_file] if argv[0] != "train" else [])
    assert message in _one_line_error(capsys, argv, 2)


def test_an_engine_of_more_lanes_than_meant_is_refused_at_once(capsys, model_file):
    error = _one_line_error(capsys, ["sim", "--model", model_file, "--pe", "4096", "--simd", "4096"], 1)
    assert "4096 x 4096 = 16777216 lanes; at most 4096" in error


def test_a_model_file_is_read_with_a_size_limit(capsys, tmp_path, monkeypatch):
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model("/dev/zero")                      # would never end
    assert "/dev/zero: larger than" in _one_line_error(capsys, ["eval", "--model", "/dev/zero"], 1)
    path = tmp_path / "big.bnn"
    path.write_bytes(b"x" * 100)
    monkeypatch.setattr(model.modelfile, "MAX_FILE_BYTES", 99)
    with pytest.raises(ModelFileError, match="larger than 0 MiB"):
        load_model(path)


def test_a_model_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "m.bnn"
    save_model(random_model([8, 3], seed=1), path)
    before = path.read_bytes()
    def full_disk(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(model.fileio.os, "replace", full_disk)   # the last step fails
    with pytest.raises(OutputFileError, match="m.bnn': No space left on device"):
        save_model(random_model([8, 4], seed=2), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.bnn"]


@pytest.mark.parametrize("argv, message", [
    (["--arch", "64-²-10"], "expected layer sizes joined by '-'"),
    (["--lr", "inf"], "learning rate must be a positive finite number"),
    (["--temperature", "2"], "--temperature and --distill-weight only apply with --teacher"),
    (["--distill-weight", "0.3"], "--temperature and --distill-weight only apply with --teacher"),
    (["--distill-weight", "0.5"], "--temperature and --distill-weight only apply with --teacher"),
    (["--shift", "8"], "--shift 8 moves a 8x8 image out of sight; at most 7"),
    (["--input-bits", "1", "--input-threshold", "0"], "input threshold must lie in 1..16"),
    (["--input-bits", "1", "--input-threshold", "17"], "another value makes every input the same"),
])
def test_training_settings_that_cannot_be_meant_are_refused_before_training(capsys, tmp_path, argv, message):
    error = _one_line_error(capsys, ["train", "--epochs", "1", "--out", str(tmp_path / "m.bnn"), *argv], 1)
    assert message in error and not os.listdir(tmp_path)


def test_a_learning_rate_that_blows_up_stops_training_with_an_error(capsys, tmp_path):
    error = _one_line_error(capsys, ["train", "--epochs", "2", "--lr", "1e300", "--out", str(tmp_path / "m.bnn")], 1)
    assert "learning rate (1e+300) is too high" in error and not os.listdir(tmp_path)


def test_output_locations_are_checked_before_training(capsys, tmp_path, monkeypatch):
    import model.train
    monkeypatch.setattr(model.train, "train_binary", lambda *a, **k: pytest.fail("training ran"))
    assert "it is a folder" in _one_line_error(capsys, ["train", "--out", str(tmp_path)], 1)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot create the folder" in _one_line_error(capsys, ["train", "--out", str(blocker / "m.bnn")], 1)
    assert "cannot create the folder" in _one_line_error(capsys, ["demo", "--out-dir", str(blocker)], 1)


def test_a_build_folder_that_is_a_file_is_refused_before_any_tool(capsys, model_file, tmp_path, monkeypatch):
    import hw.build
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["build", "--board", "icebreaker", "--model", model_file, "--pe", "2", "--simd", "8", "--out", str(blocker)]
    assert f"cannot build in {str(blocker)!r}: it is a regular file, not a folder" in _one_line_error(capsys, argv, 1)


def test_absurd_memory_sizes_are_refused_by_the_parser(capsys, model_file):
    error = _one_line_error(capsys, ["sim", "--model", model_file, "--memory", "weight_depth=99999999999"], 2)
    assert "N in 1..1048576" in error


def test_an_unwritable_vcd_path_is_one_line(capsys, model_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    error = _one_line_error(capsys, ["sim", "--model", model_file, "--count", "1", "--vcd", str(blocker / "x.vcd")], 1)
    assert "cannot create the folder" in error
    error = _one_line_error(capsys, ["sim", "--model", model_file, "--count", "1", "--vcd", str(tmp_path)], 1)
    assert "it is a folder" in error


def test_outputs_never_replace_what_is_not_a_regular_file(capsys, model_file, tmp_path, monkeypatch):
    """Issue 20: an output is renamed onto its path, so `--out /dev/null` as root replaced /dev/null.
    A device, a named pipe or a folder is refused before any work, and stays what it was."""
    import bnn.cmd_sim
    import hw.build
    import model.train
    monkeypatch.setattr(model.train, "train_binary", lambda *a, **k: pytest.fail("training ran"))
    monkeypatch.setattr(bnn.cmd_sim, "run_engine", lambda *a, **k: pytest.fail("the simulation ran"))
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    (tmp_path / "folder").mkdir()
    sim = ["sim", "--model", model_file, "--count", "1", "--vcd"]
    build = ["build", "--board", "icebreaker", "--model", model_file, "--pe", "2", "--simd", "8", "--out"]
    for argv, path, message in [
            (["train", "--out"], "/dev/null", "it is a character device, not a regular file"),
            (["train", "--out"], str(pipe), "it is a named pipe, not a regular file"),
            (sim, "/dev/full", "it is a character device, not a regular file"),
            (sim, str(pipe), "it is a named pipe, not a regular file"),
            (sim, str(tmp_path / "folder"), "it is a folder, not a regular file"),
            (build, "/dev/null", "it is a character device, not a folder")]:
        error = _one_line_error(capsys, [*argv, path], 1)
        assert error.endswith(f"{path!r}: {message}"), error
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["folder", "m.bnn", "pipe"] and not os.listdir(tmp_path / "folder")


@pytest.mark.needs_cxx
def test_an_unusable_compile_cache_is_one_line(capsys, model_file, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BNN_CACHE_DIR", str(blocker / "cache"))
    error = _one_line_error(capsys, ["sim", "--model", model_file, "--count", "1", "--backend", "cxxrtl"], 1)
    assert "cannot use the compile cache" in error and "BNN_CACHE_DIR" in error


def test_progress_bars_stay_out_of_a_redirected_log(tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "bnn", "train", "--arch", "64-16-10", "--epochs", "2",
                             "--out", str(tmp_path / "m.bnn")], capture_output=True, text=True, check=True)
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr


@pytest.mark.parametrize("extra, message", [
    (["--board", "icebreaker"], "--netlist simulates a build as it was made: drop --board"),
    (["--baud", "115200", "--weights", "bram"], "drop --baud, --weights"),
])
def test_serve_sim_netlist_takes_the_build_as_it_was_made(capsys, tmp_path, extra, message):
    error = _one_line_error(capsys, ["serve-sim", "--netlist", str(tmp_path), "--listen", "127.0.0.1:0", *extra], 1)
    assert message in error


def test_serve_sim_netlist_of_a_folder_without_a_build(capsys, tmp_path):
    error = _one_line_error(capsys, ["serve-sim", "--netlist", str(tmp_path), "--listen", "127.0.0.1:0"], 1)
    assert f"no build.json in {tmp_path}: build first" in error
    (tmp_path / "build.json").write_text('{"board": "icebreaker"}')
    error = _one_line_error(capsys, ["serve-sim", "--netlist", str(tmp_path), "--listen", "127.0.0.1:0"], 1)
    assert "lacks pe, simd, clock_hz" in error and "built by an older bnn, build again" in error


def test_serve_sim_without_a_board_or_netlist(capsys, model_file):
    error = _one_line_error(capsys, ["serve-sim", "--model", model_file, "--listen", "127.0.0.1:0"], 1)
    assert error.endswith("give --board and --model (or --netlist with a `bnn build` folder)")
