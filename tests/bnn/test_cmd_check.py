"""`bnn check`: every step against a simulated iCEBreaker (`bnn serve-sim`, the RTL), and each step
failing, with its hint, against peers in Python that fail in one way each."""

import dataclasses
import json
import socket
import time

import numpy as np
import pytest

from bnn.cli import main
from bnn.cmd_check import small_model_for_board
from host.payloads import load_requests
from layout.images import memory_images, model_id
from layout.protocol import Command
from model.golden import infer
from model.modelfile import save_model
from model.random_models import random_model
from tests.host.fake_board import FakeBoard, Faults, GarbageBoard, board_identity, serve, serve_busy
from tests.support import serve_sim

STEPS = ["open", "identify", "status_before", "load", "stream", "status_after"]


def _digits_model(path, sizes=(64, 12, 10), seed=6, input_bits=8):
    model = random_model(list(sizes), input_bits=input_bits, seed=seed, input_threshold=8)
    model.metadata["dataset"] = "digits"
    save_model(model, path)
    return model, str(path)


def _check(capsys, *argv):
    """Run `bnn check --json ARGV`: ``(exit status, report, stderr)``."""
    status = main(["check", *argv, "--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def _outcomes(report):
    return {step["name"]: step["ok"] for step in report["steps"]}


def _step(report, name):
    return next(step for step in report["steps"] if step["name"] == name)


# -- against the simulated board


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`bnn serve-sim` of a small model on an iCEBreaker at 2 x 8, on a free port: ``(url, model file)``."""
    folder = tmp_path_factory.mktemp("check")
    _, path = _digits_model(folder / "first.bnn")
    with serve_sim("--board", "icebreaker", "--model", path, "--pe", "2", "--simd", "8") as (url, _):
        yield url, path


@pytest.mark.needs_cxx
def test_every_step_passes_on_the_simulated_board(served, capsys):
    url, _ = served
    assert main(["check", "--port", url, "--frames", "8"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    steps = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[0] for line in steps[:-1]] == ["pass"] * 6 and steps[-1] == "all 6 steps passed"
    assert "8 random frames: 8 answered, 0 mismatches with the golden model, 0 failed, 0 retries" in out
    assert "frames +8 (8 sent), bad_crc +0" in out and "skipped_bytes +0" in out
    assert f"note: the board now holds this test model: load yours again with `bnn load --port {url} " in out
    assert "try:" not in out and err == ""


@pytest.mark.needs_cxx
def test_the_json_report_of_the_simulated_board(served, capsys):
    url, path = served
    status, report, err = _check(capsys, "--port", url, "--frames", "6", "--seed", "3")
    assert status == 0 and err == ""
    assert report["ok"] is True and report["passed"] == 6 and report["port"] == url and report["baud"] == 3_000_000
    assert [step["name"] for step in report["steps"]] == STEPS
    for step in report["steps"]:
        assert set(step) == {"name", "ok", "skipped", "detail", "hint", "note", "values"}
        assert step["ok"] is True and step["skipped"] is False and step["hint"] is None and step["detail"]
    board = report["board"]
    assert (board["pe"], board["simd"], board["input_bits"]) == (2, 8, 8)
    load, stream, after = (_step(report, name)["values"] for name in ("load", "stream", "status_after"))
    assert load["test_model"] is True and load["seed"] == 3 and load["model_id"] == board["model_id"]
    assert stream["frames"] == stream["answered"] == 6 and stream["mismatches"] == stream["failed"] == 0
    assert after["frames_sent"] == after["delta"]["frames"] == 6
    assert all(n == 0 for name, n in after["delta"].items() if name != "frames")

    # the same seed loads the same model again; the user's own model file loads instead with --model
    status, again, _ = _check(capsys, "--port", url, "--frames", "2", "--seed", "3")
    assert status == 0 and _step(again, "load")["values"]["model_id"] == load["model_id"]
    status, own, _ = _check(capsys, "--port", url, "--frames", "4", "--model", path)
    assert status == 0 and _step(own, "load")["note"] is None
    assert _step(own, "load")["values"]["test_model"] is False and _step(own, "load")["values"]["model"] == path


# -- against peers that fail


@pytest.fixture
def model8():
    model = random_model([64, 24, 10], input_bits=8, seed=6)
    model.metadata["dataset"] = "digits"
    return model


def _fake(model8, cls=FakeBoard, identity=None, **kwargs):
    """A fake board for ``model8`` that can also run the test model of seed 0 made for it."""
    identity = identity or board_identity(model8)
    test_model, _ = small_model_for_board(identity, seed=0)
    return cls(identity, [model8, test_model], loaded=model8, **kwargs)


def _free_port():
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_a_fake_board_passes_every_step(model8, capsys):
    with serve(_fake(model8)) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "1", "--frames", "5")
    assert status == 0 and all(_outcomes(report).values())


def test_a_port_with_nothing_listening_fails_to_open(capsys):
    url = f"socket://127.0.0.1:{_free_port()}"
    status, report, err = _check(capsys, "--port", url)
    assert status == 1 and _outcomes(report) == dict(zip(STEPS, [False] + [None] * 5))
    opened = _step(report, "open")
    assert opened["detail"].startswith(f"could not open {url}: ") and "bnn serve-sim" in opened["hint"]
    assert all(step["detail"] == "not run: open failed" for step in report["steps"][1:])
    assert err == "bnn check: failed: open (0 of 6 steps passed, 5 skipped)\n"


def test_a_missing_serial_device_hints_at_listing_the_ports(tmp_path, capsys):
    assert main(["check", "--port", str(tmp_path / "ttyUSB9")]) == 1
    out, _ = capsys.readouterr()
    assert out.startswith(f"FAIL  open           could not open {tmp_path / 'ttyUSB9'}: ")
    assert "try: list the serial ports (python -m serial.tools.list_ports -v" in out
    assert "close any other program that holds this one" in out
    assert out.count("\nskip  ") == 5


def test_a_malformed_socket_url_fails_to_open_saying_what_to_pass(capsys):
    status, report, _ = _check(capsys, "--port", "socket://127.0.0.1:99999")
    opened = _step(report, "open")
    assert status == 1 and opened["detail"] == ("could not open socket://127.0.0.1:99999: the port '99999' is not a "
                                                "number in 1..65535")
    assert opened["hint"] == "pass the address bnn serve-sim prints (listening on HOST:PORT) as socket://HOST:PORT"


def test_a_busy_simulated_board_fails_identify_saying_so(capsys):
    with serve_busy() as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "1")
    identify = _step(report, "identify")
    assert status == 1 and identify["detail"].startswith(f"the simulated board at {url} is serving another client")
    assert identify["hint"].startswith("wait for the other client")


def test_a_silent_peer_is_nothing_heard(model8, tmp_path, capsys):
    (tmp_path / "build.json").write_text(json.dumps({"baud": 115200}))
    with serve(FakeBoard(board_identity(model8), silent=True)) as url:
        start = time.monotonic()
        status, report, _ = _check(capsys, "--port", url, "--timeout", "0.2", "--build", str(tmp_path),
                                   "--baud", "3000000")
        assert time.monotonic() - start < 2
    assert status == 1 and _outcomes(report) == dict(zip(STEPS, [True, False] + [None] * 4))
    identify = _step(report, "identify")
    assert identify["detail"] == "nothing heard within 0.2 s" and identify["values"]["heard"] is False
    assert "is the bitstream programmed" in identify["hint"]
    assert f"the build in {tmp_path} used --baud 115200, not 3000000" in identify["hint"]


def test_the_build_folder_gives_the_baud_rate(model8, tmp_path, capsys):
    (tmp_path / "build.json").write_text(json.dumps({"baud": 115200}))
    with serve(_fake(model8)) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "1", "--frames", "2", "--build", str(tmp_path))
    assert status == 0 and report["baud"] == 115200


def test_a_peer_answering_garbage_is_a_wrong_baud_rate(model8, capsys):
    with serve(GarbageBoard(board_identity(model8))) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "0.2", "--retries", "1")
    assert status == 1 and _outcomes(report)["identify"] is False
    identify = _step(report, "identify")
    assert identify["detail"] == "heard garbage, no answer: 40 bytes outside frames, 0 broken frames"
    assert identify["hint"].startswith("a wrong baud rate: 3000000 is not the bitstream's (bnn build's default")


def test_another_protocol_version_is_another_bitstream_version(model8, capsys):
    identity = dataclasses.replace(board_identity(model8), protocol=3)
    with serve(FakeBoard(identity)) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "1")
    identify = _step(report, "identify")
    assert status == 1 and identify["ok"] is False
    assert identify["detail"] == f"{report['port']} speaks protocol version 3, this host version 4"
    assert "another version of bnn-fpga" in identify["hint"]


class WrongClassBoard(FakeBoard):
    """Computes every frame, and answers the class after the right one."""

    def _infer(self, payload):
        status, classes = super()._infer(payload)
        return status, bytes((c + 1) % 10 for c in classes)


def test_wrong_classes_fail_the_stream_step(model8, capsys):
    with serve(_fake(model8, WrongClassBoard)) as url:
        status, report, err = _check(capsys, "--port", url, "--timeout", "1", "--frames", "6")
    assert status == 1 and _outcomes(report) == dict(zip(STEPS, [True] * 4 + [False, True]))
    stream = _step(report, "stream")
    assert stream["values"]["mismatches"] == 6 and stream["values"]["failed"] == 0
    assert "6 answered, 6 mismatches with the golden model, 0 failed" in stream["detail"]
    assert "differ from the golden model" in stream["hint"] and "bnn build --verify" in stream["hint"]
    assert err.startswith("bnn check: failed: stream (5 of 6 steps passed, 0 skipped)")


def test_lost_frames_fail_the_stream_and_the_counters(model8, capsys):
    identity = board_identity(model8)
    loads = len(load_requests(memory_images(small_model_for_board(identity, seed=0)[1]), identity.memories))
    first = 3 + loads       # IDENTIFY, STATUS, the LOADs, IDENTIFY; then the INFERs
    fake = _fake(model8, faults=Faults({first + 2: "drop", first + 3: "drop"}))   # the third and fourth frames
    with serve(fake) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "0.2", "--frames", "4")
    assert [code for code, _, _ in fake.requests[first:]] == [Command.INFER] * 6 + [Command.STATUS]
    assert status == 1 and _outcomes(report)["stream"] is False and _outcomes(report)["status_after"] is False
    stream, after = _step(report, "stream"), _step(report, "status_after")
    assert stream["values"]["retries"] >= 1 and "USB-serial chip" in stream["hint"]
    sent = after["values"]["frames_sent"]
    assert sent == 6 and after["values"]["delta"]["frames"] == 4
    assert after["hint"].startswith(f"the board computed {after['values']['delta']['frames']} frames of the "
                                    f"{sent} sent: frames were lost on the line")


class NoisyCountersBoard(FakeBoard):
    """Answers right, but counts two framing errors and an overrun per INFER, and a bad CRC once."""

    def _infer(self, payload):
        self.counters["framing_errors"] += 2
        self.counters["overruns"] += 1
        self.counters["bad_crc"] = 1
        return super()._infer(payload)


def test_line_errors_in_the_counters_fail_the_last_step(model8, capsys):
    with serve(_fake(model8, NoisyCountersBoard)) as url:
        status, report, _ = _check(capsys, "--port", url, "--timeout", "1", "--frames", "3")
    assert status == 1 and _outcomes(report) == dict(zip(STEPS, [True] * 5 + [False]))
    after = _step(report, "status_after")
    assert "frames +3 (3 sent), bad_crc +1" in after["detail"] and "framing_errors +6, overruns +3" in after["detail"]
    assert "bad_crc +1: requests arrived corrupted: noise on the line" in after["hint"]
    assert "framing_errors +6: bytes with a broken stop bit: a wrong baud rate" in after["hint"]
    assert "overruns +3: bytes came faster" in after["hint"]


def test_a_model_that_does_not_fit_fails_the_load(model8, tmp_path, capsys):
    _, wide = _digits_model(tmp_path / "wide.bnn", sizes=(64, 300, 10))
    _, binary = _digits_model(tmp_path / "binary.bnn", input_bits=1)
    with serve(_fake(model8)) as url:
        for path, message in ((wide, "the model needs"), (binary, "takes 1-bit input")):
            status, report, _ = _check(capsys, "--port", url, "--timeout", "1", "--model", path)
            assert status == 1 and _outcomes(report) == dict(zip(STEPS, [True] * 3 + [False, None, True]))
            load = _step(report, "load")
            assert message in load["detail"] and f"bnn build --model {path}" in load["hint"]
            assert _step(report, "stream")["detail"] == "not run: load failed"


def test_the_test_model_fits_and_depends_on_the_seed_only(model8):
    binary = random_model([64, 24, 10], input_bits=1, seed=7, input_threshold=8)
    identities = [board_identity(model8), board_identity(model8, pe=2, simd=8, spare=1),
                  board_identity(binary, pe=8, simd=16), board_identity(random_model([64, 10]), spare=1)]
    for identity in identities:
        model, compiled = small_model_for_board(identity, seed=5)
        again, compiled_again = small_model_for_board(identity, seed=5)
        other, compiled_other = small_model_for_board(identity, seed=6)
        assert model.input.bits == identity.input_bits and model.classes == 10
        assert model_id(compiled) == model_id(compiled_again) != model_id(compiled_other)
        images = np.random.default_rng(0).integers(0, 256, (20, model.input.size), dtype=np.uint8)
        assert len(set(infer(model, images).classes.tolist())) >= 3   # the classes vary from frame to frame
    assert small_model_for_board(identities[3], seed=0)[0].arch == "64-10"   # a one-layer board


def test_bad_input_is_one_line(model8, tmp_path, capsys):
    for argv, message in ((["--model", str(tmp_path / "nope.bnn")], "no such model file"),
                          (["--build", str(tmp_path)], f"no build.json in {tmp_path}")):
        assert main(["check", "--port", "socket://127.0.0.1:1", *argv]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("bnn check: error: ") and message in err, err


@pytest.mark.parametrize("argv", [["--frames", "0"], ["--seed", "-1"], ["--timeout", "0"], []])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", *argv] + (["--port", "socket://127.0.0.1:1"] if argv else []))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bnn check: error:")
