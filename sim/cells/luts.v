// Look-up tables as one table lookup each, for netlist runs. Yosys' models (cells_sim.v) build a
// LUT as a tree of multiplexers over its INIT bits; once the netlist is flattened and split into
// one-bit wires, that tree becomes a dozen one-bit values per LUT in the simulator's evaluation
// function, which the C++ compiler takes many minutes to allocate registers for. Indexing INIT by
// the inputs is the same function (input A, or I0, is the least significant index bit).

// ECP5 (Yosys' ecp5/common_sim.vh)
module LUT4(input A, B, C, D, output Z);
    parameter [15:0] INIT = 16'h0000;
    assign Z = INIT[{D, C, B, A}];
endmodule

module LUT2(input A, B, output Z);
    parameter [3:0] INIT = 4'h0;
    assign Z = INIT[{B, A}];
endmodule

// iCE40 (Yosys' ice40/cells_sim.v): an input left unconnected reads 0
module SB_LUT4(output O, input I0 = 1'b0, I1 = 1'b0, I2 = 1'b0, I3 = 1'b0);
    parameter [15:0] LUT_INIT = 0;
    assign O = LUT_INIT[{I3, I2, I1, I0}];
endmodule
