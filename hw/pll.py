"""PLL settings for iCE40 (SB_PLL40_CORE) and ECP5 (EHXPLLL), and the clock they make.

The settings search follows the limits of the vendors' sysCLOCK guides: for iCE40
``f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)`` with the phase detector at 10..133 MHz and
the VCO at 533..1066 MHz; for ECP5 ``f_out = f_in * CLKFB_DIV / CLKI_DIV`` with the phase
detector at 3.125..400 MHz and the VCO (``f_out * CLKOP_DIV``) at 400..800 MHz. Among the
settings at or below the wanted frequency, the closest wins.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Instance, IOPort

from model.errors import BnnError


# The data sheets' highest PLL output (iCE40 SB_PLL40 FOUT, ECP5 EHXPLLL CLKOP).
MAX_OUTPUT_MHZ = {"ice40": 275, "ecp5": 400}


class PllError(BnnError):
    """No PLL setting reaches the requested clock."""


@dataclass(frozen=True)
class PllSettings:
    family: str          # "ice40" or "ecp5"
    input_mhz: float
    output_mhz: float
    dividers: tuple      # iCE40: (DIVR, DIVF, DIVQ, FILTER_RANGE); ECP5: (CLKI_DIV, CLKFB_DIV, CLKOP_DIV)

    @property
    def clock_hz(self):
        """The output clock in whole hertz (what the gateware's timing is computed from)."""
        return round(self.output_mhz * 1e6)


def _ice40_filter_range(pfd_mhz):
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if pfd_mhz < limit:
            return value
    return 6


def pll_settings(family, input_mhz, wanted_mhz):
    """The :class:`PllSettings` of ``family`` whose output is closest to ``wanted_mhz`` without
    exceeding it; raises :class:`PllError` if the PLL cannot make a clock that slow or that fast."""
    candidates = []
    if family == "ice40":
        for divr in range(16):
            pfd = input_mhz / (divr + 1)
            if not 10 <= pfd <= 133:
                continue
            for divf in range(128):
                vco = pfd * (divf + 1)
                if not 533 <= vco <= 1066:
                    continue
                for divq in range(1, 7):
                    out = vco / (1 << divq)
                    candidates.append((out, (divr, divf, divq, _ice40_filter_range(pfd))))
    elif family == "ecp5":
        for clki in range(1, 129):
            pfd = input_mhz / clki
            if not 3.125 <= pfd <= 400:
                continue
            for clkfb in range(1, 129):
                out = pfd * clkfb
                for clkop in range(1, 129):
                    if 400 <= out * clkop <= 800:
                        candidates.append((out, (clki, clkfb, clkop)))
                        break
    else:
        raise ValueError(f"PLL family must be 'ice40' or 'ecp5', not {family!r}")
    highest = MAX_OUTPUT_MHZ[family]
    if wanted_mhz > highest:
        raise PllError(f"the {family} PLL makes at most {highest} MHz, not {wanted_mhz:g} MHz")
    candidates = [c for c in candidates if c[0] <= highest]
    fitting = [c for c in candidates if c[0] <= wanted_mhz + 1e-9]
    if not fitting:
        lowest = min(c[0] for c in candidates)
        raise PllError(f"the {family} PLL cannot make {wanted_mhz:g} MHz from {input_mhz:g} MHz "
                       f"(its lowest output is {lowest:.3f} MHz)")
    out, dividers = max(fitting, key=lambda c: c[0])
    return PllSettings(family, input_mhz, out, dividers)


def pll_instance(settings, reference, output, locked):
    """The PLL primitive of ``settings``: clock ``reference`` in, clock ``output`` out,
    ``locked`` high once it is stable.

    On iCE40, ``reference`` is either a clock signal (``SB_PLL40_CORE``) or the clock pin's
    ``IOPort`` (``SB_PLL40_PAD``: the PLL takes the pad itself, as on the UP5K, whose only
    PLL shares its site with the clock pin's I/O).
    """
    if settings.family == "ice40":
        divr, divf, divq, filter_range = settings.dividers
        pad = isinstance(reference, IOPort)
        return Instance(
            "SB_PLL40_PAD" if pad else "SB_PLL40_CORE",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq, p_FILTER_RANGE=filter_range,
            **({"i_PACKAGEPIN": reference} if pad else {"i_REFERENCECLK": reference}),
            i_RESETB=Const(1), i_BYPASS=Const(0), o_PLLOUTGLOBAL=output, o_LOCK=locked)
    clki, clkfb, clkop = settings.dividers
    return Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{settings.input_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{settings.output_mhz:.6f}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
        p_CLKI_DIV=clki, p_CLKFB_DIV=clkfb, p_CLKOP_DIV=clkop, p_CLKOP_CPHASE=clkop - 1, p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        i_RST=Const(0), i_STDBY=Const(0), i_CLKI=reference, i_CLKFB=output,
        i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(0), i_PHASESTEP=Const(0),
        i_PHASELOADREG=Const(0), i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
        o_CLKOP=output, o_LOCK=locked)
