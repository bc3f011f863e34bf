// Included by the generated translation unit before the design (see sim/cxxrtl.py).
#include <cxxrtl/cxxrtl.h>

// True if a memory write mask (a value or a CXXRTL expression) has no bit set. sim/cxxrtl.py
// guards every `memory.update(...)` of the generated design with it: Amaranth write ports turn
// their enable into the mask, so CXXRTL would otherwise build the data and queue a write that
// changes nothing on every cycle.
template<class Mask>
bool bnn_mask_is_zero(const Mask &mask) {
	return mask.val().is_zero();
}
