// Batch driver of a CXXRTL model with one input stream and one output stream.
//
// Compiled by sim/cxxrtl.py as one translation unit, after a generated prelude that includes the
// design and defines the port macros (BNN_IN_PAYLOAD, BNN_IN_VALID, BNN_IN_READY, BNN_OUT_PAYLOAD,
// BNN_OUT_VALID, BNN_OUT_READY) and the switches BNN_HAS_RST, BNN_VCD, BNN_ONE_DELTA and
// BNN_EDGE_DETECTOR (the design has flip-flops on `clk`, so CXXRTL keeps `prev_p_clk`). Python
// crosses into this file once per batch of many cycles through the C functions at the end; the
// per-cycle protocol is the one documented in sim/cxxrtl.py (cycle n is the n-th rising clock
// edge; inputs are applied before it, transfers are the valid & ready pairs sampled at it).

#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <utility>

#if BNN_VCD
#include <cxxrtl/cxxrtl_vcd.h>
#endif

namespace {

using cxxrtl::chunk_t;

// Outputs are `wire<N>` when registered and `value<N>` when combinational; read either the same way.
template<size_t Bits>
const cxxrtl::value<Bits> &current(const cxxrtl::value<Bits> &v) { return v; }

template<size_t Bits>
const cxxrtl::value<Bits> &current(const cxxrtl::wire<Bits> &w) { return w.curr; }

template<size_t Bits>
void load_chunks(cxxrtl::value<Bits> &v, const chunk_t *src) {
	for (size_t k = 0; k < cxxrtl::value<Bits>::chunks; k++)
		v.data[k] = src[k];
}

template<size_t Bits>
void store_chunks(const cxxrtl::value<Bits> &v, chunk_t *dst) {
	for (size_t k = 0; k < cxxrtl::value<Bits>::chunks; k++)
		dst[k] = v.data[k];
}

// The payload types, named without building a design instance.
using in_payload_t = std::decay_t<decltype(current(std::declval<cxxrtl_design::p_top &>().BNN_IN_PAYLOAD))>;
using out_payload_t = std::decay_t<decltype(current(std::declval<cxxrtl_design::p_top &>().BNN_OUT_PAYLOAD))>;

// A handshake pattern: entry `cycle % length` applies on a cycle; no entries means always 1.
struct pattern {
	const uint8_t *bits = nullptr;
	uint64_t length = 0;

	bool at(uint64_t cycle) const { return length == 0 || bits[cycle % length]; }
};

struct stream_sim {
	cxxrtl_design::p_top top;
	uint64_t cycle = 0;
	pattern in_valid, out_ready;
	// The producer has offered the token at the head of the caller's buffer and it has not been
	// taken yet; a valid is held until its transfer, across calls.
	bool holding = false;
	bool unconverged = false;
#if BNN_VCD
	cxxrtl::debug_items items;
	cxxrtl::vcd_writer vcd;
	FILE *vcd_file = nullptr;
	bool vcd_on = false;
#endif

	stream_sim() {
#if BNN_HAS_RST
		top.p_rst.set(false);
#endif
		top.p_clk.set(false);
		top.step();
#if BNN_VCD
		top.debug_info(&items, /*scopes=*/nullptr, "");
		vcd.timescale(1, "ns");
		vcd.add_without_memories(items);
#endif
	}

	// Evaluate the cycle whose inputs are applied: settle the logic, let `sample` look at the
	// values before the edge, then take the rising edge.
	template<class Sample>
	void clock(Sample sample) {
#if BNN_VCD || !BNN_ONE_DELTA
		// Settle before the edge and after it: the waveform shows settled logic on both sides,
		// and a design with feedback wires gets the delta cycles it needs.
		top.p_clk.set(false);
		top.step();
		sample_vcd(2 * cycle);
		sample();
		top.p_clk.set(true);
		top.step();
		sample_vcd(2 * cycle + 1);
#else
		// One evaluation per cycle: a flattened design without combinational feedback settles
		// in one delta, so the values before the edge are those the edge itself is computed
		// from; `commit` publishes the edge. The clock then stays high: clearing the edge
		// detector's copy of it makes the next evaluation a rising edge again, and saves a
		// second `commit` per cycle for the falling edge.
		top.p_clk.set(true);
#if BNN_EDGE_DETECTOR
		top.prev_p_clk.set(false);
#endif
		if (!top.eval())
			unconverged = true;
		sample();
		top.commit();
#endif
	}

	void sample_vcd(uint64_t time) {
#if BNN_VCD
		if (!vcd_on || vcd_file == nullptr)
			return;
		vcd.sample(time);
		if (vcd.buffer.size() > (1u << 20))
			flush_vcd();
#else
		(void)time;
#endif
	}

	void flush_vcd() {
#if BNN_VCD
		if (vcd_file != nullptr) {
			fwrite(vcd.buffer.data(), 1, vcd.buffer.size(), vcd_file);
			fflush(vcd_file);
		}
		vcd.buffer.clear();
#endif
	}
};

}  // namespace

