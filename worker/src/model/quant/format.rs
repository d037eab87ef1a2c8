//! GGUF block formats and their unpacking into the one form the kernels multiply.
//!
//! Each format stores weights as small integers with scales per block. Unpacking writes, per
//! weight, a signed byte `q`, and per 16 weights a scale `a` and an offset `b`, so that
//! `w = a·q + b` for every format: the kernels never see a format.

use half::f16;

/// Values per unpacked block (one activation block).
pub const QK: usize = 32;

/// A quantized GGUF format our kernels multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 32 weights `d·(q − 8)`, 4 bits each.
    Q4_0,
    /// 32 weights `d·q + m`, 4 bits each.
    Q4_1,
    /// 32 weights `d·q`, 8 bits each.
    Q8_0,
    /// 256 weights in 8 sub-blocks of 32 with 6-bit scales and minimums, 4 bits each.
    Q4K,
    /// As Q4_K with a fifth bit per weight.
    Q5K,
    /// 256 weights in 16 sub-blocks of 16 with 8-bit scales, 6 bits each.
    Q6K,
}

impl Format {
    /// Every format, for tests and benchmarks.
    pub const ALL: [Format; 6] = [
        Format::Q4_0,
        Format::Q4_1,
        Format::Q8_0,
        Format::Q4K,
        Format::Q5K,
        Format::Q6K,
    ];

    /// The format's name, multiplied by our int8 kernels.
    pub fn held_as(self) -> &'static str {
        match self {
            Self::Q4_0 => "q4_0 (int8 kernels)",
            Self::Q4_1 => "q4_1 (int8 kernels)",
            Self::Q8_0 => "q8_0 (int8 kernels)",
            Self::Q4K => "q4_k (int8 kernels)",
            Self::Q5K => "q5_k (int8 kernels)",
            Self::Q6K => "q6_k (int8 kernels)",
        }
    }

    /// Weights per block in the file.
    pub fn block_values(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// Weights that share one scale and one offset once unpacked: 32, or 16 for Q6_K.
    pub fn scale_span(self) -> usize {
        match self {
            Self::Q6K => 16,
            _ => 32,
        }
    }

    /// Bytes of one row of `cols` weights, `None` unless `cols` is a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        (cols > 0 && cols.is_multiple_of(self.block_values()))
            .then(|| cols / self.block_values() * self.block_bytes())
    }

    /// Unpacks one row: `q` gets one byte per weight, `a` and `b` one value per 16 weights.
    /// With `U` the bytes are `q + 128` read as unsigned, and `b` absorbs the 128.
    ///
    /// `row` holds exactly `row_bytes(q.len())` bytes.
    #[inline(always)]
    pub fn unpack<const U: bool>(self, row: &[u8], q: &mut [i8], a: &mut [f32], b: &mut [f32]) {
        match self {
            Self::Q4_0 => each::<18, 32, 2>(row, q, a, b, unpack_q4_0::<U>),
            Self::Q4_1 => each::<20, 32, 2>(row, q, a, b, unpack_q4_1::<U>),
            Self::Q8_0 => each::<34, 32, 2>(row, q, a, b, unpack_q8_0::<U>),
            Self::Q4K => each::<144, 256, 16>(row, q, a, b, unpack_q4k::<U>),
            Self::Q5K => each::<176, 256, 16>(row, q, a, b, unpack_q5k::<U>),
            Self::Q6K => each::<210, 256, 16>(row, q, a, b, unpack_q6k::<U>),
        }
    }

    /// As [`Format::unpack`] for a row of `cols` weights into `q`, `a` and `b`, which may be
    /// longer (padding, zeroed); `None` (a missing row) zeroes all, so its products are zero.
    #[inline(always)]
    pub fn unpack_padded<const U: bool>(
        self,
        row: Option<&[u8]>,
        cols: usize,
        q: &mut [i8],
        a: &mut [f32],
        b: &mut [f32],
    ) {
        let Some(row) = row else {
            q.fill(0);
            a.fill(0.0);
            b.fill(0.0);
            return;
        };
        let (qv, qpad) = q.split_at_mut(cols);
        let (av, apad) = a.split_at_mut(cols / 16);
        let (bv, bpad) = b.split_at_mut(cols / 16);
        self.unpack::<U>(row, qv, av, bv);
        qpad.fill(0);
        apad.fill(0.0);
        bpad.fill(0.0);
    }

    /// Dequantizes one row of `out.len()` weights, a block at a time on the stack (embedding
    /// lookups call this for every prompt token).
    pub fn dequantize(self, row: &[u8], out: &mut [f32]) {
        let n = self.block_values();
        let (mut q, mut a, mut b) = ([0i8; 256], [0f32; 16], [0f32; 16]);
        let blocks = row
            .chunks_exact(self.block_bytes())
            .zip(out.chunks_exact_mut(n));
        for (blk, out) in blocks {
            self.unpack::<false>(blk, &mut q[..n], &mut a[..n / 16], &mut b[..n / 16]);
            for (i, (o, &v)) in out.iter_mut().zip(&q[..n]).enumerate() {
                *o = a[i / 16] * f32::from(v) + b[i / 16];
            }
        }
    }
}

fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Runs `f` on each block of a row with fixed-size views, so the loops inside vectorize.
#[inline(always)]
fn each<const BYTES: usize, const N: usize, const H: usize>(
    row: &[u8],
    q: &mut [i8],
    a: &mut [f32],
    b: &mut [f32],
    f: impl Fn(&[u8; BYTES], &mut [i8; N], &mut [f32; H], &mut [f32; H]),
) {
    let blocks = row
        .chunks_exact(BYTES)
        .zip(q.chunks_exact_mut(N))
        .zip(a.chunks_exact_mut(H).zip(b.chunks_exact_mut(H)));
    for ((blk, q), (a, b)) in blocks {
        // The chunk sizes are the array sizes, so these conversions cannot fail.
        if let (Ok(blk), Ok(q), Ok(a), Ok(b)) =
            (blk.try_into(), q.try_into(), a.try_into(), b.try_into())
        {
            f(blk, q, a, b);
        }
    }
}

/// The stored byte for value `v`: itself, or `v + 128` as an unsigned byte.
#[inline(always)]
fn byte<const U: bool>(v: i8) -> i8 {
    if U {
        v ^ i8::MIN
    } else {
        v
    }
}

/// Sets scale `d` and offset `m` for a block whose halves share them.
#[inline(always)]
fn uniform<const U: bool>(a: &mut [f32; 2], b: &mut [f32; 2], d: f32, m: f32) {
    *a = [d; 2];
    *b = [if U { m - 128.0 * d } else { m }; 2];
}

/// Splits 16 bytes into 32 nibbles minus `minus`: low nibbles first, then high ones.
#[inline(always)]
fn nibbles<const U: bool>(qs: &[u8], q: &mut [i8; 32], minus: i8) {
    for j in 0..16 {
        q[j] = byte::<U>((qs[j] & 0x0F) as i8 - minus);
        q[j + 16] = byte::<U>((qs[j] >> 4) as i8 - minus);
    }
}

#[inline(always)]
fn unpack_q4_0<const U: bool>(
    blk: &[u8; 18],
    q: &mut [i8; 32],
    a: &mut [f32; 2],
    b: &mut [f32; 2],
) {
    nibbles::<U>(&blk[2..18], q, 8);
    uniform::<U>(a, b, half_at(blk, 0), 0.0);
}

#[inline(always)]
fn unpack_q4_1<const U: bool>(
    blk: &[u8; 20],
    q: &mut [i8; 32],
    a: &mut [f32; 2],
    b: &mut [f32; 2],
) {
    nibbles::<U>(&blk[4..20], q, 0);
    uniform::<U>(a, b, half_at(blk, 0), half_at(blk, 2));
}

#[inline(always)]
fn unpack_q8_0<const U: bool>(
    blk: &[u8; 34],
    q: &mut [i8; 32],
    a: &mut [f32; 2],
    b: &mut [f32; 2],
) {
    for (o, &v) in q.iter_mut().zip(&blk[2..34]) {
        *o = byte::<U>(v as i8);
    }
    uniform::<U>(a, b, half_at(blk, 0), 0.0);
}

