"""The inference engine: loader, memories, sequencer, P x S PE array, argmax.

See ``docs/engine.md`` for the architecture, the memory layouts and the cycle formula.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from layout.params import MEMORY_LATENCY
from layout.protocol import LoadTarget
from layout.rows import byte_lanes, index_shape, network_layout, network_row

from .argmax import Argmax
from .loadable import drive_write_port, load_signature
from .loader import InputLoader, address_fields, input_address, input_address_bits, pixel_layout
from .pe import ProcessingElementArray
from .sequencer import Sequencer, command_layout
from .spram import WeightSpram, check_spram_fit


# Yosys attributes of the engine's memories (see docs/engine.md, "Memory layout"). Block RAM
# even when small (a ROM of start values would otherwise become logic), unless a memory is at most
# `logic_memory_bits`: where block RAMs are scarce (iCE40), flip-flops hold a small memory more
# cheaply. `no_rw_check`: no read/write collision logic; reads and writes of the same address
# never meet while the read data is used. Yosys honours it only where it merges a register into
# a combinational read port, which is why every read port below is combinational with an
# explicit register after it.
LOGIC_MEMORY_BITS = 512


def memory_attrs(depth, width, logic_memory_bits=LOGIC_MEMORY_BITS):
    """Yosys attributes of a memory of ``depth`` words of ``width`` bits."""
    return {"ram_style": "logic" if depth * width <= logic_memory_bits else "block", "no_rw_check": 1}


def memory_shapes(params, *, weights_in_spram=False):
    """``{name: (depth, width)}`` of the engine's big memories in block RAM (or flip-flops), for
    ``params``: the weights (unless in SPRAM), start values, input and activations. The weight
    and start memories are loadable: whole bytes wide (see :mod:`hw.loadable`)."""
    shapes = {
        "weight_memory": (params.weight_depth, byte_lanes(params.pe * params.simd) * 8),
        "start_memory": (params.start_depth, byte_lanes(params.pe * params.start_width) * 8),
        "input_memory": (1 << input_address_bits(params), params.simd),
        "activation_memory": (2 << bank_bits(params.act_words), params.simd),
    }
    if weights_in_spram:
        del shapes["weight_memory"]
    return shapes


def registered_read(m, memory, name):
    """A read port of ``memory`` whose data is registered: ``(addr, data)``, data one cycle after
    the address. Written as a combinational port and a reset-less register, which Yosys merges
    into the block RAM's synchronous read port (with the collision semantics it is told)."""
    port = memory.read_port(domain="comb")
    data = Signal.like(port.data, name=f"{name}_data", reset_less=True)
    m.d.sync += data.eq(port.data)
    return port.addr, data


def result_layout(params):
    """Payload of the output stream: the class and the ``score_count`` scores (pad ones last).

    As bits: ``cls`` from bit 0, then score ``i`` (two's complement, ``score_width`` bits) from
    bit ``len(cls) + i * score_width``. Decode a payload with ``result_layout(params).from_bits``.
    """
    return data.StructLayout({
        "cls": index_shape(params.score_count),
        "scores": data.ArrayLayout(signed(params.score_width), params.score_count),
    })


def bank_bits(words):
    """Address bits of one bank of ``words`` words; bank ``b`` starts at ``b << bank_bits``."""
    return ceil_log2(max(words, 2))


def activation_address(params, bank, word):
    """Activation memory address of ``word`` in ``bank``: ``{bank, word}`` bit fields."""
    return address_fields((word, bank_bits(params.act_words)), (bank, 1))


