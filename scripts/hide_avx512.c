// Hides AVX-512 from a process on an AVX-512 machine, so that reidscope's kernels, the `gemm`
// crate, ONNX Runtime's MLAS and PyTorch all take their AVX2 code paths, as they would on a
// processor without AVX-512. Linux on x86_64 only, and only where /proc/cpuinfo lists the
// `cpuid_fault` flag:
//
//   cc -O2 -shared -fPIC -o /tmp/libhide_avx512.so scripts/hide_avx512.c
//   LD_PRELOAD=/tmp/libhide_avx512.so reidscope bench --model osnet_x0_25 --device cpu
//   LD_PRELOAD=/tmp/libhide_avx512.so python scripts/bench_reference.py --model osnet_x0_25
//
// At load it makes the CPUID instruction fault in this process (arch_prctl ARCH_SET_CPUID),
// and its SIGSEGV handler answers each CPUID with the AVX-512 feature bits cleared. The
// setting passes to threads and ends at exec. A program that replaces the SIGSEGV handler
// afterwards would crash at its next CPUID (Rust's runtime and Python leave it alone).
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void answer_cpuid(int sig, siginfo_t *info, void *context) {
    (void)info;
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        // Not a CPUID: a real fault, which the default action now handles.
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], subleaf = (unsigned)r[REG_RCX], a, b, c, d;
    set_cpuid(1);
    __cpuid_count(leaf, subleaf, a, b, c, d);
    set_cpuid(0);
    if (leaf == 7 && subleaf == 0) {
        // EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31.
        b &= ~(1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 |
               1u << 31);
        // ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14.
        c &= ~(1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14);
        // EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, FP16 23.
        d &= ~(1u << 2 | 1u << 3 | 1u << 8 | 1u << 23);
    }
    if (leaf == 7 && subleaf == 1) {
        a &= ~(1u << 5); // AVX512_BF16
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = answer_cpuid;
    action.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &action, NULL) != 0 || set_cpuid(0) != 0) {
        fputs("hide_avx512: CPUID cannot be made to fault here (no cpuid_fault flag?)\n", stderr);
        _exit(2);
    }
}
