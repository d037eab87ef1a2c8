//! Which kernel level this CPU runs: detected once when the worker starts, or chosen
//! with `ARENA_KERNELS`.

use std::sync::OnceLock;

use super::{COLS, GEMV_ROWS};

/// The kernel levels, lowest first: each has what the ones below it have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    Scalar,
    Avx2,
    AvxVnni,
    Avx512Vnni,
    Amx,
}

/// A kernel family this CPU can run; only [`Isa::best`] and [`Isa::available`] make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa(pub(super) Level);

impl Isa {
    /// Every level this CPU supports, lowest first.
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa(Level::Scalar)];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") && has!("f16c") {
                out.push(Isa(Level::Avx2));
                if has!("avxvnni") {
                    out.push(Isa(Level::AvxVnni));
                }
                if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni") {
                    out.push(Isa(Level::Avx512Vnni));
                    if super::tiles::available() {
                        out.push(Isa(Level::Amx));
                    }
                }
            }
        }
        out
    }

    /// [`Isa::available`], and where the CPU has AVX2 but not AVX-VNNI the `avxvnni` level
    /// too, `vpdpbusd` emulated: unit tests run that level's kernels on any AVX2 CPU.
    #[cfg(test)]
    pub fn testable() -> Vec<Isa> {
        let mut out = Self::available();
        if out.contains(&Isa(Level::Avx2)) && !out.contains(&Isa(Level::AvxVnni)) {
            out.push(Isa(Level::AvxVnni));
            out.sort_by_key(|i| i.0);
        }
        out
    }

    /// The best level, or the one `ARENA_KERNELS` asks for if the CPU has it.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let want = std::env::var("ARENA_KERNELS").ok();
            let (isa, found) = Self::choose(&Self::available(), want.as_deref());
            if !found {
                tracing::warn!(want, using = isa.name(), "ARENA_KERNELS not available here");
            }
            isa
        })
    }

    /// The level named `want` among `levels` (lowest first), else the highest; and whether
    /// `want`, if given, was found.
    fn choose(levels: &[Isa], want: Option<&str>) -> (Isa, bool) {
        let top = levels[levels.len() - 1];
        match want {
            None => (top, true),
            Some(w) => levels
                .iter()
                .find(|i| i.name() == w.trim())
                .map_or((top, false), |&i| (i, true)),
        }
    }

    /// `scalar`, `avx2`, `avxvnni`, `avx512` or `amx`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::AvxVnni => "avxvnni",
            Level::Avx512Vnni => "avx512",
            Level::Amx => "amx",
        }
    }

    /// Whether this level has AVX2, FMA and F16C (every level above scalar).
    pub fn has_avx2(self) -> bool {
        self.0 >= Level::Avx2
    }

    /// Whether this level has AVX-512 F, BW and VL (with VNNI).
    pub fn has_avx512(self) -> bool {
        self.0 >= Level::Avx512Vnni
    }

    /// Whether this level fills panels from rows in file order ([`Isa::fill_panel`]) for its
    /// GEMM: the AVX-512 VNNI levels only (`avx512`, `amx`), since such panels hold bytes
    /// offset by 128, which `vpdpbusd` takes and AVX2's 16-bit pair sums would overflow.
    pub fn has_gemm(self) -> bool {
        self.0 >= Level::Avx512Vnni
    }

    /// Whether this level has AMX BF16 and int8 tiles, granted by the OS, and AVX-512 BF16.
    pub fn has_amx(self) -> bool {
        self.0 >= Level::Amx
    }

    /// Whether this level has AVX-512 and the CPU AVX-512 BF16 (`vdpbf16ps`): the `amx`
    /// level always, the `avx512` one on CPUs such as AMD Zen 4.
    pub fn has_avx512_bf16(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.has_avx512() && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Whether matrices are repacked for this level ([`crate::model::quant::packed`], every
    /// format; one layout for every level that packs); only then do the two calls below apply.
    pub fn packs(self) -> bool {
        self.0 >= Level::Avx2
    }

    /// Activation rows [`Isa::gemv_packed`] takes at once: eight with AVX-512's 32
    /// registers, four with AVX2's 16.
    pub fn gemv_rows(self) -> usize {
        if self.has_avx512() {
            GEMV_ROWS
        } else {
            COLS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_kernels_picks_a_level_the_cpu_has_and_nothing_else() {
        let all = [
            Isa(Level::Scalar),
            Isa(Level::Avx2),
            Isa(Level::AvxVnni),
            Isa(Level::Avx512Vnni),
        ];
        assert_eq!(Isa::choose(&all, None), (all[3], true));
        assert_eq!(Isa::choose(&all, Some("scalar")), (all[0], true));
        assert_eq!(Isa::choose(&all, Some(" avx2\n")), (all[1], true));
        assert_eq!(Isa::choose(&all, Some("avxvnni")), (all[2], true));
        // Asked for a level this CPU lacks, or a misspelt one: the best it has, and a warning.
        assert_eq!(Isa::choose(&all[..2], Some("avx512")), (all[1], false));
        assert_eq!(Isa::choose(&all[..2], Some("avxvnni")), (all[1], false));
        assert_eq!(Isa::choose(&all, Some("AVX9")), (all[3], false));
        // The levels' order is what `has_avx512` and `has_gemm` compare against.
        assert!(all[2].has_avx2() && all[2].packs() && !all[2].has_avx512() && !all[2].has_gemm());
    }
}
