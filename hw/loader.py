"""The input loader: pixels from the input stream into a double-buffered, bit-plane input memory."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from layout.params import input_planes
from layout.rows import index_shape, input_config_layout


def pixel_layout(pixels_per_beat):
    """Payload of the input stream: ``pixels_per_beat`` unsigned 8-bit pixels, pixel 0 first."""
    return data.ArrayLayout(8, pixels_per_beat)


def address_fields(*fields):
    """An address of bit fields ``(value, width)``, the first lowest: each value truncated or
    zero-extended to its width, so that a narrow value (a word index that is always 0, say) never
    moves the fields above it down."""
    return Cat(*[Cat(value, Const(0, width))[:width] for value, width in fields])


def input_address(params, bank, word, plane):
    """Input memory address of ``plane`` of ``word`` in ``bank``: ``{bank, word, plane}`` bit fields."""
    return address_fields((plane, ceil_log2(input_planes(params.input_bits))), (word, input_word_bits(params)),
                          (bank, 1))


def input_address_bits(params):
    """Address bits of the input memory (two banks): the width of :func:`input_address`."""
    return 1 + input_word_bits(params) + ceil_log2(input_planes(params.input_bits))


def input_word_bits(params):
    """Address bits of a word within one input bank."""
    return ceil_log2(max(params.input_words, 2))


class InputLoader(wiring.Component):
    """Writes each frame into one of two banks of the input memory, as bit planes, while the
    engine computes on the other bank.

    A frame is ``ceil(input_size / K)`` beats of K = ``pixels_per_beat`` pixels; pixels past
    ``input_size`` in the last beat are ignored. The loader collects S = ``simd`` pixels (or the
    frame's last, fewer ones) in a staging register, then writes them as ``planes`` words of S
    bits on as many cycles (plane ``b`` = bit ``b`` of every pixel, or one word of
    ``pixel >= input_threshold`` bits for a 1-bit model), holding the stream off meanwhile, and
    clears the register: lanes past the frame's end read as 0.

    Members
    -------
    pixels : In(stream.Signature(pixel_layout(K)))
    write : Out(WritePort.Signature(addr_width=input_address_bits(params), shape=simd).flip())
        Drives the input memory's write port (addresses: :func:`input_address`).
    frame_ready : Out(1)
        The compute bank holds a complete frame.
    compute_bank : Out(1)
    frame_taken : In(1)
        The engine is done with the compute bank.
    config : In(input_config_layout(params))
        The frame's size and the binarization threshold (data, not logic: see the engine).
    discard : In(1)
        Drops the frame being filled (a frame cut short on the link): the next beat starts a frame,
        whose words overwrite what the cut one wrote or staged (frames of a network are all one
        size). A frame whose last beat has been taken (this cycle or before) is whole and completes.
    """

    def __init__(self, params):
        self._params = params
        self._planes = input_planes(params.input_bits)
        super().__init__({
            "pixels": In(stream.Signature(pixel_layout(params.pixels_per_beat))),
            "write": Out(WritePort.Signature(addr_width=input_address_bits(params), shape=params.simd).flip()),
            "frame_ready": Out(1),
            "compute_bank": Out(1),
            "frame_taken": In(1),
            "config": In(input_config_layout(params)),
            "discard": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        params, config = self._params, self.config
        per_beat, planes = params.pixels_per_beat, self._planes
        granules = params.simd // per_beat

        fill_bank = Signal()
        full = Signal(2)
        word = Signal(input_word_bits(params))
        granule = Signal(index_shape(granules))
        writing = Signal()                 # the staged word is being written, plane by plane
        plane = Signal(index_shape(planes))
        frame_end = Signal()               # the staged word is the frame's last
        staging = Signal(data.ArrayLayout(params.input_bits, params.simd))

        stream_in = self.pixels
        m.d.comb += stream_in.ready.eq(~full.bit_select(fill_bank, 1) & ~writing)
        transfer = stream_in.valid & stream_in.ready
        last_beat = (word == config.last_word) & (granule == config.last_granule)
        # a 1-bit pixel is binarized before the pad lanes are zeroed: a pad lane stays 0 (-1 in
        # both operands cancels) whatever the threshold
        lanes = [stream_in.payload[i] for i in range(per_beat)]
        if params.input_bits == 1:
            lanes = [lane >= config.threshold for lane in lanes]
        lanes = [Mux(last_beat & (config.last_lanes <= i), 0, lane) for i, lane in enumerate(lanes)]
        if planes == 1:
            plane_word = staging.as_value()
        else:
            # plane b of every pixel is its lowest bit after b shifts: no 8-way mux per lane
            plane_word = Cat(*[staging[lane][0] for lane in range(params.simd)])
        m.d.comb += [
            self.write.addr.eq(input_address(params, fill_bank, word, plane)),
            self.write.data.eq(plane_word),
            self.write.en.eq(writing),
            self.frame_ready.eq(full.bit_select(self.compute_bank, 1)),
        ]

        with m.If(transfer):
            for g in range(granules):
                with m.If(granule == g):
                    m.d.sync += [staging[g * per_beat + i].eq(lane) for i, lane in enumerate(lanes)]
            with m.If(last_beat | (granule == granules - 1)):
                m.d.sync += [writing.eq(1), frame_end.eq(last_beat), granule.eq(0)]
            with m.Else():
                m.d.sync += granule.eq(granule + 1)

        frame_done = writing & (plane == planes - 1) & frame_end
        with m.If(writing):
            m.d.sync += plane.eq(plane + 1)
            if planes > 1:
                m.d.sync += [staging[lane].eq(staging[lane] >> 1) for lane in range(params.simd)]
            with m.If(plane == planes - 1):
                m.d.sync += [writing.eq(0), plane.eq(0), staging.eq(0), word.eq(word + 1)]
        with m.If(frame_done):
            m.d.sync += [word.eq(0), fill_bank.eq(~fill_bank)]
        with m.If(self.frame_taken):
            m.d.sync += self.compute_bank.eq(~self.compute_bank)
        # (the staged pixels stay: the next frame, of the same size, writes every lane the cut one did)
        with m.If(self.discard & ~(writing & frame_end) & ~(transfer & last_beat)):
            m.d.sync += [word.eq(0), granule.eq(0), writing.eq(0), plane.eq(0)]
        for b in range(2):
            with m.If(self.frame_taken & (self.compute_bank == b)):
                m.d.sync += full[b].eq(0)
            with m.If(frame_done & (fill_bank == b)):
                m.d.sync += full[b].eq(1)
        return m
