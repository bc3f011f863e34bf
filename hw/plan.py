"""The build plan: whether and how a model fits a board, decided before any tool runs.

It decides the engine's folding (P x S: given, or the fastest that fits), where the weights go
(block RAM or the UP5K's SPRAM), whether that engine fits the board's FPGA (block RAM, SPRAM and
logic, estimated from the engine's memories and lanes; nextpnr has the last word), and the link's
clock (the PLL's settings and the UART's divisor for a baud rate). A plan that cannot be made
raises :class:`PlanError` with the numbers, and, for an engine that does not fit, a folding that does.
"""

from model.errors import BnnError

from layout.compiler import compile_model, foldings

from .engine import memory_attrs, memory_shapes
from .pll import pll_settings
from .spram import check_spram_fit
from .uart import uart_divisor

WEIGHT_STORES = ("auto", "bram", "spram")
MAX_BAUD_ERROR = 0.03            # a UART tolerates about 4-5% between both ends in all
MIN_BAUD = 9600                  # slower lines only widen the UART's counters (and nobody wants them)
MIN_CYCLES_PER_BIT = 5           # the receiver samples mid-bit after a 2-flip-flop synchroniser: 4 leaves no margin
# Block RAM shapes (depth, width) each primitive can take as a simple dual-port memory.
BLOCK_RAM_SHAPES = {
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),                               # SB_RAM40_4K
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),        # DP16KD
}


class PlanError(BnnError):
    """The model does not fit the board, or the serial line cannot run at the rate asked."""


