//! Whether this CPU and OS run AMX BF16 and int8 tiles (Intel Sapphire Rapids and later), for
//! the `amx` level.

use std::arch::x86_64::__cpuid_count;
use std::sync::OnceLock;

/// The CPU reports AMX-TILE, AMX-BF16 and AMX-INT8 (and AVX-512 BF16, which packing for the
/// tiles uses), and the OS grants this process the tile state, which Linux requires before any
/// thread touches a tile register.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // CPUID leaf 7 exists on every CPU with AVX-512 BF16, checked first.
        let cpu = std::arch::is_x86_feature_detected!("avx512bf16") && {
            let leaf = __cpuid_count(7, 0);
            let (tile, bf16, int8) = (1 << 24, 1 << 22, 1 << 25);
            leaf.edx & tile != 0 && leaf.edx & bf16 != 0 && leaf.edx & int8 != 0
        };
        cpu && request_tile_state()
    })
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`):
/// granted for the whole process, or refused by kernels before 5.16 and by hypervisors that
/// hide it.
fn request_tile_state() -> bool {
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a system call with integer arguments only; the kernel records the
        // permission or returns an error.
        #[allow(unsafe_code)]
        let ret = unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        };
        ret == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Every tile register as 16 rows of 64 bytes (palette 1), for `ldtilecfg`: the one shape both
/// AMX GEMMs use (16-bit weights, `crate::model::amx`; Q6_K, `super::amx`).
#[repr(C, align(64))]
pub struct TileConfig([u8; 64]);

impl TileConfig {
    /// All eight tiles 16 × 64 bytes.
    pub fn full() -> TileConfig {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = 16;
        }
        TileConfig(c)
    }

    /// Where the configuration's bytes start, for `ldtilecfg`.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}
