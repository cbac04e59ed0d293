//! Compiling a loop for the vector units the processor has.

/// Runs `f` compiled for AVX2 and FMA when the processor has them, so the loops it inlines
/// vectorise eight lanes wide; elsewhere as built.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the processor supports the features `with_avx2` is compiled for.
        return unsafe { with_avx2(f) };
    }
    f()
}
