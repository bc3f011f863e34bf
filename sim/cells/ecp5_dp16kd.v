// Simulation model of the ECP5's 18 Kbit block RAM, DP16KD, for netlist runs (Yosys ships none:
// its cells_sim.v declares DP16KD as a black box).
//
// The array is 1024 words of 18 bits (two 9-bit bytes: bits 0-8 and 9-17). A port of width 18 reads
// and writes the word at AD[13:4], AD[1:0] enabling its bytes on a write; width 9, byte AD[3] of the
// word at AD[13:4]. Width 36 joins words 2k (bits 0-17, on DIA/DOA) and 2k + 1 (bits 18-35, on
// DIB/DOB) for k = AD[13:5]: port A only writes it, bytes enabled by ADA[3:0] (byte 0 = bits 0-8),
// and port B only reads it, onto DOA and DOB (the pseudo dual-port mode, Lattice's PDPW16KD).
// INITVAL_jj holds words 16 jj .. 16 jj + 15, word i in bits 20 i .. 20 i + 17.
//
// On a rising clock with CE and the chip select matching (CSDECODE "0b000": CS pins low), a port that
// writes updates the array and its output follows WRITEMODE (NORMAL: unchanged, WRITETHROUGH: the new
// data, READBEFOREWRITE: the old data); a port that reads puts the word on its output (REGMODE "NOREG":
// no output register). RST clears the port's output. A read of a word the other port writes in the
// same cycle gives the old data. Covered: widths 9, 18 and 36, NOREG, clocks not inverted, CSDECODE
// "0b000"; sim/netlist.py refuses netlists that use DP16KD otherwise.

