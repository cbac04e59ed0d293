//! Compiling a loop for the vector units the processor has.

/// The vector instructions a kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX2 and FMA: eight lanes.
    Avx2,
    /// AVX-512 (with AVX2 and FMA): sixteen lanes.
    Avx512,
}

impl Isa {
    /// The widest this processor runs, if it runs one.
    #[inline(always)]
    pub(crate) fn best() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Some(Self::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Some(Self::Avx2);
            }
        }
        None
    }

    /// Every instruction set this processor runs (for tests that try each), asserting that
    /// it runs at least AVX2 and FMA.
    #[cfg(test)]
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn all_available() -> Vec<Self> {
        let mut isas = Vec::new();
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            isas.push(Self::Avx2);
        }
        if std::is_x86_feature_detected!("avx512f") {
            isas.push(Self::Avx512);
        }
        assert!(
            !isas.is_empty(),
            "this test needs a processor with AVX2 and FMA"
        );
        isas
    }
}

/// Runs `f` compiled for AVX-512 when the processor has it, else for AVX2 and FMA, so the
/// loops it inlines vectorise sixteen or eight lanes wide; elsewhere as built.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        Some(Isa::Avx512) => {
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the processor supports the features `with_avx512` is compiled for.
            return unsafe { with_avx512(f) };
        }
        Some(Isa::Avx2) => {
            #[target_feature(enable = "avx2,fma")]
            fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the processor supports the features `with_avx2` is compiled for.
            return unsafe { with_avx2(f) };
        }
        None => {}
    }
    f()
}
