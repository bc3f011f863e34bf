"""The input loader: pixels from the input stream into a double-buffered input memory."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .popcount import balanced_sum


def pixel_layout(pixels_per_beat):
    """Payload of the input stream: ``pixels_per_beat`` unsigned 8-bit pixels, pixel 0 first."""
    return data.ArrayLayout(8, pixels_per_beat)


class InputLoader(wiring.Component):
    """Writes each frame's pixels into one of two banks while the engine computes on the other.

    A frame is ``ceil(input_size / K)`` beats of K = ``pixels_per_beat`` pixels; pixels past
    ``input_size`` in the last beat are ignored (written as 0). Bank ``b`` holds words of S =
    ``simd`` lanes of ``input_bits`` bits (the pixel, or ``pixel >= input_threshold``) at
    addresses ``b * 2**ceil(log2(input_words)) + word``; each beat fills one K-lane granule.
    After the last beat the loader writes zero granules up to the end of the word (no stream
    transfer meanwhile), so the pad lanes read as 0. It also sums the frame's (8-bit) pixels.

    Members
    -------
    pixels : In(stream.Signature(pixel_layout(K)))
    write_addr, write_data, write_en : Out
        Drive the input memory's write port (granularity K lanes).
    frame_ready : Out(1)
        The compute bank holds a complete frame.
    compute_bank : Out(1)
    frame_sum : Out(range(255 * input_size + 1))
        Pixel sum of the frame in the compute bank.
    frame_taken : In(1)
        The engine is done with the compute bank.
    """

    def __init__(self, params, image):
        self._params = params
        self._image = image
        lanes = params.simd // params.pixels_per_beat
        self._granules = lanes
        bank_bits = ceil_log2(max(params.input_words, 2))
        self._bank_bits = bank_bits
        super().__init__({
            "pixels": In(stream.Signature(pixel_layout(params.pixels_per_beat))),
            "write_addr": Out(bank_bits + 1),
            "write_data": Out(params.simd * params.input_bits),
            "write_en": Out(lanes),
            "frame_ready": Out(1),
            "compute_bank": Out(1),
            "frame_sum": Out(range(255 * params.simd * params.input_words + 1)),
            "frame_taken": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        params, image = self._params, self._image
        per_beat = params.pixels_per_beat
        beats = -(-image.input_size // per_beat)
        last_word = (beats - 1) // self._granules
        last_granule = (beats - 1) % self._granules
        last_lanes = image.input_size - (beats - 1) * per_beat

        fill_bank = Signal()
        full = Signal(2)
        word = Signal(self._bank_bits)
        granule = Signal(range(max(self._granules, 2)))
        padding = Signal()
        running_sum = Signal.like(self.frame_sum)
        bank_sum = [Signal.like(self.frame_sum, name=f"bank{b}_sum") for b in range(2)]

        stream_in = self.pixels
        m.d.comb += stream_in.ready.eq(~full.bit_select(fill_bank, 1) & ~padding)
        transfer = stream_in.valid & stream_in.ready
        last_beat = (word == last_word) & (granule == last_granule) & ~padding
        lanes = []
        for i in range(per_beat):
            pixel = stream_in.payload[i]
            lanes.append(Mux(last_beat, 0, pixel) if i >= last_lanes else pixel)
        if params.input_bits == 8:
            beat_bits = Cat(*lanes)
        else:
            beat_bits = Cat(*[lane >= image.input_threshold for lane in lanes])
        write = transfer | padding
        m.d.comb += [
            self.write_addr.eq(Cat(word, fill_bank)),
            self.write_data.eq(Mux(padding, 0, beat_bits.replicate(self._granules))),
            self.write_en.eq(Mux(write, 1 << granule, 0)),
            self.frame_ready.eq(full.bit_select(self.compute_bank, 1)),
            self.frame_sum.eq(Mux(self.compute_bank, bank_sum[1], bank_sum[0])),
        ]

        frame_done = write & (last_beat | padding) & (granule == self._granules - 1)
        with m.If(transfer):
            m.d.sync += running_sum.eq(running_sum + balanced_sum(lanes))
        with m.If(write):
            with m.If(granule == self._granules - 1):
                m.d.sync += [granule.eq(0), word.eq(word + 1)]
            with m.Else():
                m.d.sync += granule.eq(granule + 1)
            with m.If(last_beat & (granule != self._granules - 1)):
                m.d.sync += padding.eq(1)
        with m.If(frame_done):
            m.d.sync += [word.eq(0), granule.eq(0), padding.eq(0), running_sum.eq(0),
                         fill_bank.eq(~fill_bank)]
            frame_sum = running_sum + Mux(transfer, balanced_sum(lanes), 0)
            with m.If(fill_bank):
                m.d.sync += bank_sum[1].eq(frame_sum)
            with m.Else():
                m.d.sync += bank_sum[0].eq(frame_sum)
        with m.If(self.frame_taken):
            m.d.sync += self.compute_bank.eq(~self.compute_bank)
        for b in range(2):
            with m.If(self.frame_taken & (self.compute_bank == b)):
                m.d.sync += full[b].eq(0)
            with m.If(frame_done & (fill_bank == b)):
                m.d.sync += full[b].eq(1)
        return m
