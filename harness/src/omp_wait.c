/*
 * omp_wait.c: OpenMP's idle threads sleep instead of spinning, unless the user says
 * otherwise (lessons/09-fast-matmul/README.md, "Threads on a busy machine").
 *
 * Between two parallel regions, and at the barrier that ends one, a thread with nothing to
 * do waits. By default it spins: libgomp (gcc) for about 300,000 turns (a few ms), libomp
 * (clang) for KMP_BLOCKTIME (200 ms). On an idle machine that makes the next fork cheap;
 * on a machine where other work wants the cores it steals them, and the region then waits
 * for whichever of its own threads the kernel has put aside. Measured on the 2-core kit
 * machine with other builds running (load 2 to 3), whole `moekit generate` runs of the
 * 29-token prompt, median of 9 interleaved runs: prefill 1019 tokens/s spinning, 2164
 * with OMP_WAIT_POLICY=passive, 2361 with OMP_NUM_THREADS=1; with a busy loop added, 105,
 * 1609 and 1526.
 *
 * So every program of the kit starts with OMP_WAIT_POLICY=passive when the environment
 * names no wait policy of its own (OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME). It
 * must be set before the runtime reads it: libgomp reads its environment in its own
 * constructor, which runs before any constructor of the program, so setenv() in main() or
 * in __attribute__((constructor)) is too late for gcc. A function in .preinit_array runs
 * before every shared library's constructor (ELF executables only). libomp reads the
 * environment at the first parallel region, so either way works for clang.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#ifdef _OPENMP
static void passive_unless_set(void) {
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") && !getenv("KMP_BLOCKTIME"))
        setenv("OMP_WAIT_POLICY", "passive", 0);
}

#if defined(__ELF__) && defined(__linux__)
static void preinit(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    passive_unless_set();
}
__attribute__((section(".preinit_array"), used)) static void (*const omp_wait_preinit)(
    int, char **, char **) = preinit;
#else
__attribute__((constructor)) static void omp_wait_constructor(void) { passive_unless_set(); }
#endif
#else
typedef int omp_wait_nothing_to_do; /* without OpenMP no thread waits (and C wants a declaration) */
#endif