/// Scales and offsets of the 8 sub-blocks of a Q4_K/Q5_K block (`w = d·sc·q − dmin·m`), whose
/// 6-bit scales and minimums are packed in 12 bytes: sub-blocks 0–3 in the low 6 bits of bytes
/// 0–3 and 4–7, sub-blocks 4–7 in the nibbles of bytes 8–11 plus the top 2 bits of bytes 0–7.
#[inline(always)]
fn k4_scales<const U: bool>(blk: &[u8], a: &mut [f32; 16], b: &mut [f32; 16]) {
    let (d, dmin) = (half_at(blk, 0), half_at(blk, 2));
    let s = &blk[4..16];
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    for i in 0..16 {
        let aj = d * f32::from(sc[i / 2]);
        let bj = -dmin * f32::from(mn[i / 2]);
        a[i] = aj;
        b[i] = if U { bj - 128.0 * aj } else { bj };
    }
}

/// Q4_K, or Q5_K with `FIVE`: 64 weights per 32 bytes of nibbles (low nibbles sub-block 2c,
/// high ones 2c + 1) at `at`; for Q5_K, bit j of byte l of the 32 bytes at 16 is the fifth bit
/// of weight l of sub-block j.
#[inline(always)]
fn unpack_k4<const U: bool, const FIVE: bool>(
    blk: &[u8],
    at: usize,
    q: &mut [i8; 256],
    a: &mut [f32; 16],
    b: &mut [f32; 16],
) {
    k4_scales::<U>(blk, a, b);
    for c in 0..4 {
        for l in 0..32 {
            let v = blk[at + 32 * c + l];
            let (mut lo, mut hi) = (v & 0x0F, v >> 4);
            if FIVE {
                let h = blk[16 + l];
                lo |= ((h >> (2 * c)) & 1) << 4;
                hi |= ((h >> (2 * c + 1)) & 1) << 4;
            }
            q[64 * c + l] = byte::<U>(lo as i8);
            q[64 * c + 32 + l] = byte::<U>(hi as i8);
        }
    }
}

#[inline(always)]
fn unpack_q4k<const U: bool>(
    blk: &[u8; 144],
    q: &mut [i8; 256],
    a: &mut [f32; 16],
    b: &mut [f32; 16],
) {
    unpack_k4::<U, false>(blk, 16, q, a, b);
}

#[inline(always)]
fn unpack_q5k<const U: bool>(
    blk: &[u8; 176],
    q: &mut [i8; 256],
    a: &mut [f32; 16],
    b: &mut [f32; 16],
) {
    unpack_k4::<U, true>(blk, 48, q, a, b);
}

#[inline(always)]
fn unpack_q6k<const U: bool>(
    blk: &[u8; 210],
    q: &mut [i8; 256],
    a: &mut [f32; 16],
    b: &mut [f32; 16],
) {
    // Two halves of 128 weights; in each, four runs of 32 take their low 4 bits from
    // `ql` (low or high nibble) and their top 2 bits from one bit pair of `qh`.
    for n in 0..2 {
        for l in 0..32 {
            let (l0, l1, h) = (blk[64 * n + l], blk[64 * n + 32 + l], blk[128 + 32 * n + l]);
            let o = 128 * n + l;
            q[o] = byte::<U>(((l0 & 0x0F) | ((h & 3) << 4)) as i8 - 32);
            q[o + 32] = byte::<U>(((l1 & 0x0F) | (((h >> 2) & 3) << 4)) as i8 - 32);
            q[o + 64] = byte::<U>(((l0 >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32);
            q[o + 96] = byte::<U>(((l1 >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32);
        }
    }
    q6_scales::<U>(blk, a, b);
}

/// Scales of the 16 sub-blocks of a Q6_K block (`w = d·sc·q`).
#[inline(always)]
fn q6_scales<const U: bool>(blk: &[u8], a: &mut [f32; 16], b: &mut [f32; 16]) {
    let d = half_at(blk, 208);
    for i in 0..16 {
        a[i] = d * f32::from(blk[192 + i] as i8);
        b[i] = if U { -128.0 * a[i] } else { 0.0 };
    }
}
