//! Quantized matrix products for the engine on x86-64 CPUs (AVX-512 VNNI, or AVX2), written here on
//! top of the GGUF block formats instead of candle's kernels, for three reasons measured on
//! the catalog's models:
//!
//! - candle's repacked kernels keep the weights twice (the GGUF blocks and the repacked
//!   copy), which put peak memory at 1.3-3.5x llama.cpp's;
//! - candle has no fast path for Q4_1, Q5_0 and Q5_1 (SmolLM2 is Q4_1, the 0.5B model mostly
//!   Q5_0), so they had to be converted to Q8_0, which is up to twice as large;
//! - its repacked Q8_0 kernel needs rows of a multiple of 256 values, and padding the
//!   0.5B model's 896-wide rows to 1,024 costs memory and time.
//!
//! Every supported format is unpacked once, at load, into one layout: tiles of 16 rows,
//! each 32 (or 16) consecutive values of a row a *block* with its own scale. A block's values
//! are kept as unsigned 4-bit codes (nibbles) plus up to two high-bit planes, or as bytes
//! (Q8_0, stored with +128), so the product of 4 of them with 4 signed 8-bit activations is
//! one lane of `vpdpbusd`, for 16 rows at once (with AVX2, `vpmaddubsw` and `vpmaddwd` for
//! 8 rows at once, each tile in two halves). Per-block scales are kept as the source
//! stores them (f16, or a small integer times a per-256-values f32 for the K-quants), so the
//! packed weights take about the space of the file and decode to exactly the values
//! candle's `dequantize` gives. Activations are quantized to 8 bits per 32 values, as
//! llama.cpp's Q8_0/Q8_1 do.
//!
//! Where the CPU has neither, or a tensor has another format, the engine uses candle's
//! `QMatMul` instead (`Packed::read` returns `Ok(None)`).

use candle_core::quantized::GgmlDType;
use half::f16;
use rayon::prelude::*;

/// Output rows per tile: one 512-bit register of i32 or f32 lanes.
const TILE: usize = 16;
/// Source bytes read and packed at a time at load.
const READ_BYTES: usize = 4 << 20;
/// Values per activation block (one scale each).
const ACT_BLOCK: usize = 32;

/// How a GGUF format maps onto the packed layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Format {
    /// Bits per code: 4, 5 or 6 (nibbles plus high-bit planes) or 8 (bytes).
    bits: usize,
    /// Values per scale: 32, or 16 for Q6_K.
    block: usize,
    /// Each block has an additive minimum (Q4_1, Q5_1, Q4_K, Q5_K); otherwise the codes are
    /// centred by subtracting `offset`.
    mins: bool,
    offset: i32,
    /// Scales are a signed byte per block times an f32 per 256 values (the K-quants);
    /// otherwise an f16 per block.
    superblocks: bool,
    /// Bytes of one source block in the GGUF data, and the values it holds.
    source_bytes: usize,
    source_values: usize,
}

impl Format {
    fn of(dtype: GgmlDType) -> Option<Format> {
        let simple = |bits, mins, offset, source_bytes| Format {
            bits,
            block: 32,
            mins,
            offset,
            superblocks: false,
            source_bytes,
            source_values: 32,
        };
        let k_quant = |bits, block, mins, offset, source_bytes| Format {
            bits,
            block,
            mins,
            offset,
            superblocks: true,
            source_bytes,
            source_values: 256,
        };
        Some(match dtype {
            GgmlDType::Q4_0 => simple(4, false, 8, 18),
            GgmlDType::Q4_1 => simple(4, true, 0, 20),
            GgmlDType::Q5_0 => simple(5, false, 16, 22),
            GgmlDType::Q5_1 => simple(5, true, 0, 24),
            GgmlDType::Q8_0 => simple(8, false, 128, 34),
            GgmlDType::Q4K => k_quant(4, 32, true, 0, 144),
            GgmlDType::Q5K => k_quant(5, 32, true, 0, 176),
            GgmlDType::Q6K => k_quant(6, 16, false, 32, 210),
            _ => return None,
        })
    }

    /// Values that share one header: 256 for the K-quants, one block otherwise.
    fn superblock(&self) -> usize {
        if self.superblocks { 256 } else { self.block }
    }

    /// The per-superblock header of a tile: f32 scale (and minimum scale) per row.
    fn header_bytes(&self) -> usize {
        if self.superblocks {
            TILE * 4 * (1 + usize::from(self.mins))
        } else {
            0
        }
    }

    /// Scale (and minimum) bytes of one block of a tile.
    fn scale_bytes(&self) -> usize {
        let per_row = if self.superblocks { 1 } else { 2 };
        TILE * per_row * (1 + usize::from(self.mins))
    }

    /// Code bytes of one block of a tile: bytes, or nibbles plus one u64 mask per group of
    /// four values and high bit.
    fn code_bytes(&self) -> usize {
        if self.bits == 8 {
            TILE * self.block
        } else {
            TILE * self.block / 2 + (self.bits - 4) * (self.block / 4) * 8
        }
    }

    fn block_bytes(&self) -> usize {
        self.scale_bytes() + self.code_bytes()
    }

    fn superblock_bytes(&self) -> usize {
        self.header_bytes() + self.superblock() / self.block * self.block_bytes()
    }
}

/// One block of one row, decoded from the source: codes `0..2^bits`. The value of code `q`
/// is `scale * (q - offset)`, or `scale * q + min` for formats with minima. For the
/// K-quants, `scale = super_scale * sub_scale` and `min = super_min * sub_min`, and the
/// parts are kept too.
#[derive(Clone, Copy, Default)]
struct Block {
    codes: [u8; 32],
    scale: f32,
    min: f32,
    super_scale: f32,
    super_min: f32,
    sub_scale: i8,
    sub_min: i8,
}