class Engine(wiring.Component):
    """A binary-network inference engine for one compiled model (:mod:`layout.compiler`).

    The top-level interface is two streams in the default ``sync`` clock domain (clock and
    synchronous reset): frames in, results out, both with valid/ready back-pressure.

    Pipeline, for a command issued by the sequencer at cycle ``t``: the memories are read at
    ``t`` (block RAM read register at ``t + 1``), the PEs see the operands at
    ``t + L`` and add the term at ``t + L + tree_stages``, ``L = params.operand_latency``
    (``MEMORY_LATENCY``; in a conv engine one more, the gathered slice's register); the sums
    and their sign bits are registered, and written to the activation memory (or the output
    layer's sums to the score registers) a cycle later. A result is valid ``argmax.latency + 1``
    cycles after its last score is written.

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

    With ``loadable``, the network can be replaced at run time (see :mod:`hw.loadable`):

    load : In(hw.loadable.load_signature())
        Writes to the weight, start, descriptor and network memories
        (:class:`layout.protocol.LoadTarget`), only while the engine is idle (no frame in it).
    clear : In(1)
        Synchronous reset of the whole engine, after a load: the sequencer reads the new table.
    discard : In(1)
        Drops the frame being loaded, cut short on the link (:class:`hw.loader.InputLoader`).
    network : Out(network_layout(params))
        The network row, for the link (a frame's size in bytes).

    With ``weights_in_spram`` (and ``loadable``), the weights live in the UP5K's SPRAMs
    (:class:`hw.spram.WeightSpram`, P * S <= 64): not initialised, they must be loaded.
    """

    def __init__(self, compiled, *, logic_memory_bits=LOGIC_MEMORY_BITS, loadable=False, weights_in_spram=False):
        self._params = params = compiled.params
        self._image = compiled.image
        self._logic_memory_bits = logic_memory_bits
        self._loadable = loadable
        self._weights_in_spram = weights_in_spram
        if params.score_count % params.pe:
            raise ValueError(f"score_count ({params.score_count}) must be a multiple of pe ({params.pe})")
        if weights_in_spram:
            if not loadable:
                raise ValueError("weights in SPRAM must be loadable: the bitstream cannot initialise them")
            check_spram_fit(params.weight_depth, params.pe * params.simd)
        members = {
            "pixels": In(stream.Signature(pixel_layout(params.pixels_per_beat))),
            "results": Out(stream.Signature(result_layout(params))),
        }
        if loadable:
            members.update(load=In(load_signature()), clear=In(1), discard=In(1),
                           network=Out(network_layout(params)))
        super().__init__(members)

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        params, image = self._params, self._image
        pe, simd = params.pe, params.simd
        m.submodules.array = array = ProcessingElementArray(pe, simd, params.acc_width, stages=params.tree_stages)

        m.submodules.loader = loader = InputLoader(params)
        m.submodules.sequencer = sequencer = Sequencer(params, image.descriptors, loadable=self._loadable)
        wiring.connect(m, wiring.flipped(self.pixels), loader.pixels)

        contents = {"weight_memory": image.weight_words, "start_memory": image.start_words}
        memories = {name: Memory(shape=width, depth=depth, init=contents.get(name, []),
                                 attrs=memory_attrs(depth, width, self._logic_memory_bits))
                    for name, (depth, width) in memory_shapes(
                        params, weights_in_spram=self._weights_in_spram).items()}
        for name, memory in memories.items():
            m.submodules[name] = memory
        starts = memories["start_memory"]
        inputs, activations = memories["input_memory"], memories["activation_memory"]
        if self._weights_in_spram:
            m.submodules.weight_spram = weights = WeightSpram(params.weight_depth, pe * simd)
            weight_addr, weight_data = weights.addr, weights.data
            wiring.connect(m, wiring.flipped(self.load), weights.load)
        else:
            weights = memories["weight_memory"]
            weight_addr, weight_data = registered_read(m, weights, "weight")
            if self._loadable:
                drive_write_port(m, weights.write_port(granularity=8), self.load, LoadTarget.WEIGHTS)
        start_addr, start_data = registered_read(m, starts, "start")
        wiring.connect(m, loader.write, inputs.write_port())
        act_write = activations.write_port(granularity=pe)
        if self._loadable:
            drive_write_port(m, starts.write_port(granularity=8), self.load, LoadTarget.STARTS)
            wiring.connect(m, wiring.flipped(self.load), sequencer.load)

        # the command, delayed to each pipeline stage: commands[k] belongs to cycle t + k
        layout = command_layout(params)
        commands = [sequencer.command]
        for k in range(1, params.layer_gap + 1):
            delayed = Signal(layout, name=f"command_{k}")
            m.d.sync += delayed.eq(commands[-1])
            commands.append(delayed)
        issued = commands[0]
        latency = params.operand_latency
        counted = commands[latency + array.shift_latency]   # the PEs shift the count
        finished = commands[latency + array.latency]         # and add it
        written = commands[-1]                               # its results are stored
        # operands: the memories' data, registered once more in the fabric (a conv engine then
        # gathers the slice from two words and registers it: the weights are read that much later)
        gathered = commands[MEMORY_LATENCY]
        read_late = latency - MEMORY_LATENCY
        # each block RAM's data goes straight into a register (its clock-to-out leaves little of
        # the cycle); the input/activation choice is made after them, in the PEs' first LUTs
        w = Signal(pe * simd, reset_less=True)
        m.d.sync += w.eq(weight_data[:pe * simd])
        if params.conv:
            x = self._gather(m, commands, inputs, activations, loader.write, act_write, loader.compute_bank)
        else:
            input_addr, input_data = registered_read(m, inputs, "input")
            act_addr, act_data = registered_read(m, activations, "act")
            input_bits, act_bits = Signal(simd, reset_less=True), Signal(simd, reset_less=True)
            m.d.sync += [input_bits.eq(input_data), act_bits.eq(act_data)]
            x = Mux(gathered.from_input, input_bits, act_bits)
            m.d.comb += [input_addr.eq(input_address(params, loader.compute_bank, issued.slice, issued.plane)),
                         act_addr.eq(activation_address(params, ~issued.parity, issued.slice))]
        # start values: read array.latency cycles after the weights' address, registered once
        # more in the fabric, so that they arrive with the group's first term
        start_values = Signal.like(start_data, reset_less=True)
        m.d.sync += start_values.eq(start_data)

        m.d.comb += [
            loader.frame_taken.eq(sequencer.frame_taken),
            sequencer.frame_ready.eq(loader.frame_ready),
            weight_addr.eq(commands[read_late].weight_addr),
            start_addr.eq(commands[read_late + array.latency].start_addr),
        ]

        m.d.comb += [
            array.x.eq(x),
            array.weights.eq(w),
            # each control from the command of the stage the PEs sample it at: the shift a stage
            # before the others (see ProcessingElement)
            array.control.valid.eq(finished.valid),
            array.control.first.eq(finished.first),
            array.control.shift.eq(counted.shift),
            *[array.starts[p].eq(start_values[p * params.start_width:(p + 1) * params.start_width].as_signed())
              for p in range(pe)],
        ]

        # the sums and their sign bits, registered: the adder's carry chain ends at a register
        fires = Signal(pe, reset_less=True)
        totals = Signal.like(array.totals, reset_less=True)
        m.d.sync += [fires.eq(array.fires), totals.eq(array.totals)]

        group_done = written.valid & written.last
        chunks = simd // pe
        out_bits = fires
        if params.conv:
            # max-pool: the OR of the pool window's bits, written after its last pixel
            pooled = Signal(pe, reset_less=True)
            out_bits = Mux(written.sub_first, fires, pooled | fires)
            with m.If(group_done):
                m.d.sync += pooled.eq(out_bits)
            group_done = group_done & written.write
        m.d.comb += [
            act_write.addr.eq(activation_address(params, written.parity, written.out_word)),
            # the group writing chunk 0 of a word clears the rest: stale bits never reach a pad lane
            act_write.data.eq(Cat(*[Mux(written.out_chunk == c, out_bits, 0) for c in range(chunks)])),
            act_write.en.eq(Mux(group_done & ~written.last_layer,
                                Mux(written.out_chunk == 0, (1 << chunks) - 1, 1 << written.out_chunk), 0)),
        ]

        # the score registers, as the result carries them: narrower than the accumulators, an
        # output layer's sums fit score_width
        scores = Signal.like(self.results.payload.scores)
        for g in range(params.score_count // pe):
            with m.If(group_done & written.last_layer & (written.group == g)):
                m.d.sync += [scores[g * pe + p].eq(totals[p]) for p in range(pe)]

        m.submodules.argmax = argmax = Argmax(params.score_count, params.score_width)
        # the network's remaining numbers are one row of data, like the descriptors
        layout = network_layout(params)
        m.submodules.network = network = Memory(shape=byte_lanes(layout.size) * 8, depth=1,
                                                init=[network_row(params, image)])
        row = layout(network.read_port(domain="comb").data[:layout.size])
        m.d.comb += loader.config.eq(row.input)
        if self._loadable:
            m.d.comb += loader.discard.eq(self.discard)
            drive_write_port(m, network.write_port(granularity=8), self.load, LoadTarget.NETWORK)
            m.d.comb += self.network.eq(row)
        # a frame's result is pending from its last score until it is taken; it is valid once the
        # argmax has settled on the score registers, which hold still meanwhile
        pending = Signal()
        settling = Signal(range(argmax.latency + 1))
        m.d.comb += [
            argmax.scores.eq(scores),
            argmax.count.eq(row.classes),
            self.results.valid.eq(pending & (settling == 0)),
            self.results.payload.scores.eq(scores),
            self.results.payload.cls.eq(argmax.index),
            # not "or being taken": that would put the consumer's ready on the sequencer's path
            sequencer.scores_free.eq(~pending),
        ]
        with m.If(settling != 0):
            m.d.sync += settling.eq(settling - 1)
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += pending.eq(0)
        with m.If(written.valid & written.frame_end):
            m.d.sync += [pending.eq(1), settling.eq(argmax.latency)]
        if self._loadable:
            return ResetInserter(self.clear)(m)
        return m


    def _gather(self, m, commands, inputs, activations, input_write, act_write, bank):
        """A conv engine's operand ``x``: each command's slice, gathered from up to G window rows
        (``params.gather_rows``, docs/engine.md "Window gather") and registered, at cycle
        ``t + MEMORY_LATENCY + 1`` for a command issued at ``t``.

        Piece ``q`` of a slice reads two words of the input or activation map from its element
        offset on (words ``o // S`` and ``o // S + 1``), on two read ports of its own copy of the
        memory (copy 0 is the memory itself; the others are written alike); its lanes are the two
        words shifted down by ``o % S``, kept from its lower bound up to the next piece's, and
        below the command's valid lanes.
        """
        params = self._params
        simd, lane_bits = params.simd, exact_log2(params.simd)
        issued, gathered = commands[0], commands[MEMORY_LATENCY]
        offsets = [lambda command: command.offset,
                   *[lambda command, q=q: command.pieces[q] for q in range(params.gather_rows - 1)]]
        # piece q keeps lanes bounds[q] <= i < bounds[q + 1], each mask registered a stage early; a
        # bound is S or more when its piece is empty (taken as S: no carry chain over its high bits)
        command = commands[1]
        every_lane = Const((1 << simd) - 1, simd)

        def below(bound):
            """The lanes below ``bound`` (0..S), as a mask: a shift, not S comparisons."""
            return ~(every_lane << bound)[:simd]

        def clipped(bound):
            return Mux(bound[lane_bits + 1:].any(), simd, bound[:lane_bits + 1])

        ends = command.bounds if params.gather_rows > 1 else []
        bounds = [*[below(clipped(bound)) for bound in ends], every_lane]
        valid = below(command.lanes)
        masks = []
        for q in range(params.gather_rows):
            mask = Signal(simd, name=f"piece_{q}_lanes", reset_less=True)
            m.d.sync += mask.eq(bounds[q] & valid & (~bounds[q - 1] if q else -1))
            masks.append(mask)
        x = Signal(simd, reset_less=True)
        pieces = []
        for q, offset in enumerate(offsets):
            copies = []
            for memory, name, written, granularity in ((inputs, "input_memory", input_write, None),
                                                       (activations, "activation_memory", act_write, params.pe)):
                if q:   # another copy, written as the memory is
                    memory = Memory(shape=memory.shape, depth=memory.depth, init=[], attrs=memory.attrs)
                    m.submodules[f"{name}_{q}"] = memory
                    write = memory.write_port(granularity=granularity)
                    m.d.comb += [write.addr.eq(written.addr), write.data.eq(written.data), write.en.eq(written.en)]
                copies.append((registered_read(m, memory, f"{name}_{q}_word"),
                               registered_read(m, memory, f"{name}_{q}_next")))
            (input_word, input_next), (act_word, act_next) = copies
            word = offset(issued)[lane_bits:]
            m.d.comb += [
                input_word[0].eq(input_address(params, bank, word, issued.plane)),
                input_next[0].eq(input_address(params, bank, word + 1, issued.plane)),
                act_word[0].eq(activation_address(params, ~issued.parity, word)),
                act_next[0].eq(activation_address(params, ~issued.parity, word + 1)),
            ]
            words = Signal(2 * simd, name=f"piece_{q}_words", reset_less=True)
            m.d.sync += words.eq(Mux(command.from_input, Cat(input_word[1], input_next[1]),
                                     Cat(act_word[1], act_next[1])))
            # the shifter takes log2(S) levels of logic: registered, off the PEs' paths
            shifted = words.bit_select(offset(gathered)[:lane_bits], simd) if lane_bits else words[:simd]
            pieces.append(shifted & masks[q])
        m.d.sync += x.eq(reduce(operator.or_, pieces))
        return x
