"""The boards ``bnn build`` knows: each a small description on top of an ``amaranth-boards`` platform.

A board says which platform describes its pins, which nextpnr device and package it is, how fast
the engine is known to run on its FPGA (the default clock, from ``bench/boards.py``), how many
popcount pipeline stages that clock needs, which memories go to flip-flops, and where its serial
line is. The engine knows nothing
of boards.
"""

from dataclasses import dataclass

from amaranth.build import Attrs, Pins, Resource, Subsignal

from model.errors import BnnError

from .engine import LOGIC_MEMORY_BITS


class BoardError(BnnError):
    """An unknown board name."""


# nextpnr's names for each family's resources in its utilisation report, as ``(what, cell type)``:
# logic cells and block RAM first, then the family's others
NEXTPNR_CELLS = {
    "ice40": (("logic cells", "ICESTORM_LC"), ("block RAM", "ICESTORM_RAM"), ("SPRAM", "ICESTORM_SPRAM"),
              ("DSP", "ICESTORM_DSP")),
    "ecp5": (("logic cells", "TRELLIS_COMB"), ("block RAM", "DP16KD"), ("DSP", "MULT18X18D")),
}


@dataclass(frozen=True)
class Device:
    """An FPGA's resources, as nextpnr counts them (and names them: :attr:`nextpnr_cells`)."""

    family: str            # "ice40" or "ecp5"
    name: str              # e.g. "iCE40UP5K"
    nextpnr_args: tuple    # device and package options of nextpnr
    luts: int              # LUT4s (iCE40 logic cells, ECP5 LUT4s)
    block_rams: int        # SB_RAM40_4K (4 Kbit) or DP16KD (18 Kbit)
    sprams: int = 0        # SB_SPRAM256KA (UP5K only)
    dsps: int = 0          # SB_MAC16 or MULT18X18D

    @property
    def nextpnr_cells(self):
        """``((what, cell type), ...)``: the resources nextpnr's utilisation report names for this
        FPGA's family (:data:`NEXTPNR_CELLS`), logic cells and block RAM first."""
        return NEXTPNR_CELLS[self.family]


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    platform: str          # class name in amaranth_boards.<module>
    module: str
    device: Device
    clock_mhz: float       # default engine clock: timing closes there (bench/boards.py)
    tree_stages: int       # popcount pipeline registers that clock needs
    uart: tuple = ()       # extra UART resource (rx pin, tx pin, attrs) for boards without one
    uart_enable: str = ""  # an output the board needs high to route the FPGA's TX to its USB bridge
    pll_from_pad: bool = False  # iCE40: the PLL takes the clock pin itself (SB_PLL40_PAD)
    clock: str = ""        # the oscillator's resource, if not the platform's default clock
    line_rates: str = ""   # the serial line rates the board's USB-serial chip carries exactly

    def clock_resource(self, platform):
        """Name of the clock resource the PLL takes."""
        return self.clock or platform.default_clk

    def clock_mhz_in(self, platform):
        """The oscillator's frequency in MHz."""
        return platform.lookup(self.clock_resource(platform)).clock.frequency / 1e6

    @property
    def gather_rows(self):
        """A conv engine's window rows per slice (:attr:`layout.params.EngineParams.gather_rows`): on
        iCE40, 1 (each more takes two block RAM copies and a shifter the UP5K has no room for); on
        ECP5, None: as many as the model uses."""
        return 1 if self.device.family == "ice40" else None

    @property
    def logic_memory_bits(self):
        """Engine memories up to this size go to flip-flops, not block RAM: on iCE40 block RAMs are
        the scarce resource; on ECP5 they are plentiful and flip-flops cost LUTs for the muxes."""
        return LOGIC_MEMORY_BITS if self.device.family == "ice40" else 0

    def make_platform(self):
        """The ``amaranth-boards`` platform, with the UART resource added where the board has none."""
        import importlib
        platform = getattr(importlib.import_module(f"amaranth_boards.{self.module}"), self.platform)()
        if self.uart:
            rx, tx, attrs = self.uart
            platform.add_resources([Resource("uart", 0, Subsignal("rx", Pins(rx, dir="i")),
                                             Subsignal("tx", Pins(tx, dir="o")), Attrs(**attrs))])
        return platform


