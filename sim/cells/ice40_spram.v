// Simulation model of the iCE40 UP5K's single-port RAM, SB_SPRAM256KA, for netlist runs.
//
// 16384 words of 16 bits. On a rising CLOCK with CHIPSELECT (and neither STANDBY nor a power-down):
// WREN high writes the nibbles of DATAIN that MASKWREN selects (bit n: bits 4n+3..4n) at ADDRESS;
// WREN low puts the word at ADDRESS on DATAOUT, which holds it until the next read. SLEEP, or
// POWEROFF low, clears DATAOUT (here at the next clock edge). Words start at 0. Yosys' model in
// cells_sim.v also sets every word to x on a power-off, a loop that takes it about half a minute
// to read; the engine never powers its SPRAMs off (hw/spram.py ties SLEEP low and POWEROFF high).
module SB_SPRAM256KA (
    input [13:0] ADDRESS,
    input [15:0] DATAIN,
    input [3:0] MASKWREN,
    input WREN, CHIPSELECT, CLOCK, STANDBY, SLEEP, POWEROFF,
    output reg [15:0] DATAOUT
);
    reg [15:0] words [0:16383];
    wire active = CHIPSELECT && !STANDBY && !SLEEP && POWEROFF;

    always @(posedge CLOCK) begin
        if (SLEEP || !POWEROFF)
            DATAOUT <= 16'h0000;
        else if (active && !WREN)
            DATAOUT <= words[ADDRESS];
        if (active && WREN) begin
            if (MASKWREN[0]) words[ADDRESS][3:0] <= DATAIN[3:0];
            if (MASKWREN[1]) words[ADDRESS][7:4] <= DATAIN[7:4];
            if (MASKWREN[2]) words[ADDRESS][11:8] <= DATAIN[11:8];
            if (MASKWREN[3]) words[ADDRESS][15:12] <= DATAIN[15:12];
        end
    end
endmodule