/// A weight matrix `[rows, columns]` in the packed layout.
pub(crate) struct Packed {
    rows: usize,
    columns: usize,
    format: Format,
    data: Vec<u8>,
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// The 6-bit scale and minimum of sub-block `j` of a Q4_K/Q5_K superblock.
fn k_scale_min(j: usize, scales: &[u8]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// The blocks of one source block (`format.source_values` values) of `dtype`.
fn decode(dtype: GgmlDType, source: &[u8], out: &mut Vec<Block>) {
    match dtype {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 => {
            let with_min = matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1);
            let mut at = if with_min { 4 } else { 2 };
            let high = if matches!(dtype, GgmlDType::Q5_0 | GgmlDType::Q5_1) {
                at += 4;
                u32::from_le_bytes([
                    source[at - 4],
                    source[at - 3],
                    source[at - 2],
                    source[at - 1],
                ])
            } else {
                0
            };
            let mut block = Block {
                scale: f16_at(source, 0),
                min: if with_min { f16_at(source, 2) } else { 0.0 },
                ..Block::default()
            };
            // Value i is the low nibble of byte i, value i + 16 its high nibble; bit i of
            // `high` is the fifth bit of value i.
            for (i, &byte) in source[at..at + 16].iter().enumerate() {
                block.codes[i] = (byte & 15) | ((((high >> i) & 1) as u8) << 4);
                block.codes[i + 16] = (byte >> 4) | ((((high >> (i + 16)) & 1) as u8) << 4);
            }
            out.push(block);
        }
        GgmlDType::Q8_0 => {
            let mut block = Block {
                scale: f16_at(source, 0),
                ..Block::default()
            };
            for (code, &byte) in block.codes.iter_mut().zip(&source[2..34]) {
                // Signed to unsigned: +128.
                *code = byte ^ 0x80;
            }
            out.push(block);
        }
        GgmlDType::Q4K | GgmlDType::Q5K => {
            let d = f16_at(source, 0);
            let dmin = f16_at(source, 2);
            let scales = &source[4..16];
            let (high, qs) = if dtype == GgmlDType::Q5K {
                (Some(&source[16..48]), &source[48..176])
            } else {
                (None, &source[16..144])
            };
            // Sub-block j holds the low (even j) or high (odd j) nibbles of 32 bytes; bit j
            // of byte l of `high` is the fifth bit of its value l.
            for j in 0..8 {
                let (sc, m) = k_scale_min(j, scales);
                let mut block = Block {
                    scale: d * sc as f32,
                    min: -(dmin * m as f32),
                    super_scale: d,
                    super_min: dmin,
                    sub_scale: sc as i8,
                    sub_min: -(m as i8),
                    ..Block::default()
                };
                let shift = 4 * (j % 2);
                let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                for (l, code) in block.codes.iter_mut().enumerate() {
                    let bit = high.map_or(0, |high| (high[l] >> j) & 1);
                    *code = ((chunk[l] >> shift) & 15) | (bit << 4);
                }
                out.push(block);
            }
        }
        GgmlDType::Q6K => {
            let (low, high, scales) = (&source[..128], &source[128..192], &source[192..208]);
            let d = f16_at(source, 208);
            // 16 blocks of 16 values; value v of the superblock is in block v / 16.
            let mut codes = [0u8; 256];
            for half in 0..2 {
                let (ql, qh) = (&low[64 * half..], &high[32 * half..]);
                for l in 0..32 {
                    let base = 128 * half + l;
                    codes[base] = (ql[l] & 15) | ((qh[l] & 3) << 4);
                    codes[base + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
                    codes[base + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    codes[base + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                }
            }
            for (j, chunk) in codes.chunks_exact(16).enumerate() {
                let sc = scales[j] as i8;
                let mut block = Block {
                    scale: d * sc as f32,
                    super_scale: d,
                    sub_scale: sc,
                    ..Block::default()
                };
                block.codes[..16].copy_from_slice(chunk);
                out.push(block);
            }
        }
        _ => {}
    }
}

impl Packed {
    /// Packs `data`, the GGUF bytes of a `[rows, columns]` tensor of `dtype`; `None` when
    /// the format has no kernel here or the CPU runs none (`level`).
    #[cfg(test)]
    pub(crate) fn new(
        dtype: GgmlDType,
        rows: usize,
        columns: usize,
        data: &[u8],
    ) -> Option<Packed> {
        if data.len() != Packed::source_bytes(dtype, rows, columns)? {
            return None;
        }
        Packed::read(dtype, rows, columns, &mut std::io::Cursor::new(data)).ok()?
    }

    /// Reads the GGUF bytes of a `[rows, columns]` tensor of `dtype` from `reader` and packs
    /// them, a few megabytes at a time, so the source is never held whole; `Ok(None)`, with
    /// nothing read, when the format has no kernel here or the CPU runs none (`level`).
    pub(crate) fn read(
        dtype: GgmlDType,
        rows: usize,
        columns: usize,
        reader: &mut impl std::io::Read,
    ) -> std::io::Result<Option<Packed>> {
        if !available() {
            return Ok(None);
        }
        Packed::read_any_cpu(dtype, rows, columns, reader, READ_BYTES)
    }

    /// The GGUF size of such a tensor, if a kernel takes its format.
    fn source_bytes(dtype: GgmlDType, rows: usize, columns: usize) -> Option<usize> {
        let format = Format::of(dtype)?;
        (columns > 0 && columns.is_multiple_of(format.source_values))
            .then(|| rows * columns / format.source_values * format.source_bytes)
    }

    /// `read` on any CPU (the tests check the layout everywhere), `read_bytes` of the
    /// source at a time (at least one tile's).
    fn read_any_cpu(
        dtype: GgmlDType,
        rows: usize,
        columns: usize,
        reader: &mut impl std::io::Read,
        read_bytes: usize,
    ) -> std::io::Result<Option<Packed>> {
        let (Some(format), Some(_)) = (
            Format::of(dtype),
            Packed::source_bytes(dtype, rows, columns),
        ) else {
            return Ok(None);
        };
        let row_bytes = columns / format.source_values * format.source_bytes;
        let tile_bytes = columns / format.superblock() * format.superblock_bytes();
        let tiles = rows.div_ceil(TILE);
        let mut packed = vec![0u8; tiles * tile_bytes];
        let tiles_per_read = (read_bytes / (TILE * row_bytes)).max(1);
        let mut source = vec![0u8; (tiles_per_read * TILE).min(rows) * row_bytes];
        for (read, chunk) in packed.chunks_mut(tiles_per_read * tile_bytes).enumerate() {
            let first_row = read * tiles_per_read * TILE;
            let count = (rows - first_row).min(tiles_per_read * TILE);
            let source = &mut source[..count * row_bytes];
            reader.read_exact(source)?;
            chunk
                .par_chunks_mut(tile_bytes)
                .enumerate()
                .for_each(|(tile, packed)| {
                    let mut blocks = Vec::with_capacity(columns / format.block);
                    for r in 0..TILE.min(count - tile * TILE) {
                        let row = &source[(tile * TILE + r) * row_bytes..][..row_bytes];
                        blocks.clear();
                        for block in row.chunks_exact(format.source_bytes) {
                            decode(dtype, block, &mut blocks);
                        }
                        write_row(&format, packed, r, &blocks);
                    }
                });
        }
        Ok(Some(Packed {
            rows,
            columns,
            format,
            data: packed,
        }))
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Row `row` as f32 values (embedding lookups of tied weights, and the tests).
    pub(crate) fn row(&self, row: usize, out: &mut [f32]) {
        let format = &self.format;
        let tile_bytes = self.columns / format.superblock() * format.superblock_bytes();
        let tile = &self.data[row / TILE * tile_bytes..][..tile_bytes];
        let r = row % TILE;
        let per_super = format.superblock() / format.block;
        for (s, superblock) in tile.chunks_exact(format.superblock_bytes()).enumerate() {
            let f32_at = |at: usize| {
                f32::from_le_bytes(superblock[at..at + 4].try_into().unwrap_or_default())
            };
            let (d, dmin) = if format.superblocks {
                let dmin = if format.mins {
                    f32_at(4 * TILE + 4 * r)
                } else {
                    0.0
                };
                (f32_at(4 * r), dmin)
            } else {
                (0.0, 0.0)
            };
            for b in 0..per_super {
                let block = &superblock[format.header_bytes() + b * format.block_bytes()..]
                    [..format.block_bytes()];
                let (scale, min) = if format.superblocks {
                    let min = if format.mins {
                        dmin * block[TILE + r] as i8 as f32
                    } else {
                        0.0
                    };
                    (d * block[r] as i8 as f32, min)
                } else {
                    let min = if format.mins {
                        f16_at(block, 2 * TILE + 2 * r)
                    } else {
                        0.0
                    };
                    (f16_at(block, 2 * r), min)
                };
                let codes = &block[format.scale_bytes()..];
                let first = (s * per_super + b) * format.block;
                for i in 0..format.block {
                    let code = read_code(format, codes, r, i);
                    out[first + i] = if format.mins {
                        scale * code as f32 + min
                    } else {
                        scale * (i32::from(code) - format.offset) as f32
                    };
                }
            }
        }
    }
}

/// Where the value `i` of a block, row `r` of the tile, lives: the group of four values
/// (`i / 4`) is one 64-byte vector, four bytes per row. With nibbles, the first half of the
/// groups are low nibbles and the second half high nibbles of the same vectors.
fn code_position(format: &Format, r: usize, i: usize) -> (usize, bool) {
    let group = i / 4;
    let lane = 4 * r + i % 4;
    if format.bits == 8 {
        return (64 * group + lane, false);
    }
    let vectors = format.block / 8;
    (64 * (group % vectors) + lane, group >= vectors)
}

/// The bit of the u64 mask of high bit `plane` for value `i` of row `r`, and the mask's byte
/// offset within the block's codes.
fn plane_position(format: &Format, plane: usize, r: usize, i: usize) -> (usize, u32) {
    let groups = format.block / 4;
    let at = TILE * format.block / 2 + 8 * (plane * groups + i / 4);
    (at, (4 * r + i % 4) as u32)
}

fn read_code(format: &Format, codes: &[u8], r: usize, i: usize) -> u8 {
    let (at, high) = code_position(format, r, i);
    if format.bits == 8 {
        return codes[at];
    }
    let mut code = if high { codes[at] >> 4 } else { codes[at] & 15 };
    for plane in 0..format.bits - 4 {
        let (mask_at, bit) = plane_position(format, plane, r, i);
        let mask = u64::from_le_bytes(codes[mask_at..mask_at + 8].try_into().unwrap_or_default());
        code |= (((mask >> bit) & 1) as u8) << (4 + plane);
    }
    code
}

/// Writes one row's blocks into row `r` of a tile.
fn write_row(format: &Format, tile: &mut [u8], r: usize, blocks: &[Block]) {
    let per_super = format.superblock() / format.block;
    for (s, superblock) in tile.chunks_exact_mut(format.superblock_bytes()).enumerate() {
        let ours = &blocks[s * per_super..(s + 1) * per_super];
        if format.superblocks {
            // All blocks of a superblock share its scales.
            superblock[4 * r..4 * r + 4].copy_from_slice(&ours[0].super_scale.to_le_bytes());
            if format.mins {
                let at = 4 * TILE + 4 * r;
                superblock[at..at + 4].copy_from_slice(&ours[0].super_min.to_le_bytes());
            }
        }
        for (b, block) in ours.iter().enumerate() {
            let at = format.header_bytes() + b * format.block_bytes();
            let bytes = &mut superblock[at..at + format.block_bytes()];
            if format.superblocks {
                bytes[r] = block.sub_scale as u8;
                if format.mins {
                    bytes[TILE + r] = block.sub_min as u8;
                }
            } else {
                bytes[2 * r..2 * r + 2].copy_from_slice(&f16::from_f32(block.scale).to_le_bytes());
                if format.mins {
                    let at = 2 * TILE + 2 * r;
                    bytes[at..at + 2].copy_from_slice(&f16::from_f32(block.min).to_le_bytes());
                }
            }
            let codes = &mut bytes[format.scale_bytes()..];
            let groups = format.block / 4;
            for (group, four) in block.codes[..format.block].chunks_exact(4).enumerate() {
                let (at, high) = code_position(format, r, 4 * group);
                if format.bits == 8 {
                    codes[at..at + 4].copy_from_slice(four);
                    continue;
                }
                let shift = if high { 4 } else { 0 };
                for (byte, code) in codes[at..at + 4].iter_mut().zip(four) {
                    *byte |= (code & 15) << shift;
                }
                for plane in 0..format.bits - 4 {
                    let bits = four.iter().enumerate().fold(0u64, |bits, (e, code)| {
                        bits | (u64::from((code >> (4 + plane)) & 1) << e)
                    });
                    if bits != 0 {
                        let mask_at = TILE * format.block / 2 + 8 * (plane * groups + group);
                        let word = &mut codes[mask_at..mask_at + 8];
                        let mask = u64::from_le_bytes(word.try_into().unwrap_or_default())
                            | bits << (4 * r);
                        word.copy_from_slice(&mask.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// Activations `[rows, columns]` quantized to 8 bits per 32 values: codes, one scale per 32
/// values, and the sum of the codes per 16 values (for the minima and offsets).
pub(crate) struct Activations {
    rows: usize,
    columns: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

impl Activations {
    pub(crate) fn quantize(x: &[f32], rows: usize, columns: usize) -> Activations {
        debug_assert!(columns.is_multiple_of(ACT_BLOCK) && x.len() == rows * columns);
        let blocks = rows * columns / ACT_BLOCK;
        let mut codes = vec![0i8; rows * columns];
        let mut scales = vec![0f32; blocks];
        let mut sums = vec![0i32; 2 * blocks];
        for (((values, codes), scale), sums) in x
            .chunks_exact(ACT_BLOCK)
            .zip(codes.chunks_exact_mut(ACT_BLOCK))
            .zip(scales.iter_mut())
            .zip(sums.chunks_exact_mut(2))
        {
            let largest = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = largest / 127.0;
            let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (code, value) in codes.iter_mut().zip(values) {
                *code = (value * inverse).round() as i8;
            }
            // Kept as f16, as llama.cpp's and candle's Q8_0 activations are, so products
            // with Q8_0 and Q4/Q5 weights match theirs.
            *scale = f16::from_f32(d).to_f32();
            sums[0] = codes[..16].iter().map(|&c| i32::from(c)).sum();
            sums[1] = codes[16..].iter().map(|&c| i32::from(c)).sum();
        }
        Activations {
            rows,
            columns,
            codes,
            scales,
            sums,
        }
    }

    #[cfg(test)]
    fn dequantize(&self) -> Vec<f32> {
        self.codes
            .chunks_exact(ACT_BLOCK)
            .zip(&self.scales)
            .flat_map(|(codes, d)| codes.iter().map(move |&c| c as f32 * d))
            .collect()
    }
}

/// The instruction sets the kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX-512 F, BW and VNNI: `vpdpbusd` over 16 rows at once.
    Avx512,
    /// AVX2, FMA and F16C (most x86-64 CPUs since 2013): `vpmaddubsw` and `vpmaddwd` over 8
    /// rows at once, each tile in two halves.
    Avx2,
}

/// The best level this CPU runs; `REFACTOR_AI_KERNELS=avx2` picks the AVX2 kernels on an
/// AVX-512 CPU (to compare them), `REFACTOR_AI_KERNELS=candle` none (candle's kernels).
pub(crate) fn level() -> Option<Level> {
    static LEVEL: std::sync::OnceLock<Option<Level>> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let supported = supported_levels();
        match std::env::var("REFACTOR_AI_KERNELS").as_deref() {
            Ok("candle") => None,
            Ok("avx2") => supported.into_iter().find(|&level| level == Level::Avx2),
            _ => supported.first().copied(),
        }
    })
}

/// The levels this CPU supports, best first.
fn supported_levels() -> Vec<Level> {
    [Level::Avx512, Level::Avx2]
        .into_iter()
        .filter(|&level| supports(level))
        .collect()
}

/// Whether this CPU has the features of `level`'s kernels.
fn supports(level: Level) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            Level::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            Level::Avx2 => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        false
    }
}

/// Whether this CPU runs the packed kernels.
pub(crate) fn available() -> bool {
    level().is_some()
}

/// `x · Wᵀ` for each `W` of `weights` (all with `x.columns` columns): `outputs[i]` gets
/// `[x.rows, weights[i].rows]`. The tiles of all of them are shared out over candle's thread
/// pool in one parallel region.
pub(crate) fn matmul(weights: &[&Packed], x: &Activations) -> Vec<Vec<f32>> {
    let level = level().expect("the packed kernels need AVX2 or AVX-512 VNNI");
    matmul_at(level, weights, x)
}

fn matmul_at(level: Level, weights: &[&Packed], x: &Activations) -> Vec<Vec<f32>> {
    let mut outputs: Vec<Vec<f32>> = weights
        .iter()
        .map(|w| vec![0f32; x.rows * w.rows])
        .collect();
    assert!(
        supported_levels().contains(&level),
        "{level:?} kernels on this CPU"
    );
    assert!(weights.iter().all(|w| w.columns == x.columns));
    #[cfg(target_arch = "x86_64")]
    {
        // (first unit, tiles) per matrix; a unit is one tile of one matrix.
        let mut starts = Vec::with_capacity(weights.len());
        let mut units = 0;
        for w in weights {
            starts.push(units);
            units += w.rows.div_ceil(TILE);
        }
        let pointers: Vec<usize> = outputs
            .iter_mut()
            .map(|o| o.as_mut_ptr() as usize)
            .collect();
        candle_core::utils::barrier_pool().execute_chunked(units, |range| {
            for unit in range {
                let index = starts.partition_point(|&start| start <= unit) - 1;
                let tile = unit - starts[index];
                let out = pointers[index] as *mut f32;
                // SAFETY: the CPU has the level's features (checked above); each unit writes
                // only the columns of its own tile of its own output.
                unsafe {
                    match level {
                        Level::Avx512 => avx512::tile_product(weights[index], tile, x, out),
                        Level::Avx2 => avx2::tile_product(weights[index], tile, x, out),
                    }
                }
            }
        });
    }
    outputs
}

/// How far ahead of the kernels their weights are prefetched, in bytes. During generation
/// every weight is read once per token, straight from memory, and the hardware prefetchers
/// alone left the kernels waiting on loads; measured on the 1.5B model's generation: 34
/// tokens/s without, 39-49 with 2-6 KiB (noisy), best around 4 KiB.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 4096;

/// `$rows::<BITS, B, MINS, SUPER>($args)` for the layout of `$format`: one monomorphized
/// kernel per packed format, in each instruction set's module.
#[cfg(target_arch = "x86_64")]
macro_rules! for_layout {
    ($format:expr, $rows:ident($($arg:expr),*)) => {
        match ($format.bits, $format.block, $format.mins, $format.superblocks) {
            (4, 32, false, false) => $rows::<4, 32, false, false>($($arg),*),
            (4, 32, true, false) => $rows::<4, 32, true, false>($($arg),*),
            (5, 32, false, false) => $rows::<5, 32, false, false>($($arg),*),
            (5, 32, true, false) => $rows::<5, 32, true, false>($($arg),*),
            (8, 32, false, false) => $rows::<8, 32, false, false>($($arg),*),
            (4, 32, true, true) => $rows::<4, 32, true, true>($($arg),*),
            (5, 32, true, true) => $rows::<5, 32, true, true>($($arg),*),
            (6, 16, false, true) => $rows::<6, 16, false, true>($($arg),*),
            other => unreachable!("no kernel for {other:?}"),
        }
    };
}

// Every function here is a kernel body of raw loads and intrinsics, reached only through
// `matmul` after `available()`: one unsafe contract for the whole module.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Activations, PREFETCH, Packed, TILE};

    /// Activation rows multiplied per pass over a tile's weights.
    const PASS: usize = 4;

    /// One tile (16 output columns) of `x · Wᵀ` for every activation row, into `out`
    /// (`[x.rows, w.rows]`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile_product(w: &Packed, tile: usize, x: &Activations, out: *mut f32) {
        for_layout!(w.format, rows(w, tile, x, out))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn rows<const BITS: usize, const B: usize, const MINS: bool, const SUPER: bool>(
        w: &Packed,
        tile: usize,
        x: &Activations,
        out: *mut f32,
    ) {
        let mut first = 0;
        while first + PASS <= x.rows {
            pass::<BITS, B, MINS, SUPER, PASS>(w, tile, x, first, out);
            first += PASS;
        }
        while first < x.rows {
            pass::<BITS, B, MINS, SUPER, 1>(w, tile, x, first, out);
            first += 1;
        }
    }

    /// `acc[t] += weights · (the four activation codes of row t at `codes[t]`)`, per lane.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn dot<const T: usize>(
        acc: &mut [__m512i; T],
        weights: __m512i,
        codes: &[*const i8; T],
    ) {
        for (acc, codes) in acc.iter_mut().zip(codes) {
            let four = (*codes as *const i32).read_unaligned();
            *acc = _mm512_dpbusd_epi32(*acc, weights, _mm512_set1_epi32(four));
        }
    }

    /// Adds the high-bit planes of group `group` to its nibbles `v`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn with_planes<const BITS: usize, const B: usize>(
        mut v: __m512i,
        planes: *const u8,
        group: usize,
    ) -> __m512i {
        for plane in 0..BITS - 4 {
            let mask = (planes.add(8 * (plane * (B / 4) + group)) as *const u64).read_unaligned();
            v = _mm512_mask_add_epi8(v, mask, v, _mm512_set1_epi8(16 << plane));
        }
        v
    }

    /// Activation rows `first..first + T` times one tile.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn pass<
        const BITS: usize,
        const B: usize,
        const MINS: bool,
        const SUPER: bool,
        const T: usize,
    >(
        w: &Packed,
        tile: usize,
        x: &Activations,
        first: usize,
        out: *mut f32,
    ) {
        let f = &w.format;
        let supers = w.columns / f.superblock();
        let per_super = f.superblock() / B;
        let tile_bytes = supers * f.superblock_bytes();
        let mut p = w.data.as_ptr().add(tile * tile_bytes);
        let low_nibbles = _mm512_set1_epi8(0x0F);
        let columns = x.columns;
        let rows: [usize; T] = std::array::from_fn(|t| first + t);
        let mut sum = [_mm512_setzero_ps(); T];
        let mut d = _mm512_setzero_ps();
        let mut dmin = _mm512_setzero_ps();
        for block in 0..columns / B {
            if SUPER && block % per_super == 0 {
                d = _mm512_loadu_ps(p as *const f32);
                if MINS {
                    dmin = _mm512_loadu_ps(p.add(4 * TILE) as *const f32);
                }
                p = p.add(f.header_bytes());
            }
            let (scale, min) = if SUPER {
                let sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p as *const _)));
                let min = if MINS {
                    let m = _mm512_cvtepi8_epi32(_mm_loadu_si128(p.add(TILE) as *const _));
                    _mm512_mul_ps(_mm512_cvtepi32_ps(m), dmin)
                } else {
                    _mm512_setzero_ps()
                };
                (_mm512_mul_ps(sc, d), min)
            } else {
                let scale = _mm512_cvtph_ps(_mm256_loadu_si256(p as *const _));
                let min = if MINS {
                    _mm512_cvtph_ps(_mm256_loadu_si256(p.add(2 * TILE) as *const _))
                } else {
                    _mm512_setzero_ps()
                };
                (scale, min)
            };
            let mut line = 0;
            while line < f.block_bytes() {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + line) as *const i8);
                line += 64;
            }
            p = p.add(f.scale_bytes());
            let mut acc = [_mm512_setzero_si512(); T];
            let codes: [*const i8; T] =
                std::array::from_fn(|t| x.codes.as_ptr().add(rows[t] * columns + block * B));
            let group =
                |g: usize| -> [*const i8; T] { std::array::from_fn(|t| codes[t].add(4 * g)) };
            if BITS == 8 {
                for g in 0..B / 4 {
                    dot(
                        &mut acc,
                        _mm512_loadu_si512(p.add(64 * g) as *const _),
                        &group(g),
                    );
                }
            } else {
                let vectors = B / 8;
                let planes = p.add(TILE * B / 2);
                for j in 0..vectors {
                    let v = _mm512_loadu_si512(p.add(64 * j) as *const _);
                    let low = _mm512_and_si512(v, low_nibbles);
                    let high = _mm512_and_si512(_mm512_srli_epi16(v, 4), low_nibbles);
                    dot(&mut acc, with_planes::<BITS, B>(low, planes, j), &group(j));
                    let k = j + vectors;
                    dot(&mut acc, with_planes::<BITS, B>(high, planes, k), &group(k));
                }
            }
            p = p.add(f.code_bytes());
            for t in 0..T {
                let at = rows[t] * columns + block * B;
                let dx = *x.scales.get_unchecked(at / 32);
                let xsum = if B == 32 {
                    x.sums.get_unchecked(at / 16) + x.sums.get_unchecked(at / 16 + 1)
                } else {
                    *x.sums.get_unchecked(at / 16)
                };
                let mut a = acc[t];
                if !MINS {
                    a = _mm512_sub_epi32(a, _mm512_set1_epi32(f.offset * xsum));
                }
                sum[t] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(a),
                    _mm512_mul_ps(scale, _mm512_set1_ps(dx)),
                    sum[t],
                );
                if MINS {
                    sum[t] = _mm512_fmadd_ps(min, _mm512_set1_ps(dx * xsum as f32), sum[t]);
                }
            }
        }
        let valid = (w.rows - tile * TILE).min(TILE);
        let mask: __mmask16 = if valid == TILE {
            0xFFFF
        } else {
            (1u16 << valid) - 1
        };
        for (t, sum) in sum.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(rows[t] * w.rows + tile * TILE), mask, *sum);
        }
    }
}