#define BNN_EXPORT __attribute__((visibility("default")))

extern "C" {

struct bnn_run_result {
	uint64_t cycles;     // cycles simulated by this call
	uint64_t consumed;   // input tokens transferred by this call
	uint64_t produced;   // output transfers recorded by this call
	uint64_t unconverged; // 1 if the logic ever failed to settle in one delta (results invalid)
};

BNN_EXPORT size_t bnn_in_chunks() { return in_payload_t::chunks; }
BNN_EXPORT size_t bnn_out_chunks() { return out_payload_t::chunks; }
BNN_EXPORT void *bnn_create() { return new stream_sim; }

BNN_EXPORT void bnn_destroy(void *handle) {
	stream_sim *sim = static_cast<stream_sim *>(handle);
#if BNN_VCD
	sim->flush_vcd();
	if (sim->vcd_file != nullptr)
		fclose(sim->vcd_file);
#endif
	delete sim;
}

BNN_EXPORT uint64_t bnn_cycle(void *handle) { return static_cast<stream_sim *>(handle)->cycle; }

// Open `path` for the waveform (0 on success). Samples are written only while enabled.
BNN_EXPORT int bnn_vcd_open(void *handle, const char *path) {
#if BNN_VCD
	stream_sim *sim = static_cast<stream_sim *>(handle);
	if (sim->vcd_file != nullptr)
		return -1;
	sim->vcd_file = fopen(path, "w");
	return sim->vcd_file == nullptr ? -1 : 0;
#else
	(void)handle; (void)path;
	return -1;
#endif
}

BNN_EXPORT void bnn_vcd_enable(void *handle, int on) {
#if BNN_VCD
	stream_sim *sim = static_cast<stream_sim *>(handle);
	sim->vcd_on = on != 0;
	sim->flush_vcd();
#else
	(void)handle; (void)on;
#endif
}

// Set the handshake patterns: on cycle `c` the producer may start offering a token if
// `in_valid[c % in_length]` is non-zero and the consumer is ready if `out_ready[c % out_length]`
// is non-zero; a length of 0 means always. The arrays must outlive the runs that use them.
BNN_EXPORT void bnn_set_patterns(void *handle, const uint8_t *in_valid, uint64_t in_length,
                                 const uint8_t *out_ready, uint64_t out_length) {
	stream_sim *sim = static_cast<stream_sim *>(handle);
	sim->in_valid = pattern{in_valid, in_length};
	sim->out_ready = pattern{out_ready, out_length};
}

// Simulate at most `max_cycles` cycles. The producer offers `tokens[0..count)` in order (each
// `bnn_in_chunks()` 32-bit chunks, least significant first): while it holds no token, it offers
// the next one on a cycle whose valid pattern entry is 1, then holds it until the transfer.
// Every input transfer writes its absolute cycle to `in_cycles` (if not null; `count` entries);
// every output transfer appends its cycle to `out_cycles` and its payload to `out_payloads`.
// The call stops early, before simulating a cycle, once `stop_consumed` tokens were taken or
// `max_outputs` transfers recorded.
BNN_EXPORT void bnn_run(void *handle, const chunk_t *tokens, uint64_t count, uint64_t max_cycles,
                        uint64_t stop_consumed, uint64_t max_outputs, uint64_t *in_cycles,
                        uint64_t *out_cycles, chunk_t *out_payloads, bnn_run_result *result) {
	stream_sim *sim = static_cast<stream_sim *>(handle);
	auto &top = sim->top;
	uint64_t consumed = 0, produced = 0, n = 0;
	for (; n < max_cycles && consumed < stop_consumed && produced < max_outputs; n++) {
		const uint64_t cycle = sim->cycle;
		if (!sim->holding && consumed < count && sim->in_valid.at(cycle)) {
			load_chunks(top.BNN_IN_PAYLOAD, tokens + consumed * in_payload_t::chunks);
			sim->holding = true;
		}
		const bool ready = sim->out_ready.at(cycle);
		top.BNN_IN_VALID.set(sim->holding);
		top.BNN_OUT_READY.set(ready);
		bool taken = false;
		sim->clock([&] {
			taken = sim->holding && current(top.BNN_IN_READY).bit(0);
			if (ready && current(top.BNN_OUT_VALID).bit(0)) {
				out_cycles[produced] = cycle;
				store_chunks(current(top.BNN_OUT_PAYLOAD),
				             out_payloads + produced * out_payload_t::chunks);
				produced++;
			}
		});
		if (taken) {
			if (in_cycles != nullptr)
				in_cycles[consumed] = cycle;
			consumed++;
			sim->holding = false;
		}
		sim->cycle++;
	}
	result->cycles = n;
	result->consumed = consumed;
	result->produced = produced;
	result->unconverged = sim->unconverged;
}

}