module DP16KD (
    input DIA0, DIA1, DIA2, DIA3, DIA4, DIA5, DIA6, DIA7, DIA8, DIA9, DIA10, DIA11, DIA12, DIA13, DIA14, DIA15, DIA16, DIA17, ADA0, ADA1, ADA2, ADA3, ADA4, ADA5, ADA6, ADA7, ADA8, ADA9, ADA10, ADA11, ADA12, ADA13, CEA, OCEA, CLKA, WEA, CSA0, CSA1, CSA2, RSTA, DIB0, DIB1, DIB2, DIB3, DIB4, DIB5, DIB6, DIB7, DIB8, DIB9, DIB10, DIB11, DIB12, DIB13, DIB14, DIB15, DIB16, DIB17, ADB0, ADB1, ADB2, ADB3, ADB4, ADB5, ADB6, ADB7, ADB8, ADB9, ADB10, ADB11, ADB12, ADB13, CEB, OCEB, CLKB, WEB, CSB0, CSB1, CSB2, RSTB,
    output DOA0, DOA1, DOA2, DOA3, DOA4, DOA5, DOA6, DOA7, DOA8, DOA9, DOA10, DOA11, DOA12, DOA13, DOA14, DOA15, DOA16, DOA17, DOB0, DOB1, DOB2, DOB3, DOB4, DOB5, DOB6, DOB7, DOB8, DOB9, DOB10, DOB11, DOB12, DOB13, DOB14, DOB15, DOB16, DOB17
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter INIT_DATA = "STATIC";
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0}, dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0}, adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire selected_a = CEA && !CSA0 && !CSA1 && !CSA2, selected_b = CEB && !CSB0 && !CSB1 && !CSB2;
    // DOA is port A's output, or in a width-36 read the low half of port B's
    reg [17:0] doa = 18'h0, dob = 18'h0, dob_low = 18'h0;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = DATA_WIDTH_B == 36 ? dob_low : doa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;

    reg [17:0] words [0:1023];
    integer i;
    initial begin
        for (i = 0; i < 16; i = i + 1) words[0 + i] = INITVAL_00[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[16 + i] = INITVAL_01[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[32 + i] = INITVAL_02[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[48 + i] = INITVAL_03[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[64 + i] = INITVAL_04[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[80 + i] = INITVAL_05[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[96 + i] = INITVAL_06[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[112 + i] = INITVAL_07[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[128 + i] = INITVAL_08[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[144 + i] = INITVAL_09[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[160 + i] = INITVAL_0A[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[176 + i] = INITVAL_0B[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[192 + i] = INITVAL_0C[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[208 + i] = INITVAL_0D[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[224 + i] = INITVAL_0E[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[240 + i] = INITVAL_0F[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[256 + i] = INITVAL_10[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[272 + i] = INITVAL_11[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[288 + i] = INITVAL_12[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[304 + i] = INITVAL_13[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[320 + i] = INITVAL_14[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[336 + i] = INITVAL_15[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[352 + i] = INITVAL_16[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[368 + i] = INITVAL_17[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[384 + i] = INITVAL_18[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[400 + i] = INITVAL_19[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[416 + i] = INITVAL_1A[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[432 + i] = INITVAL_1B[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[448 + i] = INITVAL_1C[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[464 + i] = INITVAL_1D[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[480 + i] = INITVAL_1E[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[496 + i] = INITVAL_1F[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[512 + i] = INITVAL_20[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[528 + i] = INITVAL_21[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[544 + i] = INITVAL_22[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[560 + i] = INITVAL_23[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[576 + i] = INITVAL_24[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[592 + i] = INITVAL_25[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[608 + i] = INITVAL_26[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[624 + i] = INITVAL_27[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[640 + i] = INITVAL_28[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[656 + i] = INITVAL_29[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[672 + i] = INITVAL_2A[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[688 + i] = INITVAL_2B[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[704 + i] = INITVAL_2C[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[720 + i] = INITVAL_2D[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[736 + i] = INITVAL_2E[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[752 + i] = INITVAL_2F[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[768 + i] = INITVAL_30[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[784 + i] = INITVAL_31[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[800 + i] = INITVAL_32[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[816 + i] = INITVAL_33[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[832 + i] = INITVAL_34[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[848 + i] = INITVAL_35[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[864 + i] = INITVAL_36[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[880 + i] = INITVAL_37[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[896 + i] = INITVAL_38[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[912 + i] = INITVAL_39[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[928 + i] = INITVAL_3A[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[944 + i] = INITVAL_3B[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[960 + i] = INITVAL_3C[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[976 + i] = INITVAL_3D[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[992 + i] = INITVAL_3E[20 * i +: 18];
        for (i = 0; i < 16; i = i + 1) words[1008 + i] = INITVAL_3F[20 * i +: 18];
    end

    // Writes go byte by byte (no read-modify-write of the array: a write's data never depends
    // on a read of it, so that the simulator settles the logic in one pass).
    // port A: the word (and byte) addressed, the bytes it writes, the word as written
    wire [9:0] word_a = DATA_WIDTH_A == 36 ? {ada[13:5], 1'b0} : ada[13:4];
    wire [17:0] old_a = words[word_a];
    wire [17:0] data_a = DATA_WIDTH_A == 9 ? {dia[8:0], dia[8:0]} : dia;
    wire [1:0] lanes_a = DATA_WIDTH_A == 9 ? {ada[3], !ada[3]} : ada[1:0];
    wire [17:0] new_a = {lanes_a[1] ? data_a[17:9] : old_a[17:9], lanes_a[0] ? data_a[8:0] : old_a[8:0]};
    wire [17:0] read_a = DATA_WIDTH_A == 9 ? (ada[3] ? {9'h0, old_a[17:9]} : {9'h0, old_a[8:0]}) : old_a;
    wire [17:0] written_a = DATA_WIDTH_A == 9 ? (ada[3] ? {9'h0, new_a[17:9]} : {9'h0, new_a[8:0]}) : new_a;

    // port B likewise (it never writes in width 36)
    wire [9:0] word_b = DATA_WIDTH_B == 36 ? {adb[13:5], 1'b0} : adb[13:4];
    wire [17:0] old_b = words[word_b], old_b_high = words[word_b | 10'd1];
    wire [17:0] data_b = DATA_WIDTH_B == 9 ? {dib[8:0], dib[8:0]} : dib;
    wire [1:0] lanes_b = DATA_WIDTH_B == 9 ? {adb[3], !adb[3]} : adb[1:0];
    wire [17:0] new_b = {lanes_b[1] ? data_b[17:9] : old_b[17:9], lanes_b[0] ? data_b[8:0] : old_b[8:0]};
    wire [17:0] read_b = DATA_WIDTH_B == 9 ? (adb[3] ? {9'h0, old_b[17:9]} : {9'h0, old_b[8:0]}) : old_b;
    wire [17:0] written_b = DATA_WIDTH_B == 9 ? (adb[3] ? {9'h0, new_b[17:9]} : {9'h0, new_b[8:0]}) : new_b;

    always @(posedge CLKA) begin
        if (selected_a && WEA) begin
            if (lanes_a[0])
                words[word_a][8:0] <= data_a[8:0];
            if (lanes_a[1])
                words[word_a][17:9] <= data_a[17:9];
            if (DATA_WIDTH_A == 36 && ada[2])
                words[word_a | 10'd1][8:0] <= dib[8:0];
            if (DATA_WIDTH_A == 36 && ada[3])
                words[word_a | 10'd1][17:9] <= dib[17:9];
        end
        if (RSTA)
            doa <= 18'h0;
        else if (selected_a && DATA_WIDTH_A != 36) begin
            if (!WEA)
                doa <= read_a;
            else if (WRITEMODE_A == "WRITETHROUGH")
                doa <= written_a;
            else if (WRITEMODE_A == "READBEFOREWRITE")
                doa <= read_a;
        end
    end

    always @(posedge CLKB) begin
        if (selected_b && WEB && DATA_WIDTH_B != 36) begin
            if (lanes_b[0])
                words[word_b][8:0] <= data_b[8:0];
            if (lanes_b[1])
                words[word_b][17:9] <= data_b[17:9];
        end
        if (RSTB) begin
            dob <= 18'h0;
            dob_low <= 18'h0;
        end else if (selected_b) begin
            if (DATA_WIDTH_B == 36) begin
                dob_low <= old_b;
                dob <= old_b_high;
            end else if (!WEB)
                dob <= read_b;
            else if (WRITEMODE_B == "WRITETHROUGH")
                dob <= written_b;
            else if (WRITEMODE_B == "READBEFOREWRITE")
                dob <= read_b;
        end
    end
endmodule