// The same kernels for AVX2: each 64-byte group vector of a tile is two 256-bit halves (rows
// 0-7 and 8-15), multiplied in two passes over the tile (the second from cache), since 16
// registers do not hold both halves' accumulators.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Activations, PREFETCH, Packed, TILE};

    /// Activation rows multiplied per pass over a tile's weights.
    const PASS: usize = 4;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile_product(w: &Packed, tile: usize, x: &Activations, out: *mut f32) {
        for_layout!(w.format, rows(w, tile, x, out))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows<const BITS: usize, const B: usize, const MINS: bool, const SUPER: bool>(
        w: &Packed,
        tile: usize,
        x: &Activations,
        out: *mut f32,
    ) {
        // Several activation rows: one half of the tile at a time, the second from cache.
        // One row (generation): both halves in one pass, the tile read once.
        let mut first = 0;
        for half in 0..2 {
            first = 0;
            while first + PASS <= x.rows {
                pass::<BITS, B, MINS, SUPER, PASS, 1>(w, tile, half, x, first, out);
                first += PASS;
            }
        }
        while first < x.rows {
            pass::<BITS, B, MINS, SUPER, 1, 2>(w, tile, 0, x, first, out);
            first += 1;
        }
    }

    /// 32 bytes from 32 bits: 0xFF where the bit is set.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn bits_to_bytes(bits: u32) -> __m256i {
        // Byte i takes byte i / 8 of `bits` (every 128-bit lane holds all four), then
        // tests its bit i % 8.
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(bits as i32),
            _mm256_setr_epi8(
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                3, 3, 3, 3,
            ),
        );
        let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
        _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit)
    }

    /// Adds the high-bit planes of group `group`, rows of `half`, to its nibbles `v`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn with_planes<const BITS: usize, const B: usize>(
        mut v: __m256i,
        planes: *const u8,
        group: usize,
        half: usize,
    ) -> __m256i {
        for plane in 0..BITS - 4 {
            let mask = (planes.add(8 * (plane * (B / 4) + group)) as *const u64).read_unaligned();
            let set = bits_to_bytes((mask >> (32 * half)) as u32);
            v = _mm256_or_si256(v, _mm256_and_si256(set, _mm256_set1_epi8(16 << plane)));
        }
        v
    }

    /// `acc[t] += weights · (the four activation codes of row t at `codes[t]`)`, per lane,
    /// for Q8_0's bytes: they are made signed again and multiplied by magnitude and sign, as
    /// llama.cpp does, so a `vpmaddubsw` pair never exceeds 2 * 128 * 127.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn dot<const T: usize>(acc: &mut [__m256i; T], bytes: __m256i, codes: &[*const i8; T]) {
        let ones = _mm256_set1_epi16(1);
        let signed = _mm256_xor_si256(bytes, _mm256_set1_epi8(-128));
        let magnitude = _mm256_sign_epi8(signed, signed);
        for (acc, codes) in acc.iter_mut().zip(codes) {
            let four = _mm256_set1_epi32((*codes as *const i32).read_unaligned());
            let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(four, signed));
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
        }
    }

    /// `acc[t] +=` the products of two groups of codes of up to 6 bits with their
    /// activations, added as i16 pairs before widening: each pair is at most 2 * 63 * 127,
    /// so two of them still fit.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn dot2<const T: usize>(
        acc: &mut [__m256i; T],
        (first, first_codes): (__m256i, &[*const i8; T]),
        (second, second_codes): (__m256i, &[*const i8; T]),
    ) {
        let ones = _mm256_set1_epi16(1);
        for t in 0..T {
            let a = _mm256_set1_epi32((first_codes[t] as *const i32).read_unaligned());
            let b = _mm256_set1_epi32((second_codes[t] as *const i32).read_unaligned());
            let pairs = _mm256_add_epi16(
                _mm256_maddubs_epi16(first, a),
                _mm256_maddubs_epi16(second, b),
            );
            acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(pairs, ones));
        }
    }

    /// Activation rows `first..first + T` times the rows of `H` halves of one tile, from
    /// half `first_half`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn pass<
        const BITS: usize,
        const B: usize,
        const MINS: bool,
        const SUPER: bool,
        const T: usize,
        const H: usize,
    >(
        w: &Packed,
        tile: usize,
        first_half: usize,
        x: &Activations,
        first: usize,
        out: *mut f32,
    ) {
        let f = &w.format;
        let supers = w.columns / f.superblock();
        let per_super = f.superblock() / B;
        let tile_bytes = supers * f.superblock_bytes();
        let mut p = w.data.as_ptr().add(tile * tile_bytes);
        let low_nibbles = _mm256_set1_epi8(0x0F);
        let columns = x.columns;
        let rows: [usize; T] = std::array::from_fn(|t| first + t);
        let halves: [usize; H] = std::array::from_fn(|h| first_half + h);
        let mut sum = [[_mm256_setzero_ps(); H]; T];
        let mut d = [_mm256_setzero_ps(); H];
        let mut dmin = [_mm256_setzero_ps(); H];
        // Q8_0's bytes carry their own sign here: no offset to take off.
        let offset = if BITS == 8 { 0 } else { f.offset };
        for block in 0..columns / B {
            if SUPER && block % per_super == 0 {
                for (h, &half) in halves.iter().enumerate() {
                    d[h] = _mm256_loadu_ps((p as *const f32).add(8 * half));
                    if MINS {
                        dmin[h] = _mm256_loadu_ps((p.add(4 * TILE) as *const f32).add(8 * half));
                    }
                }
                p = p.add(f.header_bytes());
            }
            let mut scale = [_mm256_setzero_ps(); H];
            let mut min = [_mm256_setzero_ps(); H];
            for (h, &half) in halves.iter().enumerate() {
                if SUPER {
                    let sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(8 * half) as *const _));
                    scale[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(sc), d[h]);
                    if MINS {
                        let at = p.add(TILE + 8 * half);
                        let m = _mm256_cvtepi8_epi32(_mm_loadl_epi64(at as *const _));
                        min[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(m), dmin[h]);
                    }
                } else {
                    scale[h] = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * half) as *const _));
                    if MINS {
                        let at = p.add(2 * TILE + 16 * half);
                        min[h] = _mm256_cvtph_ps(_mm_loadu_si128(at as *const _));
                    }
                }
            }
            if first_half == 0 {
                let mut line = 0;
                while line < f.block_bytes() {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + line) as *const i8);
                    line += 64;
                }
            }
            p = p.add(f.scale_bytes());
            let codes: [*const i8; T] =
                std::array::from_fn(|t| x.codes.as_ptr().add(rows[t] * columns + block * B));
            let group =
                |g: usize| -> [*const i8; T] { std::array::from_fn(|t| codes[t].add(4 * g)) };
            let mut acc = [[_mm256_setzero_si256(); T]; H];
            for (h, &half) in halves.iter().enumerate() {
                let vector = |g: usize| _mm256_loadu_si256(p.add(64 * g + 32 * half) as *const _);
                if BITS == 8 {
                    for g in 0..B / 4 {
                        dot(&mut acc[h], vector(g), &group(g));
                    }
                } else {
                    let vectors = B / 8;
                    let planes = p.add(TILE * B / 2);
                    for j in 0..vectors {
                        let v = vector(j);
                        let low = _mm256_and_si256(v, low_nibbles);
                        let high = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_nibbles);
                        let k = j + vectors;
                        let low = with_planes::<BITS, B>(low, planes, j, half);
                        let high = with_planes::<BITS, B>(high, planes, k, half);
                        dot2(&mut acc[h], (low, &group(j)), (high, &group(k)));
                    }
                }
            }
            p = p.add(f.code_bytes());
            for t in 0..T {
                let at = rows[t] * columns + block * B;
                let dx = *x.scales.get_unchecked(at / 32);
                let xsum = if B == 32 {
                    x.sums.get_unchecked(at / 16) + x.sums.get_unchecked(at / 16 + 1)
                } else {
                    *x.sums.get_unchecked(at / 16)
                };
                for h in 0..H {
                    let mut a = acc[h][t];
                    if !MINS {
                        a = _mm256_sub_epi32(a, _mm256_set1_epi32(offset * xsum));
                    }
                    sum[t][h] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(a),
                        _mm256_mul_ps(scale[h], _mm256_set1_ps(dx)),
                        sum[t][h],
                    );
                    if MINS {
                        let xsum = _mm256_set1_ps(dx * xsum as f32);
                        sum[t][h] = _mm256_fmadd_ps(min[h], xsum, sum[t][h]);
                    }
                }
            }
        }
        for (h, &half) in halves.iter().enumerate() {
            let first_row = tile * TILE + 8 * half;
            let valid = w.rows.saturating_sub(first_row).min(8);
            for (t, sum) in sum.iter().enumerate() {
                let mut values = [0f32; 8];
                _mm256_storeu_ps(values.as_mut_ptr(), sum[h]);
                let row = out.add(rows[t] * w.rows + first_row);
                std::ptr::copy_nonoverlapping(values.as_ptr(), row, valid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    /// Deterministic values in `[-scale, scale)`, with some rows of larger magnitude.
    fn noise(count: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                unit * scale * if i % 97 < 3 { 8.0 } else { 1.0 }
            })
            .collect()
    }

    const FORMATS: [GgmlDType; 8] = [
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
    ];

    /// A `[rows, columns]` weight of `dtype`, its packed form and candle's dequantization.
    fn weight(dtype: GgmlDType, rows: usize, columns: usize) -> (Packed, Vec<f32>) {
        let values = noise(rows * columns, rows as u64 * 31 + columns as u64, 2.0);
        let tensor = Tensor::from_vec(values, (rows, columns), &Device::Cpu).unwrap();
        let quantized = QTensor::quantize(&tensor, dtype).unwrap();
        let reference: Vec<f32> = quantized
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let data = quantized.data().unwrap();
        // One tile per read for some, all at once for others.
        let read_bytes = if rows.is_multiple_of(3) {
            1
        } else {
            READ_BYTES
        };
        let packed = Packed::read_any_cpu(dtype, rows, columns, &mut &data[..], read_bytes)
            .unwrap()
            .unwrap();
        (packed, reference)
    }

    #[test]
    fn packed_rows_decode_to_candles_dequantization() {
        // 40 rows: two full tiles and one of 8; 48 rows read one tile at a time.
        for (dtype, rows) in FORMATS.iter().flat_map(|&dtype| [(dtype, 40), (dtype, 48)]) {
            let (packed, reference) = weight(dtype, rows, 512);
            let mut row = vec![0f32; 512];
            for r in 0..rows {
                packed.row(r, &mut row);
                for (c, (ours, theirs)) in row.iter().zip(&reference[r * 512..]).enumerate() {
                    let tolerance = 1e-6 * theirs.abs().max(1e-3);
                    assert!(
                        (ours - theirs).abs() <= tolerance,
                        "{dtype:?} row {r} column {c}: {ours} vs {theirs}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_size_is_close_to_the_source() {
        for dtype in FORMATS {
            let (packed, _) = weight(dtype, 32, 512);
            let source = 32 * 512 / dtype.block_size() * dtype.type_size();
            let ratio = packed.data.len() as f64 / source as f64;
            // Measured: 1.0 for the simple formats, 1.01-1.06 for the K-quants.
            assert!((0.99..1.07).contains(&ratio), "{dtype:?}: {ratio}");
        }
    }

    #[test]
    fn activations_keep_eight_bits_per_value() {
        let x = noise(3 * 64, 7, 3.0);
        let quantized = Activations::quantize(&x, 3, 64);
        for (block, (ours, theirs)) in quantized
            .dequantize()
            .chunks(32)
            .zip(x.chunks(32))
            .enumerate()
        {
            let step = quantized.scales[block];
            for (a, b) in ours.iter().zip(theirs) {
                // Half a step, plus the f16 rounding of the scale on up to 127 steps.
                assert!((a - b).abs() <= step * (0.5 + 127.0 / 2048.0));
            }
        }
        assert_eq!(
            quantized.sums[..2],
            [
                quantized.codes[..16].iter().map(|&c| c as i32).sum::<i32>(),
                quantized.codes[16..32]
                    .iter()
                    .map(|&c| c as i32)
                    .sum::<i32>()
            ]
        );
    }

    /// The kernels give the product of the decoded weights with the quantized activations,
    /// up to f32 rounding, for every format, one activation row (generation) and 7 (a
    /// prompt: one pass of 4 and three single rows), and a last tile of 8 rows.
    #[test]
    fn kernels_compute_the_product_of_the_decoded_values() {
        let levels = supported_levels();
        if levels.is_empty() {
            eprintln!("no AVX2 here: the kernels are not used on this CPU");
            return;
        }
        for (level, dtype) in levels
            .iter()
            .flat_map(|&level| FORMATS.map(|dtype| (level, dtype)))
        {
            let (rows, columns) = (40, 768);
            let (packed, _) = weight(dtype, rows, columns);
            let mut decoded = vec![0f32; rows * columns];
            for (r, row) in decoded.chunks_exact_mut(columns).enumerate() {
                packed.row(r, row);
            }
            for tokens in [1, 7] {
                let x = Activations::quantize(&noise(tokens * columns, 3, 4.0), tokens, columns);
                let xs = x.dequantize();
                let [ours] = &matmul_at(level, &[&packed], &x)[..] else {
                    panic!("one output per weight")
                };
                for t in 0..tokens {
                    for r in 0..rows {
                        let exact: f64 = decoded[r * columns..(r + 1) * columns]
                            .iter()
                            .zip(&xs[t * columns..(t + 1) * columns])
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum();
                        let magnitude: f64 = decoded[r * columns..(r + 1) * columns]
                            .iter()
                            .zip(&xs[t * columns..(t + 1) * columns])
                            .map(|(&a, &b)| (a as f64 * b as f64).abs())
                            .sum();
                        let got = ours[t * rows + r] as f64;
                        assert!(
                            (got - exact).abs() <= 1e-5 * magnitude,
                            "{level:?} {dtype:?} token {t} row {r}: {got} vs {exact}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unsupported_shapes_and_formats_are_left_to_candle() {
        let read = |dtype, columns, bytes: &[u8]| {
            Packed::read_any_cpu(dtype, 16, columns, &mut &bytes[..], READ_BYTES)
        };
        assert!(
            read(GgmlDType::F16, 32, &[0; 16 * 32 * 2])
                .unwrap()
                .is_none()
        );
        assert!(
            read(GgmlDType::Q8_0, 48, &[0; 16 * 51]).unwrap().is_none(),
            "48 % 32 != 0"
        );
        assert!(read(GgmlDType::Q8_0, 32, &[0; 10]).is_err(), "truncated");
        assert!(
            Packed::new(GgmlDType::Q8_0, 16, 32, &[0; 16 * 34 + 1]).is_none(),
            "too long"
        );
    }
}
