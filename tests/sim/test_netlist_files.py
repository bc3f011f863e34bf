"""The files sim/netlist.py writes into a build folder (the serial line, the prepared netlist, the
copied cell models): refused before anything is written where one is not a regular file, and never
left half written. Yosys never runs here: each test stops before it, or stands in for it."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from model.errors import OutputFileError
from sim import netlist
from sim.netlist import LINK_NETLIST, NetlistError, netlist_board, prepare_netlist

# the project's own iCE40 cell models, which are copied into the build folder
COPIED = [os.path.basename(entry) for entry in netlist._copied_models("ice40")]


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    """A build folder with a (dummy) link netlist and the build.json of an iCEBreaker; Yosys fails
    the test if it runs."""
    (tmp_path / LINK_NETLIST).write_text("# not read: the tests stop before Yosys\n")
    (tmp_path / "build.json").write_text(json.dumps({
        "board": "icebreaker", "pe": 4, "simd": 32, "clock_hz": 12_000_000, "baud": 115_200, "baud_error": 0.0,
        "uart_divisor": 104, "timeout_cycles": 120_000, "cycles_per_frame": 100, "latency_cycles": 10,
        "weights_in_spram": False}))
    monkeypatch.setattr(netlist.subprocess, "run", lambda *args, **kwargs: pytest.fail("yosys ran"))
    return tmp_path


def written(folder):
    """The names in ``folder`` besides the build's own inputs."""
    return sorted(set(os.listdir(folder)) - {LINK_NETLIST, "build.json"})


@pytest.mark.parametrize("name", ["serial_line.il", "link_sim.il", COPIED[0]])
def test_a_named_pipe_where_a_file_goes_is_refused_before_anything_is_written(build_dir, name):
    os.mkfifo(build_dir / name)
    with pytest.raises(OutputFileError) as error:
        netlist_board(str(build_dir))
    assert str(error.value) == f"cannot write {str(build_dir / name)!r}: it is a named pipe, not a regular file"
    assert os.path.exists(build_dir / name) and written(build_dir) == [name]


def test_a_folder_where_the_prepared_netlist_goes_is_refused_and_kept(build_dir):
    (build_dir / "link_sim.il").mkdir()
    (build_dir / "link_sim.il" / "kept").write_text("")
    with pytest.raises(OutputFileError, match=r"it is a folder, not a regular file$"):
        prepare_netlist(str(build_dir), "ice40", LINK_NETLIST, "bnn_link", "link", "link_sim.il")
    assert os.listdir(build_dir / "link_sim.il") == ["kept"] and written(build_dir) == ["link_sim.il"]


def fake_yosys(build_dir, *, exit_code):
    """A stand-in for Yosys that writes half of its RTLIL output, then the rest unless it fails."""
    def run(argv, **kwargs):
        script = argv[argv.index("-p") + 1]
        output = build_dir / re.search(r"write_rtlil (\S+)", script).group(1)
        output.write_text("module \\top\n")
        if exit_code == 0:
            with open(output, "a") as f:
                f.write("end\n")
        return subprocess.CompletedProcess(argv, exit_code, "", "")
    return run


def test_a_failed_yosys_leaves_neither_the_output_nor_a_part_of_it(build_dir, monkeypatch):
    (build_dir / "link_sim.il").write_text("the previous one\n")
    monkeypatch.setattr(netlist.subprocess, "run", fake_yosys(build_dir, exit_code=1))
    with pytest.raises(NetlistError, match=r"^yosys could not prepare the netlist for simulation \(exit 1\)"):
        prepare_netlist(str(build_dir), "ice40", LINK_NETLIST, "bnn_link", "link", "link_sim.il")
    assert (build_dir / "link_sim.il").read_text() == "the previous one\n"
    assert written(build_dir) == sorted(["link_sim.il", *COPIED])


def test_the_prepared_netlist_and_the_cell_models_are_written_whole(build_dir, monkeypatch):
    monkeypatch.setattr(netlist.subprocess, "run", fake_yosys(build_dir, exit_code=0))
    text = prepare_netlist(str(build_dir), "ice40", LINK_NETLIST, "bnn_link", "link", "link_sim.il")
    assert text == (build_dir / "link_sim.il").read_text() == "module \\top\nend\n"
    assert written(build_dir) == sorted(["link_sim.il", *COPIED])
    for entry in map(Path, netlist._copied_models("ice40")):
        assert (build_dir / entry.name).read_bytes() == entry.read_bytes()