UP5K = Device("ice40", "iCE40UP5K", ("--up5k", "--package", "sg48"), luts=5280, block_rams=30, sprams=4, dsps=8)
HX8K = Device("ice40", "iCE40HX8K", ("--hx8k", "--package", "ct256"), luts=7680, block_rams=32)


def _ecp5(size, luts, block_rams, dsps, package, speed):
    return Device("ecp5", f"LFE5U-{size}F", (f"--{size}k", "--package", package, "--speed", str(speed)),
                  luts=luts, block_rams=block_rams, dsps=dsps)


BOARDS = {board.name: board for board in [
    Board("icebreaker", "1BitSquared iCEBreaker (iCE40 UP5K), UART on the FTDI's second channel",
          "ICEBreakerPlatform", "icebreaker", UP5K, clock_mhz=30, tree_stages=4, pll_from_pad=True,
          line_rates="FT2232H: 12 MHz / n exactly (12, 6, 4, 3 Mbaud, ...)"),
    Board("upduino3", "UPduino v3 (iCE40 UP5K), 12 MHz clock jumper fitted; UART on pins 4 (rx) and 3 (tx)",
          "UpduinoV3Platform", "upduino_v3", UP5K, clock_mhz=30, tree_stages=4,
          uart=("4", "3", {"IO_STANDARD": "SB_LVCMOS"}), clock="clk12",
          line_rates="an adapter of your choice on pins 3 and 4"),
    Board("hx8k-breakout", "Lattice iCE40-HX8K breakout board, UART on the FTDI's second channel",
          "ICE40HX8KBEVNPlatform", "ice40_hx8k_b_evn", HX8K, clock_mhz=90, tree_stages=4,
          line_rates="FT2232H: 12 MHz / n exactly (12, 6, 4, 3 Mbaud, ...)"),
    Board("ulx3s-25f", "Radiona ULX3S with an ECP5 25F, UART on the FTDI",
          "ULX3S_25F_Platform", "ulx3s", _ecp5(25, 24288, 56, 28, "CABGA381", 6), clock_mhz=110, tree_stages=3,
          uart_enable="uart_tx_enable", line_rates="FT231X: up to 3 Mbaud"),
    Board("ulx3s-45f", "Radiona ULX3S with an ECP5 45F, UART on the FTDI",
          "ULX3S_45F_Platform", "ulx3s", _ecp5(45, 43848, 108, 72, "CABGA381", 6), clock_mhz=110, tree_stages=3,
          uart_enable="uart_tx_enable", line_rates="FT231X: up to 3 Mbaud"),
    Board("ulx3s-85f", "Radiona ULX3S with an ECP5 85F, UART on the FTDI",
          "ULX3S_85F_Platform", "ulx3s", _ecp5(85, 83640, 208, 156, "CABGA381", 6), clock_mhz=110, tree_stages=3,
          uart_enable="uart_tx_enable", line_rates="FT231X: up to 3 Mbaud"),
    Board("orangecrab-25f", "OrangeCrab r0.2 with an ECP5 25F; UART on Feather pins 0 (rx) and 1 (tx)",
          "OrangeCrabR0_2_25FPlatform", "orangecrab_r0_2", _ecp5(25, 24288, 56, 28, "CSFBGA285", 8),
          clock_mhz=110, tree_stages=3, uart=("N17", "M18", {"IO_TYPE": "LVCMOS33"}),
          line_rates="an adapter of your choice on Feather pins 0 and 1"),
    Board("orangecrab-85f", "OrangeCrab r0.2 with an ECP5 85F; UART on Feather pins 0 (rx) and 1 (tx)",
          "OrangeCrabR0_2_85FPlatform", "orangecrab_r0_2", _ecp5(85, 83640, 208, 156, "CSFBGA285", 8),
          clock_mhz=110, tree_stages=3, uart=("N17", "M18", {"IO_TYPE": "LVCMOS33"}),
          line_rates="an adapter of your choice on Feather pins 0 and 1"),
]}


def board(name):
    """The :class:`Board` called ``name``; raises :class:`BoardError` listing the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
