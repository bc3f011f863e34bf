"""The inference engine: loader, memories, sequencer, P x S PE array, threshold units, argmax.

See ``docs/engine.md`` for the architecture, the memory layouts and the cycle formula.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .argmax import Argmax
from .loader import InputLoader, input_address, input_config, input_config_layout, pixel_layout
from .pe import ProcessingElementArray
from .sequencer import Sequencer, command_layout


# Yosys attributes of the engine's memories: block RAM even when small (a ROM of thresholds would
# otherwise become logic), and no read/write collision logic: reads and writes of the same memory
# never target the same bank at a time when the read data is used (see docs/engine.md).
BLOCK_RAM = {"ram_style": "block", "no_rw_check": 1}


def result_layout(params):
    """Payload of the output stream: the class and the ``score_count`` scores (pad ones last)."""
    return data.StructLayout({
        "cls": range(max(params.score_count, 2)),
        "scores": data.ArrayLayout(signed(params.acc_width), params.score_count),
    })


def network_layout(params):
    """The network's numbers outside the descriptor table: where an input frame ends, the 1-bit
    input threshold, and the number of classes."""
    return data.StructLayout({"input": input_config_layout(params), "classes": range(params.score_count + 1)})


def bank_bits(words):
    """Address bits of one bank of ``words`` words; bank ``b`` starts at ``b << bank_bits``."""
    return ceil_log2(max(words, 2))


class Engine(wiring.Component):
    """A binary-network inference engine for one compiled model (:mod:`hw.compiler`).

    The top-level interface is two streams in the default ``sync`` clock domain (clock and
    synchronous reset): frames in, results out, both with valid/ready back-pressure.

    Pipeline, for a command issued by the sequencer at cycle ``t``: the memories are read at
    ``t`` (synchronous ports), the PEs see the operands at ``t + 1`` and finish the term at
    ``t + 1 + tree_stages``, where the threshold units write the activation bits (or the
    output layer its scores). A result is valid the cycle after its last score is written.

    Members
    -------
    pixels : In(stream.Signature(ArrayLayout(8, pixels_per_beat)))
        Frames, each ``ceil(input_size / pixels_per_beat)`` beats, pixel ``i`` of a frame in
        lane ``i % pixels_per_beat`` of beat ``i // pixels_per_beat``; lanes past the frame's
        end are ignored.
    results : Out(stream.Signature(result_layout(params)))
        One per frame, in order: ``cls`` (argmax over the first ``classes`` scores, ties to the
        lowest index) and ``scores`` (the output layer's pre-activations; entries from
        ``classes`` on are pad neurons, to be ignored).
    """

    def __init__(self, compiled):
        self._params = params = compiled.params
        self._image = compiled.image
        if params.score_count % params.pe:
            raise ValueError(f"score_count ({params.score_count}) must be a multiple of pe ({params.pe})")
        super().__init__({
            "pixels": In(stream.Signature(pixel_layout(params.pixels_per_beat))),
            "results": Out(stream.Signature(result_layout(params))),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        params, image = self._params, self._image
        pe, simd, width = params.pe, params.simd, params.acc_width

        m.submodules.loader = loader = InputLoader(params)
        m.submodules.sequencer = sequencer = Sequencer(params, image.descriptors)
        wiring.connect(m, wiring.flipped(self.pixels), loader.pixels)

        m.submodules.weight_memory = weights = Memory(
            shape=pe * simd, depth=params.weight_depth, init=image.weight_words, attrs=BLOCK_RAM)
        m.submodules.threshold_memory = thresholds = Memory(
            shape=pe * width, depth=params.threshold_depth, init=image.threshold_words, attrs=BLOCK_RAM)
        m.submodules.input_memory = inputs = Memory(
            shape=simd, depth=1 << len(loader.write_addr), init=[], attrs=BLOCK_RAM)
        act_bank = bank_bits(params.act_words)
        m.submodules.activation_memory = activations = Memory(
            shape=simd, depth=2 << act_bank, init=[], attrs=BLOCK_RAM)
        weight_read = weights.read_port()
        threshold_read = thresholds.read_port()
        input_read = inputs.read_port()
        input_write = inputs.write_port()
        act_read = activations.read_port()
        act_write = activations.write_port(granularity=pe)

        # the command, delayed to each pipeline stage: commands[k] belongs to cycle t + k
        layout = command_layout(params)
        commands = [sequencer.command]
        for k in range(1, params.tree_stages + 2):
            delayed = Signal(layout, name=f"command_{k}")
            m.d.sync += delayed.eq(commands[-1])
            commands.append(delayed)
        issued, operands, finished = commands[0], commands[1], commands[-1]

        m.d.comb += [
            input_write.addr.eq(loader.write_addr),
            input_write.data.eq(loader.write_data),
            input_write.en.eq(loader.write_en),
            loader.frame_taken.eq(sequencer.frame_taken),
            sequencer.frame_ready.eq(loader.frame_ready),
            sequencer.input_bias.eq(-loader.frame_sum),
            weight_read.addr.eq(issued.weight_addr),
            input_read.addr.eq(input_address(params, loader.compute_bank, issued.slice, issued.plane)),
            act_read.addr.eq(Cat(issued.slice[:act_bank], ~issued.parity)),
            threshold_read.addr.eq(commands[params.tree_stages].threshold_addr),
        ]

        x = Mux(operands.from_input, input_read.data, act_read.data)

        m.submodules.array = array = ProcessingElementArray(pe, simd, width, stages=params.tree_stages)
        m.d.comb += [
            array.x.eq(x),
            array.weights.eq(weight_read.data),
            array.and_mode.eq(operands.and_mode),
            array.valid.eq(finished.valid),
            array.first.eq(finished.first),
            array.shift.eq(finished.plane),
            array.bias.eq(finished.bias),
            array.thresholds.eq(threshold_read.data),
        ]

        group_done = finished.valid & finished.last
        chunks = simd // pe
        m.d.comb += [
            act_write.addr.eq(Cat(finished.out_word, finished.parity)),
            # the group writing chunk 0 of a word clears the rest: stale bits never reach a pad lane
            act_write.data.eq(Cat(*[Mux(finished.out_chunk == c, array.fires, 0) for c in range(chunks)])),
            act_write.en.eq(Mux(group_done & ~finished.last_layer,
                                Mux(finished.out_chunk == 0, (1 << chunks) - 1, 1 << finished.out_chunk), 0)),
        ]

        scores = Signal(data.ArrayLayout(signed(width), params.score_count))
        for g in range(params.score_count // pe):
            with m.If(group_done & finished.last_layer & (finished.group == g)):
                m.d.sync += [scores[g * pe + p].eq(array.totals[p]) for p in range(pe)]

        m.submodules.argmax = argmax = Argmax(params.score_count, width)
        # the network's remaining numbers are one row of data, like the descriptors
        m.submodules.network = network = Memory(shape=network_layout(params), depth=1, init=[{
            "input": input_config(params, image), "classes": image.classes}])
        network_row = network.read_port(domain="comb").data
        m.d.comb += loader.config.eq(network_row.input)
        pending = Signal()
        m.d.comb += [
            argmax.scores.eq(scores),
            argmax.count.eq(network_row.classes),
            self.results.valid.eq(pending),
            self.results.payload.scores.eq(scores),
            self.results.payload.cls.eq(argmax.index),
            sequencer.scores_free.eq(~pending | self.results.ready),
        ]
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += pending.eq(0)
        with m.If(finished.valid & finished.frame_end):
            m.d.sync += pending.eq(1)
        return m
