"""`bnn demo`: training, exact folding, the simulated engine and a streamed run over a simulated board."""

import json

import pytest

from bnn.cli import main


@pytest.mark.needs_cxx
def test_demo_trains_folds_and_finds_no_mismatch(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1   # one JSON object; what the demo is doing goes to stderr
    report = json.loads(out)
    for status in ("training on the digits set", "running the 450 test images through the simulated 8 x 32 engine",
                   "streaming the test images over the serial line of a simulated icebreaker"):
        assert f"bnn demo: {status}" in err
    training = report["training"]
    assert training["mismatches"] == {"classes": 0, "activations": 0, "thresholds": 0}
    assert training["accuracy"]["folded"] == training["accuracy"]["float"] >= 0.9
    assert (tmp_path / "digits.bnn").exists() and (tmp_path / "digits.png").exists()
    engine = report["engine"]
    assert engine["frames"] == training["counts"]["test"] and engine["mismatches"] == 0
    assert engine["cycles_per_frame"]["measured"] == engine["cycles_per_frame"]["analytic"]
    assert report["seconds"] > 0
    link = report["link"]
    assert link["frames"] == engine["frames"] and link["mismatches"] == 0 and link["failed"] == 0
    assert link["accuracy"] == training["accuracy"]["folded"]   # what bnn eval reports
    assert link["board_frames_per_second"] <= link["link_bound_frames_per_second"]
