"""The CXXRTL back end: runs a :class:`sim.stimulus.RunSpec` on the engine compiled to C++.

Same contract as :func:`sim.amaranth_backend.run_amaranth` (the rules are in
:mod:`sim.stimulus`, and the driver in :mod:`sim.cxxrtl` follows them cycle for cycle); Python
crosses into the compiled model once per batch of up to :data:`BATCH_FRAMES` results.
"""

import time

from hw.engine import Engine
from model.errors import SimulationTimeout

from .cxxrtl import StreamSimulator, pack_tokens
from .cxxrtl_build import build_library, convert_stream_design
from .stimulus import RunRecord

BATCH_FRAMES = 64


def build_engine(compiled, *, vcd=False, cache=None):
    """Compile (or load from the cache) the engine of ``compiled``; return a
    :class:`sim.cxxrtl_build.CxxrtlLibrary`. ``vcd`` builds the variant that can write waveforms."""
    design = convert_stream_design(Engine(compiled), input_port="pixels", output_port="results")
    return build_library(design, vcd=vcd, cache=cache)


class _Run:
    """One run in progress: the simulator, the packed beats and what has been recorded."""

    def __init__(self, simulator, spec, on_result):
        self.simulator = simulator
        self.spec = spec
        self.on_result = on_result
        self.beats = pack_tokens(spec.beats, simulator.model.input_width)
        self.input_cycles = []
        self.outputs = []

    def advance(self, *, results, beats=None):
        """Simulate until ``results`` results have been recorded or, if given, ``beats`` beats
        taken. Raises :class:`SimulationTimeout` when the cycle budget runs out first."""
        while len(self.outputs) < results and (beats is None or len(self.input_cycles) < beats):
            budget = self.spec.max_cycles - self.simulator.cycle
            if budget <= 0:
                raise SimulationTimeout(len(self.outputs), self.spec.frames, self.spec.max_cycles)
            taken = len(self.input_cycles)
            batch = self.simulator.run(
                self.beats[taken:], max_cycles=budget,
                stop_consumed=None if beats is None else beats - taken,
                max_outputs=min(BATCH_FRAMES, results - len(self.outputs)))
            self.input_cycles += batch.in_cycles.tolist()
            for cycle, payload in zip(batch.out_cycles.tolist(), batch.out_payloads):
                self.outputs.append((cycle, int(payload)))
                self.on_result()


def _vcd_window(spec, vcd_frames):
    """The trace's first beat and the number of results at which it ends, for frames
    ``vcd_frames = (first, stop)`` (None: all); raises ValueError if they are not in the run."""
    if vcd_frames is None:
        return 0, spec.frames
    first, stop = vcd_frames
    if not 0 <= first < stop <= spec.frames:
        raise ValueError(f"VCD frame range must lie within 0..{spec.frames}, not {vcd_frames!r}")
    return first * (len(spec.beats) // spec.frames), stop


def run_cxxrtl(compiled, spec, *, design=None, vcd_path=None, vcd_frames=None, on_result=lambda: None,
               on_build=lambda model: None, cache=None):
    """Simulate ``spec`` on the engine of ``compiled`` compiled with CXXRTL; return a
    :class:`sim.stimulus.RunRecord` equal, cycle for cycle, to Amaranth's.

    ``design`` is the :class:`sim.cxxrtl_build.StreamDesign` simulated instead of the engine's own
    RTLIL: the engine's netlist after synthesis (:mod:`sim.netlist`).

    ``vcd_path`` writes a VCD trace of the frames ``vcd_frames = (first, stop)`` (default: all):
    from the cycle after the last beat of frame ``first - 1`` is taken to the transfer of the
    result of frame ``stop - 1``. ``on_result`` is called once per result, ``on_build`` once
    with the :class:`sim.cxxrtl_build.CxxrtlLibrary` (built or cached). ``cache`` is the compile cache
    directory (default :func:`sim.cxxrtl_build.cache_dir`). ``seconds`` of the record counts the
    simulation only, not the build.
    """
    if vcd_path is not None:
        first_beat, stop = _vcd_window(spec, vcd_frames)
    if design is None:
        model = build_engine(compiled, vcd=vcd_path is not None, cache=cache)
    else:
        model = build_library(design, vcd=vcd_path is not None, cache=cache)
    on_build(model)
    with StreamSimulator(model) as simulator:
        simulator.set_patterns(spec.valid_pattern, spec.ready_pattern)
        run = _Run(simulator, spec, on_result)
        start = time.perf_counter()
        if vcd_path is not None:
            simulator.open_vcd(vcd_path)
            run.advance(results=spec.frames, beats=first_beat)
            simulator.record_vcd(True)
            run.advance(results=stop)
            simulator.record_vcd(False)
        run.advance(results=spec.frames)
        seconds = time.perf_counter() - start
    return RunRecord(run.input_cycles, run.outputs, seconds)