def block_rams(family, depth, width):
    """Block RAM primitives a ``depth`` x ``width`` memory takes: the cheapest tiling by one shape."""
    return min(-(-depth // d) * -(-width // w) for d, w in BLOCK_RAM_SHAPES[family])


def block_ram_estimate(board, params, *, weights_in_spram=False):
    """``{memory: block RAMs}`` for the engine of ``params`` on ``board`` (0 for memories it
    holds in flip-flops), and the link's two (``link_payload``: the identity, model id and STATUS
    copy, :class:`hw.sender.ResponseSender`; ``link_counters``: the status counters,
    :class:`hw.counters.CounterBank`). A conv engine reads its input and activation
    memories on two ports per gathered window row, for each of which Yosys takes a copy of their
    block RAMs."""
    def rams(name, depth, width):
        if memory_attrs(depth, width, board.logic_memory_bits)["ram_style"] != "block":
            return 0
        copies = 2 * params.gather_rows if params.conv and name in ("input_memory", "activation_memory") else 1
        return copies * block_rams(board.device.family, depth, width)
    estimate = {name: rams(name, depth, width)
                for name, (depth, width) in memory_shapes(params, weights_in_spram=weights_in_spram).items()}
    estimate["link_payload"] = estimate["link_counters"] = 1
    return estimate


def logic_estimate(board, params):
    """Logic cells (iCE40) or LUT4s (ECP5) a board top with this engine takes, from below: 4.2 per
    lane of the P x S array (XNOR, popcount tree, weight register), 2 per bit of a memory held in
    flip-flops, 3,400 for the rest (the serial link alone takes about 1,800 iCE40 cells). Fitted
    from below to the iCE40 builds of bench/boards.py and `bnn build` (4x16 to 8x32, 4,600-5,900
    cells; it comes out 3-20% under them), so it refuses only what cannot fit; nextpnr has the last
    word (an overused resource is then reported as such)."""
    flops = sum(depth * width for depth, width in memory_shapes(params).values()
                if memory_attrs(depth, width, board.logic_memory_bits)["ram_style"] != "block")
    return int(4.2 * params.pe * params.simd + 2 * flops + 3400)


def check_fit(compiled, board, *, weights_in_spram=False):
    """Why ``compiled`` cannot fit ``board``'s FPGA, each reason with both numbers (empty if it fits)."""
    params, device = compiled.params, board.device
    rams = sum(block_ram_estimate(board, params, weights_in_spram=weights_in_spram).values())
    luts = logic_estimate(board, params)
    problems = []
    if weights_in_spram:
        if not device.sprams:
            problems.append(f"the {device.name} has no SPRAM for the weights")
        else:
            try:
                check_spram_fit(params.weight_depth, params.pe * params.simd)
            except ValueError as e:
                problems.append(str(e))
    if rams > device.block_rams:
        problems.append(f"needs {rams} block RAMs, the {device.name} has {device.block_rams}")
    if luts > device.luts:
        problems.append(f"needs at least about {luts} LUT4s, the {device.name} has {device.luts}")
    return problems


def place_weights(compiled, board, weights="auto"):
    """``(weights_in_spram, problems)``: where the weights go (``weights`` is one of
    :data:`WEIGHT_STORES`; "auto" takes block RAM if the engine fits that way, else SPRAM if the
    board has it and the engine fits that way), and why the engine does not fit (empty if it does)."""
    if weights not in WEIGHT_STORES:
        raise PlanError(f"weights go to one of {', '.join(WEIGHT_STORES)}, not {weights!r}")
    if weights != "auto":
        in_spram = weights == "spram"
        return in_spram, check_fit(compiled, board, weights_in_spram=in_spram)
    in_block_ram = check_fit(compiled, board)
    if in_block_ram and board.device.sprams and not check_fit(compiled, board, weights_in_spram=True):
        return True, []
    return False, in_block_ram


def compile_board_model(model, board, *, pe, simd, tree_stages):
    """:func:`layout.compiler.compile_model` for ``board``'s engine (its :attr:`hw.boards.Board.gather_rows`)."""
    capacity = None if board.gather_rows is None else {"gather_rows": board.gather_rows}
    return compile_model(model, pe=pe, simd=simd, tree_stages=tree_stages, capacity=capacity)


def fitting_folding(model, board, *, tree_stages, weights="auto"):
    """The fastest P x S (:func:`layout.compiler.foldings`) whose engine fits ``board`` with its
    weights placed as :func:`place_weights` does, or None; ties go to fewer lanes."""
    fitting = []
    for pe, simd in foldings():
        compiled = compile_board_model(model, board, pe=pe, simd=simd, tree_stages=tree_stages)
        if not place_weights(compiled, board, weights)[1]:
            fitting.append((compiled.cycles_per_frame, pe * simd, pe, simd))
    return min(fitting)[2:] if fitting else None


def engine_folding(model, board, *, pe=None, simd=None, weights="auto"):
    """``(pe, simd)`` of ``model``'s engine on ``board``: both given, or, with neither, the fastest
    that fits with its weights placed as ``weights`` says (:func:`fitting_folding`). Raises
    :class:`PlanError` if only one is given or no folding fits."""
    if (pe is None) != (simd is None):
        raise PlanError("give both --pe and --simd, or neither (the fastest folding that fits the board)")
    if pe is not None:
        return pe, simd
    chosen = fitting_folding(model, board, tree_stages=board.tree_stages, weights=weights)
    if chosen is None:
        raise PlanError(f"no P x S engine of this model fits {board.name}")
    return chosen


def link_clock(board, clock_mhz, baud):
    """``(pll, divisor, baud_error)``: the PLL settings for ``clock_mhz`` (default: the board's
    clock) and the serial line at ``baud`` on that clock. Raises :class:`PlanError` for a baud
    rate outside ``MIN_BAUD``..clock / ``MIN_CYCLES_PER_BIT`` or more than ``MAX_BAUD_ERROR`` off."""
    pll = pll_settings(board.device.family, board.clock_mhz_in(board.make_platform()), clock_mhz or board.clock_mhz)
    fastest = int(pll.clock_hz // MIN_CYCLES_PER_BIT)
    if not MIN_BAUD <= baud <= fastest:
        raise PlanError(f"--baud must lie in {MIN_BAUD}..{fastest} at {pll.output_mhz:.2f} MHz "
                        f"({MIN_CYCLES_PER_BIT} clock cycles per bit at least), not {baud}")
    divisor, baud_error = uart_divisor(pll.clock_hz, baud)
    if abs(baud_error) > MAX_BAUD_ERROR:
        raise PlanError(f"{baud} baud is {baud_error:+.1%} off at {pll.output_mhz:.3f} MHz "
                        f"(at most {MAX_BAUD_ERROR:.0%}); pick another --baud or --clock-mhz")
    return pll, divisor, baud_error


def plan_engine(model, board, *, pe, simd, weights="auto"):
    """``(compiled, weights_in_spram)`` of ``model`` for ``board``'s engine at P x S; raises
    :class:`PlanError` with the numbers and a folding that would fit if it does not fit."""
    compiled = compile_board_model(model, board, pe=pe, simd=simd, tree_stages=board.tree_stages)
    in_spram, problems = place_weights(compiled, board, weights)
    if problems:
        hint = fitting_folding(model, board, tree_stages=board.tree_stages, weights=weights)
        advice = f"; --pe {hint[0]} --simd {hint[1]} fits" if hint else "; no P x S fits this board"
        raise PlanError(f"{pe} x {simd} engine does not fit {board.name}: {'; '.join(problems)}{advice}")
    return compiled, in_spram

