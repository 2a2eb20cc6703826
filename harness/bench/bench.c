/*
 * bench.c: `make bench`. Times lesson 09's kernels and the whole model against lesson 01,
 * OpenBLAS and the PyTorch reference, and prints ratios measured in this one run (the
 * machine is shared and noisy: absolute numbers from another day mean little, ratios of
 * things timed side by side do). Writes the same figures to build/bench.json.
 *
 *   bench [--model DIR] [--prompt 64] [--decode 128] [--reps 5] [--json FILE]
 *         [--python /usr/bin/python3] [--no-torch] [--quick]
 *
 * Every timing is the median of --reps rounds; within a round the variants being compared
 * run one after the other (round robin), so a burst of noise hits all of them. The model's
 * products go to lesson 01 or lesson 09 as linear_use() says (moekit.h). OpenBLAS (-DHAVE_OPENBLAS) and OpenMP
 * are optional: without them those figures say "skipped" and why. Never fails on speed.
 * expert_scaling builds its synthetic models in memory: about 1 GB for a few seconds.
 * default_vs_1t_* time the demo model at the default thread count against 1 thread, then
 * again next to a spinning child process that the bench starts and kills (about a second).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "model_load.h"
#include "moekit.h"
#include "safetensors.h"
#include "todo.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int n);
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ------------------------------------------------------------------------------------
 * options, clocks, threads
 * ---------------------------------------------------------------------------------- */

typedef struct {
    const char *model_dir, *json_path, *python;
    int prompt, decode, reps, torch, quick;
} Options;

static int cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* 1 when lesson 09 can run on two threads here */
static int have_threads2(void) {
#ifdef _OPENMP
    return cores() >= 2;
#else
    return 0;
#endif
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads(n);
#endif
    (void)n;
}

/* Seconds per call of f(arg): calls it in batches until a batch takes min_s. */
typedef void (*Job)(void *arg);
static double per_call(Job f, void *arg, double min_s) {
    f(arg); /* warm: caches, page faults, thread pools */
    for (long n = 1;; n *= 2) {
        double t0 = now_seconds();
        for (long i = 0; i < n; i++) f(arg);
        double dt = now_seconds() - t0;
        if (dt >= min_s || n >= (1L << 24)) return dt / n;
    }
}

/* ------------------------------------------------------------------------------------
 * the FMA peak: independent fused multiply-adds, as many as the core can issue
 * ---------------------------------------------------------------------------------- */

#define PEAK_CHAINS 16 /* P_CHAINS below */
static volatile float peak_sink;

/* 16 independent chains a[j] = a[j] * m + c, written out so that every a[j] is a register */
#define P_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define P_DECL(j) P_VEC a##j = P_SET1((float)(j));
#define P_STEP(j) a##j = P_FMA(a##j, m, c);
#define P_ADDTO(j) s = P_ADD(s, a##j);
#if defined(__AVX512F__)
#define P_VEC __m512
#define P_SET1 _mm512_set1_ps
#define P_FMA _mm512_fmadd_ps
#define P_ADD _mm512_add_ps
#define P_HSUM _mm512_reduce_add_ps
#elif defined(__AVX2__) && defined(__FMA__)
#define P_VEC __m256
#define P_SET1 _mm256_set1_ps
#define P_FMA _mm256_fmadd_ps
#define P_ADD _mm256_add_ps
static float P_HSUM(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define P_VEC float32x4_t
#define P_SET1 vdupq_n_f32
#define P_FMA(a, b, c) vfmaq_f32(c, a, b)
#define P_ADD vaddq_f32
#define P_HSUM vaddvq_f32
#else
#define P_VEC float
#define P_SET1(v) (v)
#define P_FMA(a, b, c) ((a) * (b) + (c))
#define P_ADD(a, b) ((a) + (b))
#define P_HSUM(v) (v)
#endif

static void fma_loop(void *arg) {
    long n = *(const long *)arg;
    P_VEC m = P_SET1(0.999999f), c = P_SET1(1e-7f), s = P_SET1(0.0f);
    P_CHAINS(P_DECL)
    for (long k = 0; k < n; k++) {
        P_CHAINS(P_STEP)
    }
    P_CHAINS(P_ADDTO)
    peak_sink = P_HSUM(s);
}

/* FLOP/s of one thread: 2 per lane per FMA. */
static double measure_peak(int reps) {
    long n = 1L << 16;
    double best = 0; /* the best round: a peak is a peak */
    for (int r = 0; r < reps && r < 16; r++) {
        double t = 2.0 * PEAK_CHAINS * fast_matmul_lanes() * (double)n / per_call(fma_loop, &n, 0.05);
        if (t > best) best = t;
    }
    return best;
}

/* ------------------------------------------------------------------------------------
 * kernels on shapes
 * ---------------------------------------------------------------------------------- */

/* K_BF16: lesson 09's step 6, one token with W in bf16 (GEMV shapes only) */
enum { K_NAIVE, K_LOOP, K_SIMD, K_TILED, K_FAST1, K_BF16, K_BLAS1, K_FAST2, K_BLAS2, N_KERNELS };
static const char *KERNEL_NAME[N_KERNELS] = {"naive", "loop_order", "simd", "tiled", "fast",
                                             "fast_bf16", "openblas", "fast_2t", "openblas_2t"};

typedef struct {
    const char *name;
    int T, in, out;
    int count;    /* times one prefill (or one decoded token) runs it; 0: not the model's */
    int is_model; /* counts towards the model's figures */
    double s[N_KERNELS]; /* seconds per call; 0 = not run */
    double peak;         /* FMA-loop FLOP/s measured next to this shape's fast kernel */
} Shape;

typedef struct {
    const Shape *sh;
    int kernel;
    float *y, *x, *w;
    bf16 *wb; /* w rounded to bf16, for K_BF16 */
} KernelJob;

static void run_kernel(void *arg) {
    KernelJob *j = arg;
    const Shape *s = j->sh;
    switch (j->kernel) {
    case K_NAIVE:
        if (s->T == 1) matmul(j->y, j->x, j->w, s->in, s->out);
        else matmul_tokens(j->y, j->x, j->w, s->T, s->in, s->out);
        break;
    case K_LOOP: matmul_loop_order(j->y, j->x, j->w, s->T, s->in, s->out); break;
    case K_SIMD: matmul_simd(j->y, j->x, j->w, s->T, s->in, s->out); break;
    case K_TILED: matmul_tiled(j->y, j->x, j->w, s->T, s->in, s->out); break;
    case K_BF16:
        if (s->T == 1) fast_matmul_bf16(j->y, j->x, j->wb, s->in, s->out);
        break;
    case K_FAST1:
    case K_FAST2:
        if (s->T == 1) fast_matmul(j->y, j->x, j->w, s->in, s->out);
        else fast_matmul_tokens(j->y, j->x, j->w, s->T, s->in, s->out);
        break;
#ifdef HAVE_OPENBLAS
    case K_BLAS1:
    case K_BLAS2:
        if (s->T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, s->out, s->in, 1.0f, j->w, s->in, j->x, 1,
                        0.0f, j->y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->T, s->out, s->in, 1.0f,
                        j->x, s->in, j->w, s->in, 0.0f, j->y, s->out);
        break;
#endif
    default: break;
    }
}

/* kernels whose lesson function still has a TODO (find_todo) */
static int kernel_todo[N_KERNELS];
static char todo_names[256];

static int kernel_available(int k, const Shape *s, int threads2) {
    if (kernel_todo[k]) return 0;
#ifndef HAVE_OPENBLAS
    if (k == K_BLAS1 || k == K_BLAS2) return 0;
#endif
    if ((k == K_FAST2 || k == K_BLAS2) && !threads2) return 0;
    if (k == K_BF16 && s->T != 1) return 0; /* step 6 is one token */
    /* two threads only where lesson 09 uses them (PARALLEL_MIN_WORK in fast_matmul.c) */
    if ((k == K_FAST2 || k == K_BLAS2) && (double)s->T * s->in * s->out < 4194304.0) return 0;
    /* the slow steps on big squares would take minutes */
    double fma = (double)s->T * s->in * s->out;
    if ((k == K_NAIVE || k == K_LOOP) && fma > 4e7) return 0;
    if (k == K_SIMD && fma > 2e8) return 0;
    return 1;
}

/* murmur3's finalizer: seeds far apart, so the streams below do not move in step */
static unsigned mix32(unsigned x) {
    x ^= x >> 16, x *= 0x85ebca6bu, x ^= x >> 13, x *= 0xc2b2ae35u;
    return x ^ (x >> 16);
}

/* n floats uniform in [-scale, scale), no divisions: eight LCG streams side by side, so
 * the loop vectorizes (one LCG makes a float per multiply latency, and the big pair has
 * 220 M of them). Random is all a timing needs. */
static void fill_uniform(float *f, long n, float scale, unsigned seed) {
    unsigned s[8];
    for (int j = 0; j < 8; j++) s[j] = mix32(seed * 8u + (unsigned)j);
    float mul = scale * (1.0f / 32768.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            s[j] = s[j] * 1103515245u + 12345u;
            f[i + j] = (float)(int)((s[j] >> 8) & 0xffff) * mul - scale;
        }
    for (; i < n; i++) {
        s[0] = s[0] * 1103515245u + 12345u;
        f[i] = (float)(int)((s[0] >> 8) & 0xffff) * mul - scale;
    }
}

/* n floats uniform in [-1, 1), the next stream of *seed (the caller frees them) */
static float *random_floats(long n, unsigned *seed) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    fill_uniform(p, n, 1.0f, (*seed)++);
    return p;
}

/* 1 when the variants k and kk would disturb each other's timing if interleaved: the
 * thread pools of OpenMP and OpenBLAS keep spinning for a while after a parallel call, and
 * on a 2-core machine a spinning pool steals the core the other one needs. */
static int is_two_thread(int k) { return k == K_FAST2 || k == K_BLAS2; }

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Runs each lesson kernel once on a small product: those that hit a TODO are left out. */
static void find_todo(void) {
    float x[5 * 37], w[19 * 37], y[5 * 19];
    bf16 wb[19 * 37];
    for (int i = 0; i < 5 * 37; i++) x[i] = 0.5f;
    for (int i = 0; i < 19 * 37; i++) w[i] = 0.25f;
    bf16_from_float(wb, w, 19 * 37);
    Shape small[2] = {{"probe", 5, 37, 19, 0, 0, {0}, 0}, {"probe", 1, 37, 19, 0, 0, {0}, 0}};
    for (int k = 0; k < N_KERNELS; k++) {
        if (k == K_BLAS1 || k == K_BLAS2) continue;
        for (int i = 0; i < 2; i++) {
            KernelJob j = {&small[i], k, y, x, w, wb};
            todo_reset();
            set_threads(1);
            run_kernel(&j);
            const TodoHit *hit = todo_first();
            if (hit && !kernel_todo[k]) {
                kernel_todo[k] = 1;
                if (!strstr(todo_names, hit->func) && strlen(todo_names) + strlen(hit->func) + 3 < sizeof todo_names)
                    strcat(strcat(todo_names, todo_names[0] ? ", " : ""), hit->func);
            }
        }
    }
    todo_reset();
    if (kernel_todo[K_FAST1]) kernel_todo[K_FAST2] = 1;
}

/* Times every kernel on every shape and checks they agree. One-thread variants run round
 * robin within each round; the two-thread ones each get their rounds in a block, with a
 * pause before and after so that the other library's spinning threads have gone to sleep. */
static void time_shapes(Shape *shapes, int n, const Options *o, int threads2) {
    unsigned seed = 7;
    for (int i = 0; i < n; i++) {
        Shape *s = &shapes[i];
        float *x = random_floats((long)s->T * s->in, &seed);
        float *w = random_floats((long)s->out * s->in, &seed);
        float *y = random_floats((long)s->T * s->out, &seed);
        float *ref = random_floats((long)s->T * s->out, &seed);
        bf16 *wb = malloc(sizeof(bf16) * (size_t)s->out * (size_t)s->in);
        if (!wb) {
            fprintf(stderr, "bench: out of memory\n");
            exit(2);
        }
        bf16_from_float(wb, w, (long)s->out * s->in);
        double t[N_KERNELS][16];
        int reps = o->reps < 16 ? o->reps : 16;
        double min_s = o->quick ? 0.005 : 0.02, peaks[16] = {0};
        int ref_kernel = -1;
        for (int phase = 0; phase < N_KERNELS; phase++) {
            /* phase 0: every one-thread kernel, round robin; then each two-thread one alone */
            if (phase > 0 && !is_two_thread(phase)) continue;
            if (phase > 0 && !kernel_available(phase, s, threads2)) continue;
            if (phase > 0) sleep_s(0.25);
            for (int r = 0; r < reps; r++)
                for (int k = 0; k < N_KERNELS; k++) {
                    if (phase == 0 ? is_two_thread(k) : k != phase) continue;
                    if (!kernel_available(k, s, threads2)) continue;
                    set_threads(is_two_thread(k) ? 2 : 1);
                    if (k == K_FAST1) { /* the peak, right before: same clock, same load */
                        long fma_n = 1L << 12;
                        peaks[r] = 2.0 * PEAK_CHAINS * fast_matmul_lanes() * (double)fma_n /
                                   per_call(fma_loop, &fma_n, min_s);
                    }
                    KernelJob j = {s, k, y, x, w, wb};
                    t[k][r] = per_call(run_kernel, &j, min_s);
                    if (r > 0 || k == K_BF16) continue; /* bf16 rounds W: make check tests it */
                    if (ref_kernel < 0) { /* the first kernel run is the reference */
                        memcpy(ref, y, sizeof(float) * (size_t)s->T * s->out);
                        ref_kernel = k;
                        continue;
                    }
                    for (long e = 0; e < (long)s->T * s->out; e++) /* all compute the same */
                        if (!(fabsf(y[e] - ref[e]) <= 1e-3f + 1e-3f * fabsf(ref[e]))) {
                            fprintf(stderr, "bench: %s disagrees with %s on %s: fix it first "
                                            "(make check LESSON=09)\n",
                                    KERNEL_NAME[k], KERNEL_NAME[ref_kernel], s->name);
                            exit(2);
                        }
                }
            set_threads(1);
        }
        for (int k = 0; k < N_KERNELS; k++)
            s->s[k] = kernel_available(k, s, threads2) ? median(t[k], reps) : 0.0;
        s->peak = kernel_available(K_FAST1, s, threads2) ? median(peaks, reps) : 0.0;
        free(x), free(w), free(y), free(ref), free(wb);
    }
    sleep_s(0.25);
}

/* Sum over the model's shapes of count * seconds of kernel k (0 if any is missing). A
 * two-thread kernel not run on a shape too small for threads counts its one-thread time:
 * lesson 09 runs those on one thread. */
static double model_seconds(const Shape *shapes, int n, int k) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        if (!shapes[i].is_model) continue;
        double s = shapes[i].s[k];
        if (s <= 0.0 && (k == K_FAST2 || k == K_BLAS2) &&
            (double)shapes[i].T * shapes[i].in * shapes[i].out < 4194304.0)
            s = shapes[i].s[k == K_FAST2 ? K_FAST1 : K_BLAS1];
        if (s <= 0.0) return 0.0;
        sum += shapes[i].count * s;
    }
    return sum;
}

static double model_flops(const Shape *shapes, int n) {
    double f = 0.0;
    for (int i = 0; i < n; i++)
        if (shapes[i].is_model) f += shapes[i].count * 2.0 * shapes[i].T * shapes[i].in * shapes[i].out;
    return f;
}

/* ------------------------------------------------------------------------------------
 * the model: prefill and decode tokens/s
 * ---------------------------------------------------------------------------------- */

static const char TEXT[] =
    "The secret of a happy life is to find out what you love, and then to do it with all "
    "your heart. % Q: How many programmers does it take to change a light bulb? A: None, "
    "that is a hardware problem. % A journey of a thousand miles begins with a single step, "
    "and so does a journey of one. % ";

typedef struct {
    Model m;
    int loaded;
    float *x, *logits;
    int *ids;
    int P, N;
} Bench;

static int bench_open(Bench *b, const char *dir, ModelConfig *from_config, const SafeTensors *st,
                      int P, int N, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    ModelOptions mo = {.max_seq = P + N + 1, .max_tokens = P};
    int rc = from_config ? model_build(&b->m, from_config, st, "", &mo, err, errlen)
                         : model_load_dir(&b->m, dir, &mo, err, errlen);
    if (rc != 0) return -1;
    const ModelConfig *c = &b->m.config;
    b->loaded = 1;
    b->P = P, b->N = N;
    b->x = malloc(sizeof(float) * (size_t)P * c->hidden_size);
    b->logits = malloc(sizeof(float) * (size_t)P * c->vocab_size);
    b->ids = malloc(sizeof(int) * (size_t)(P + N));
    if (!b->x || !b->logits || !b->ids) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n_text = (int)strlen(TEXT);
    for (int i = 0; i < P + N; i++) b->ids[i] = (unsigned char)TEXT[i % n_text] % c->vocab_size;
    return 0;
}

static void bench_close(Bench *b) {
    if (b->loaded) model_free(&b->m);
    free(b->x), free(b->logits), free(b->ids);
    memset(b, 0, sizeof *b);
}

static void prefill_job(void *arg) {
    Bench *b = arg;
    model_forward(&b->m, b->ids, b->P, 0, b->x, b->logits);
}

/* Seconds per decoded token: the prompt through the cache (not timed), then N tokens. */
static double decode_seconds(Bench *b) {
    model_forward(&b->m, b->ids, b->P, 0, b->x, b->logits);
    double t0 = now_seconds();
    for (int i = 0; i < b->N; i++)
        model_forward(&b->m, &b->ids[b->P + i], 1, b->P + i, b->x, b->logits);
    return (now_seconds() - t0) / b->N;
}

enum { M_NAIVE1, M_FAST1, M_FAST2, N_MODES };
static const char *MODE_NAME[N_MODES] = {"lesson01_1t", "fast_1t", "fast_2t"};

typedef struct {
    double prefill_tps[N_MODES], decode_tps[N_MODES]; /* 0: not run */
} ModelTimes;

static void set_mode(int mode) {
    linear_use(mode == M_NAIVE1 ? KERNEL_MATMUL : KERNEL_FAST_MATMUL);
    set_threads(mode == M_FAST2 ? 2 : 1);
}

/* rounds x modes, round robin; appended to per-mode sample arrays */
static void time_model(Bench *b, int rounds, int threads2, double *pre, double *dec, int *n) {
    for (int r = 0; r < rounds; r++) {
        for (int mode = 0; mode < N_MODES; mode++) {
            if (mode == M_FAST2 && !threads2) continue;
            if (mode != M_NAIVE1 && kernel_todo[K_FAST1]) continue;
            set_mode(mode);
            pre[mode * 64 + n[mode]] = b->P / per_call(prefill_job, b, 0.05);
            dec[mode * 64 + n[mode]] = 1.0 / decode_seconds(b);
            n[mode]++;
        }
    }
    linear_use(KERNEL_FAST_MATMUL);
    set_threads(1);
}

/* ------------------------------------------------------------------------------------
 * the default thread count against one thread, on a quiet and on a busy machine
 * ---------------------------------------------------------------------------------- */

/* A child process that spins, as another program wanting a core would, until killed (or
 * until its parent is gone: it checks now and then). Returns its pid, or -1. */
static pid_t start_busy(void) {
    pid_t parent = getpid();
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) return pid;
    for (;;) {
        for (volatile unsigned long i = 0; i < 100000000UL; i++) {}
        if (getppid() != parent) _exit(0);
    }
}

static void stop_busy(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

enum { TD_ONE, TD_DEFAULT, N_TD };

typedef struct {
    int threads, T; /* the default thread count; prompt tokens */
    double prefill_tps[2][N_TD], decode_tps[2][N_TD]; /* [busy][TD_...], medians */
    char why[200]; /* non-empty: skipped, and why */
} DefaultThreads;

typedef struct {
    Bench *b;
    int T;
} PrefillJob;

static void prefill_t_job(void *arg) {
    PrefillJob *j = arg;
    model_forward(&j->b->m, j->b->ids, j->T, 0, j->b->x, j->b->logits);
}

/* Rounds of 1 thread and the default count, in alternating order, first on the machine as
 * it is, then next to a spinning child: prefill of the demo prompt's 29 tokens (TEXT
 * starts with it) and decode. The threads run as the CLI runs them (the same wait policy,
 * harness/src/omp_wait.c, and the same thresholds). */
static void time_default_threads(DefaultThreads *d, Bench *b, int threads, int reps,
                                 double min_s) {
    d->threads = threads, d->T = b->P < 29 ? b->P : 29;
    PrefillJob job = {b, d->T};
    for (int busy = 0; busy < 2 && !d->why[0]; busy++) {
        pid_t pid = busy ? start_busy() : 0;
        if (pid < 0) {
            snprintf(d->why, sizeof d->why, "skipped: fork failed");
            break;
        }
        double pre[N_TD][16], dec[N_TD][16];
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < N_TD; i++) {
                int m = r % 2 ? N_TD - 1 - i : i;
                set_threads(m == TD_ONE ? 1 : threads);
                pre[m][r] = d->T / per_call(prefill_t_job, &job, min_s);
                dec[m][r] = 1.0 / decode_seconds(b);
            }
        stop_busy(pid);
        for (int m = 0; m < N_TD; m++) {
            d->prefill_tps[busy][m] = median(pre[m], reps);
            d->decode_tps[busy][m] = median(dec[m], reps);
        }
    }
    set_threads(1);
}

static void print_default_threads(const DefaultThreads *d, int reps) {
    if (d->why[0]) return;
    printf("\nthe demo model, 1 thread vs the default (%d threads), tokens/s, median of %d "
           "rounds;\nbusy: a spinning child process on the side\n", d->threads, reps);
    printf("%-18s %10s %12s %10s %12s\n", "", "1t", "default", "1t busy", "default busy");
    printf("%-18s %10.0f %12.0f %10.0f %12.0f\n", "prefill 29 tokens", d->prefill_tps[0][TD_ONE],
           d->prefill_tps[0][TD_DEFAULT], d->prefill_tps[1][TD_ONE], d->prefill_tps[1][TD_DEFAULT]);
    printf("%-18s %10.0f %12.0f %10.0f %12.0f\n", "decode", d->decode_tps[0][TD_ONE],
           d->decode_tps[0][TD_DEFAULT], d->decode_tps[1][TD_ONE], d->decode_tps[1][TD_DEFAULT]);
}

static void put_default_threads_json(FILE *f, const DefaultThreads *d) {
    fprintf(f, "  \"default_threads_tokens_per_s\": {\"threads\": %d, \"prompt_tokens\": %d",
            d->threads, d->T);
    const char *name[2] = {"idle", "busy"};
    for (int busy = 0; busy < 2; busy++)
        fprintf(f, ", \"%s\": {\"prefill_1t\": %.1f, \"prefill_default\": %.1f, "
                   "\"decode_1t\": %.1f, \"decode_default\": %.1f}",
                name[busy], d->prefill_tps[busy][TD_ONE], d->prefill_tps[busy][TD_DEFAULT],
                d->decode_tps[busy][TD_ONE], d->decode_tps[busy][TD_DEFAULT]);
    fprintf(f, "},\n");
}

/* ------------------------------------------------------------------------------------
 * PyTorch, in a child process
 * ---------------------------------------------------------------------------------- */

typedef struct {
    double prefill_tps, decode_tps, nocache_tps;
    char version[64];
    char why[700]; /* non-empty: skipped, and why */
} TorchResult;

static TorchResult run_torch(const Options *o, const char *dir, int threads) {
    TorchResult r;
    memset(&r, 0, sizeof r);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d MKL_NUM_THREADS=%d '%s' "
             "harness/bench/torch_bench.py --model '%s' --threads %d --prompt %d --decode %d "
             "--reps %d%s 2>&1",
             threads, threads, threads, o->python, dir, threads, o->prompt, o->decode, o->reps,
             threads > 1 ? " --no-nocache" : "");
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(r.why, sizeof r.why, "skipped: cannot start %s", o->python);
        return r;
    }
    char line[512], last[512] = "";
    while (fgets(line, sizeof line, p)) {
        double v;
        char name[64];
        if (sscanf(line, "%63s %lf", name, &v) == 2) {
            if (!strcmp(name, "prefill_tokens_per_s")) r.prefill_tps = v;
            else if (!strcmp(name, "decode_tokens_per_s")) r.decode_tps = v;
            else if (!strcmp(name, "nocache_tokens_per_s")) r.nocache_tps = v;
        }
        if (sscanf(line, "torch_version %63s", name) == 1) snprintf(r.version, sizeof r.version, "%s", name);
        if (line[0] && line[0] != '\n') snprintf(last, sizeof last, "%s", line);
    }
    int status = pclose(p);
    if (status != 0 || r.prefill_tps <= 0.0 || r.decode_tps <= 0.0) {
        last[strcspn(last, "\n")] = '\0';
        snprintf(r.why, sizeof r.why, "skipped: PyTorch (%s) failed: %s", o->python,
                 last[0] ? last : "no output");
    }
    return r;
}

/* ------------------------------------------------------------------------------------
 * synthetic models for expert_scaling
 * ---------------------------------------------------------------------------------- */

/* The shape of a synthetic byte-level Qwen3-MoE: layer 0 dense (as in the demo), layers
 * 1..L-1 sparse; the number of experts is given apart, so that a pair differs only in it. */
typedef struct {
    int C, L, H, KV, D, Id, Im, V, k;
} SynthShape;

static SynthShape demo_synth_shape(const ModelConfig *c) {
    return (SynthShape){c->hidden_size, c->num_hidden_layers, c->num_attention_heads,
                        c->num_key_value_heads, c->head_dim, c->intermediate_size,
                        c->moe_intermediate_size, c->vocab_size, c->num_experts_per_tok};
}

/* The shape expert_scaling is measured on. A real MoE is far larger than any cache, so
 * both models of the pair must be too: 1.5 MiB per expert, 8 sparse layers, so E = 8 holds
 * 96 MiB of experts (3x a 32 MiB L3) and E = 64 768 MiB, and both stream the chosen
 * experts from memory for every token. With the demo's shape the E = 8 model (9 MB of
 * experts) sits in L3 and E = 64 does not: that ratio shows the cache, not the work.
 * top-k is the demo's, at most 4, so that E = 8 still chooses. */
static SynthShape big_synth_shape(int k) {
    return (SynthShape){256, 9, 4, 2, 64, 1024, 512, 256, k < 4 ? k : 4};
}

static double synth_expert_bytes(const SynthShape *sh, int E) {
    return sizeof(float) * 3.0 * sh->C * sh->Im * E * (sh->L - 1);
}

/* All the weights, in bytes (the experts are most of them) */
static double synth_bytes(const SynthShape *sh, int E) {
    double C = sh->C, attn = 2.0 * sh->H * sh->D * C + 2.0 * sh->KV * sh->D * C;
    double floats = 2.0 * sh->V * C + sh->L * (attn + 2.0 * C + 2.0 * sh->D) +
                    3.0 * sh->Id * C + (sh->L - 1.0) * E * C;
    return sizeof(float) * floats + synth_expert_bytes(sh, E);
}

static void synth_shape_str(char *out, size_t len, const SynthShape *sh) {
    snprintf(out, len, "hidden %d, expert %dx%d, %d layers, top-%d", sh->C, sh->C, sh->Im, sh->L,
             sh->k);
}

typedef struct {
    char *buf;
    size_t size;
    SafeTensors st;
} Synth;

typedef struct {
    char name[96];
    long rows, cols; /* cols 0: a vector */
} SynthTensor;

static int synth_config(ModelConfig *c, const SynthShape *sh, int E, char *err, size_t errlen) {
    char config[1024];
    snprintf(config, sizeof config,
             "{\"model_type\": \"qwen3_moe\", \"vocab_size\": %d, \"hidden_size\": %d, "
             "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
             "\"head_dim\": %d, \"intermediate_size\": %d, \"moe_intermediate_size\": %d, "
             "\"num_experts\": %d, \"num_experts_per_tok\": %d, \"norm_topk_prob\": true, "
             "\"decoder_sparse_step\": 1, \"mlp_only_layers\": [0], \"rms_norm_eps\": 1e-6, "
             "\"rope_theta\": 10000.0, \"max_position_embeddings\": 4096, "
             "\"tie_word_embeddings\": true}",
             sh->V, sh->C, sh->L, sh->H, sh->KV, sh->D, sh->Id, sh->Im, E, sh->k);
    return config_parse(c, config, strlen(config), "synthetic config", err, errlen);
}

/* The tensors, in file order (each expert's three matrices side by side, as in a real
 * checkpoint); NULL when out of memory. */
static SynthTensor *synth_tensors(const SynthShape *sh, int E, long *count) {
    int C = sh->C, L = sh->L, H = sh->H, KV = sh->KV, D = sh->D, Im = sh->Im, Id = sh->Id;
    long cap = 8 + (long)L * (10 + 3L * E), n = 0;
    SynthTensor *t = calloc((size_t)cap, sizeof *t);
    if (!t) return NULL;
#define ADD(r, cc, ...)                                                                    \
    do {                                                                                   \
        snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__);                                \
        t[n].rows = (r), t[n].cols = (cc), n++;                                            \
    } while (0)
    ADD(sh->V, C, "model.embed_tokens.weight");
    ADD(C, 0, "model.norm.weight");
    for (int l = 0; l < L; l++) {
        ADD(C, 0, "model.layers.%d.input_layernorm.weight", l);
        ADD(C, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD((long)H * D, C, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD((long)KV * D, C, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD((long)KV * D, C, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(C, (long)H * D, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD(D, 0, "model.layers.%d.self_attn.q_norm.weight", l);
        ADD(D, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        if (l == 0) {
            ADD(Id, C, "model.layers.0.mlp.gate_proj.weight");
            ADD(Id, C, "model.layers.0.mlp.up_proj.weight");
            ADD(C, Id, "model.layers.0.mlp.down_proj.weight");
            continue;
        }
        ADD(E, C, "model.layers.%d.mlp.gate.weight", l);
        for (int e = 0; e < E; e++) {
            ADD(Im, C, "model.layers.%d.mlp.experts.%d.gate_proj.weight", l, e);
            ADD(Im, C, "model.layers.%d.mlp.experts.%d.up_proj.weight", l, e);
            ADD(C, Im, "model.layers.%d.mlp.experts.%d.down_proj.weight", l, e);
        }
    }
#undef ADD
    *count = n;
    return t;
}

static size_t tensor_bytes(const SynthTensor *t) {
    return sizeof(float) * (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
}

/* The safetensors header JSON, padded so that the data starts 64-byte aligned after the
 * 8-byte length; NULL when out of memory. */
static char *synth_header(const SynthTensor *t, long n, size_t *hlen) {
    size_t cap = (size_t)n * 160 + 64, len = 0, data = 0;
    char *h = malloc(cap);
    if (!h) return NULL;
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (long i = 0; i < n; i++) {
        size_t bytes = tensor_bytes(&t[i]);
        if (t[i].cols)
            len += (size_t)snprintf(h + len, cap - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld,%ld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", t[i].name, t[i].rows, t[i].cols, data, data + bytes);
        else
            len += (size_t)snprintf(h + len, cap - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", t[i].name, t[i].rows, data, data + bytes);
        data += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while ((8 + len) % 64) h[len++] = ' ';
    *hlen = len;
    return h;
}

/* Random weights scaled by 1/sqrt(fan-in), so activations stay O(1); norms 1. The
 * embedding is not scaled down: at 1/sqrt(C) the token is a whisper in the residual stream,
 * which the attention output (an almost uniform average over the context, nearly the same
 * for every token) drowns, so the router picks the same few experts for every token (80%
 * of E = 8's picks repeat the previous token's) and those can stay in cache. At full scale the
 * picks follow the token, as in a trained model (a third repeat with E = 8, a tenth with
 * E = 64; independent picks would repeat 1/4 and 1/32 of the time). */
static void synth_fill(float *f, const SynthTensor *t, long n, unsigned seed) {
    for (long i = 0; i < n; i++) {
        long cnt = t[i].rows * (t[i].cols ? t[i].cols : 1);
        int embed = !strcmp(t[i].name, "model.embed_tokens.weight");
        float scale = embed ? 1.0f : 1.0f / sqrtf((float)(t[i].cols ? t[i].cols : 1));
        if (t[i].cols) fill_uniform(f, cnt, scale, seed + (unsigned)i);
        else
            for (long j = 0; j < cnt; j++) f[j] = 1.0f;
        f += cnt;
    }
}

/* A byte-level Qwen3-MoE of shape sh with E experts, random weights, in memory (a
 * safetensors image that the model uses in place). On failure c is freed. */
static int synth_model(Synth *s, const SynthShape *sh, int E, ModelConfig *c, char *err,
                       size_t errlen) {
    if (synth_config(c, sh, E, err, errlen) != 0) return -1;
    long n = 0;
    size_t hlen = 0;
    SynthTensor *t = synth_tensors(sh, E, &n);
    char *header = t ? synth_header(t, n, &hlen) : NULL;
    size_t data = 0;
    for (long i = 0; header && i < n; i++) data += tensor_bytes(&t[i]);
    s->size = 8 + hlen + data;
    s->buf = header ? aligned_alloc(64, (s->size + 63) / 64 * 64) : NULL;
    if (!s->buf) {
        free(t), free(header), config_free(c);
        snprintf(err, errlen, "out of memory (%.0f MiB)", synth_bytes(sh, E) / 1048576.0);
        return -1;
    }
    unsigned long long len = hlen;
    for (int i = 0; i < 8; i++) s->buf[i] = (char)(len >> (8 * i) & 0xff);
    memcpy(s->buf + 8, header, hlen);
    synth_fill((float *)(void *)(s->buf + 8 + hlen), t, n, 99u + (unsigned)E);
    free(t), free(header);
    if (st_open_memory(&s->st, s->buf, s->size, "synthetic model", err, errlen) == 0) return 0;
    config_free(c);
    return -1;
}

static void synth_free(Synth *s) {
    st_close(&s->st);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* MemAvailable from /proc/meminfo in bytes; 0 when unknown */
static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0.0;
    char line[256];
    double kb = 0.0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024.0;
}

/* The largest cache of cpu 0 (the last level) in bytes, from sysfs; 0 when unknown. Only
 * printed: the pairs' sizes are fixed, so that runs on different machines compare. */
static double llc_bytes(void) {
    double best = 0.0;
    for (int i = 0; i < 8; i++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        double kb = 0.0;
        if (fscanf(f, "%lfK", &kb) == 1 && kb * 1024.0 > best) best = kb * 1024.0;
        fclose(f);
    }
    return best;
}

/* One pair of synthetic models, E = 8 and E = 64, timed against each other */
enum { N_SCALE = 2 };
static const int SCALE_E[N_SCALE] = {8, 64};

typedef struct {
    double us[N_SCALE]; /* decode us/token, median of the rounds */
    double ratio;       /* E = 64 / E = 8, median of the per-round ratios */
    char why[700];      /* non-empty: skipped, and why */
} Scaling;

/* Builds both models of the pair (both are kept: the timing alternates between them) */
static int scaling_open(Synth *s, Bench *b, const SynthShape *sh, int P, int N, char *why,
                        size_t len) {
    double need = synth_bytes(sh, SCALE_E[0]) + synth_bytes(sh, SCALE_E[1]), avail = mem_available();
    if (avail > 0.0 && need > 0.75 * avail) { /* Linux overcommits: malloc would not say */
        snprintf(why, len, "skipped: the synthetic models need %.0f MiB, %.0f MiB available",
                 need / 1048576.0, avail / 1048576.0);
        return -1;
    }
    char err[512];
    for (int i = 0; i < N_SCALE; i++) {
        ModelConfig c;
        if (synth_model(&s[i], sh, SCALE_E[i], &c, err, sizeof err) != 0 ||
            bench_open(&b[i], NULL, &c, &s[i].st, P, N, err, sizeof err) != 0) {
            snprintf(why, len, "skipped: synthetic model: %s", err);
            return -1;
        }
    }
    return 0;
}

/* Rounds of E = 8 and E = 64, one right after the other: a burst of noise or a drift of
 * the clock hits both alike, and the median of the per-round ratios ignores the rounds it
 * spoiled. One thread, lesson 09's matmul (lesson 01's while 09 has a TODO). */
static void scaling_rounds(Scaling *r, Bench *b, int reps) {
    double t[N_SCALE][16], ratio[16];
    linear_use(kernel_todo[K_FAST1] ? KERNEL_MATMUL : KERNEL_FAST_MATMUL);
    set_threads(1);
    todo_reset();
    for (int i = 0; i < N_SCALE; i++) decode_seconds(&b[i]); /* warm: KV cache, scratch */
    const TodoHit *hit = todo_first();
    if (hit)
        snprintf(r->why, sizeof r->why, "skipped: %s() has a TODO (%s:%d)", hit->func,
                 hit->file, hit->line);
    for (int k = 0; k < reps && !hit; k++) {
        for (int j = 0; j < N_SCALE; j++) { /* odd rounds E = 64 first: no fixed order */
            int i = k % 2 ? N_SCALE - 1 - j : j;
            t[i][k] = decode_seconds(&b[i]);
        }
        ratio[k] = t[1][k] / t[0][k];
    }
    for (int i = 0; i < N_SCALE && !hit; i++) r->us[i] = median(t[i], reps) * 1e6;
    if (!hit) r->ratio = median(ratio, reps);
    todo_reset();
    linear_use(KERNEL_FAST_MATMUL);
}

/* Decode time per token of the pair of shape sh: prompt P tokens (not timed), N decoded */
static void time_scaling(Scaling *r, const SynthShape *sh, int P, int N, int reps) {
    Synth s[N_SCALE];
    Bench b[N_SCALE];
    memset(r, 0, sizeof *r), memset(s, 0, sizeof s), memset(b, 0, sizeof b);
    if (scaling_open(s, b, sh, P, N, r->why, sizeof r->why) == 0) scaling_rounds(r, b, reps);
    for (int i = 0; i < N_SCALE; i++) bench_close(&b[i]), synth_free(&s[i]);
}

/* ------------------------------------------------------------------------------------
 * output
 * ---------------------------------------------------------------------------------- */

typedef struct {
    const char *name, *target, *how;
    double value;  /* valid when why is empty */
    char why[700]; /* "skipped: ..." */
} Ratio;

static void ratio_set(Ratio *r, double num, double den) {
    if (r->why[0]) return;
    if (num > 0.0 && den > 0.0) r->value = num / den;
    else snprintf(r->why, sizeof r->why, "skipped: not measured");
}


/* One line per pair of synthetic models: its shape, its experts' size, the times */
static void print_scaling_pair(const char *name, const SynthShape *sh, const Scaling *s) {
    char shape[128];
    synth_shape_str(shape, sizeof shape, sh);
    printf("  %-11s %s; experts %.1f / %.1f MiB: ", name, shape,
           synth_expert_bytes(sh, SCALE_E[0]) / 1048576.0, synth_expert_bytes(sh, SCALE_E[1]) / 1048576.0);
    if (s->why[0]) printf("%s\n", s->why);
    else printf("E=8 %.1f, E=64 %.1f\n", s->us[0], s->us[1]);
}

static void print_scaling(const SynthShape *big, const Scaling *s, const SynthShape *demo,
                          const Scaling *sd, int reps) {
    double llc = llc_bytes();
    printf("\nsynthetic models, decode us/token, 1 thread, median of %d interleaved rounds", reps);
    if (llc > 0.0) printf(" (last-level cache here: %.0f MiB)", llc / 1048576.0);
    printf(":\n");
    print_scaling_pair("ratio", big, s);
    print_scaling_pair("demo shape", demo, sd);
}

static void put_scaling_json(FILE *f, const SynthShape *big, const Scaling *s,
                             const SynthShape *demo, const Scaling *sd) {
    char shape[128], demo_shape[128];
    synth_shape_str(shape, sizeof shape, big);
    synth_shape_str(demo_shape, sizeof demo_shape, demo);
    fprintf(f, "  \"expert_scaling_us_per_token\": {\"E8\": %.2f, \"E64\": %.2f, "
               "\"demo_shape_E8\": %.2f, \"demo_shape_E64\": %.2f, \"shape\": ",
            s->us[0], s->us[1], sd->us[0], sd->us[1]);
    json_put_string(f, shape);
    fprintf(f, ", \"demo_shape\": ");
    json_put_string(f, demo_shape);
    fprintf(f, "},\n");
}

static void cpu_name(char *out, size_t len) {
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            while (*v == ' ') v++;
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, len, "%s", v);
            break;
        }
    fclose(f);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench [--model DIR] [--prompt N] [--decode N] [--reps N] [--json FILE]\n"
               "             [--python PATH] [--no-torch] [--quick]\n");
}

static int parse(Options *o, int argc, char **argv) {
    *o = (Options){"data/model", "build/bench.json", "/usr/bin/python3", 64, 128, 5, 1, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--no-torch")) o->torch = 0;
        else if (!strcmp(a, "--quick")) o->quick = 1, o->reps = 3;
        else if (!strcmp(a, "--help")) return usage(stdout), 1;
        else if (!more) return usage(stderr), -1;
        else if (!strcmp(a, "--model")) o->model_dir = argv[++i];
        else if (!strcmp(a, "--json")) o->json_path = argv[++i];
        else if (!strcmp(a, "--python")) o->python = argv[++i];
        else if (!strcmp(a, "--prompt")) o->prompt = atoi(argv[++i]);
        else if (!strcmp(a, "--decode")) o->decode = atoi(argv[++i]);
        else if (!strcmp(a, "--reps")) o->reps = atoi(argv[++i]);
        else return usage(stderr), -1;
    }
    if (o->prompt < 1 || o->decode < 1 || o->reps < 1 || o->reps > 16) {
        fprintf(stderr, "bench: --prompt and --decode >= 1, --reps 1..16\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    Options o;
    int rc = parse(&o, argc, argv);
    if (rc) return rc > 0 ? 0 : 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char cpu[256], date[64], err[512];
    cpu_name(cpu, sizeof cpu);
    time_t tt = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&tt));
    int threads2 = have_threads2();
    int default_threads = fast_matmul_max_threads(); /* before any set_threads() */
    printf("moekit bench, %s\n%s, %d cores; lesson 09 compiled for %s (%d lanes), OpenMP %s, "
           "OpenBLAS %s\n",
           date, cpu, cores(), fast_matmul_isa(), fast_matmul_lanes(),
#ifdef _OPENMP
           "on",
#else
           "off",
#endif
#ifdef HAVE_OPENBLAS
           "linked"
#else
           "not found"
#endif
    );

    /* the demo model (its shapes drive the kernel table) */
    Bench b;
    int have_model = bench_open(&b, o.model_dir, NULL, NULL, o.prompt, o.decode, err, sizeof err) == 0;
    char model_why[600] = "";
    if (!have_model) {
        snprintf(model_why, sizeof model_why, "skipped: %s", err);
        bench_close(&b);
    } else { /* the model needs lessons 01-08 written */
        linear_use(KERNEL_MATMUL);
        todo_reset();
        prefill_job(&b);
        const TodoHit *hit = todo_first();
        if (hit) {
            snprintf(model_why, sizeof model_why, "skipped: %s() has a TODO (%s:%d)", hit->func,
                     hit->file, hit->line);
            todo_reset();
            have_model = 0;
            bench_close(&b);
        }
        linear_use(KERNEL_FAST_MATMUL);
    }
    ModelConfig demo = {0};
    if (have_model) demo = b.m.config;
    else { /* the demo's shape, so the kernel table still means something */
        demo.hidden_size = 160, demo.num_hidden_layers = 4, demo.num_attention_heads = 4;
        demo.num_key_value_heads = 2, demo.head_dim = 32, demo.intermediate_size = 384;
        demo.moe_intermediate_size = 192, demo.num_experts = 8, demo.num_experts_per_tok = 2;
        demo.vocab_size = 256;
    }
    int C = demo.hidden_size, Im = demo.moe_intermediate_size, Id = demo.intermediate_size;
    int E = demo.num_experts, k = demo.num_experts_per_tok, L = demo.num_hidden_layers;
    int q = demo.num_attention_heads * demo.head_dim, kv = demo.num_key_value_heads * demo.head_dim;
    int P = o.prompt, rows = (P * k + E - 1) / E; /* an expert's rows in a balanced prefill */
    int dense = 0, sparse = 0;
    for (int l = 0; l < L; l++) {
        int sp = E > 0 && !(have_model && !b.m.weights.layers[l].is_sparse) &&
                 !(!have_model && l == 0);
        sparse += sp, dense += !sp;
    }

    printf("FMA peak, 1 thread, measured now: ");
    double peak = measure_peak(o.reps);
    printf("%.1f GFLOP/s\n", peak * 1e-9);

    /* prefill GEMMs: what one prefill of P tokens runs as matrix-matrix products */
    Shape gemm[] = {
        {"dense gate/up_proj", P, C, Id, 2 * dense, 1, {0}, 0},
        {"dense down_proj", P, Id, C, dense, 1, {0}, 0},
        {"router gate", P, C, E, sparse, 1, {0}, 0},
        {"expert gate/up_proj", rows, C, Im, 2 * E * sparse, 1, {0}, 0},
        {"expert down_proj", rows, Im, C, E * sparse, 1, {0}, 0},
        {"square 256", 256, 256, 256, 0, 0, {0}, 0},
        {"square 512", 512, 512, 512, 0, 0, {0}, 0},
        {"square 1024", 1024, 1024, 1024, 0, 0, {0}, 0},
    };
    int n_gemm = (int)(sizeof gemm / sizeof gemm[0]) - (o.quick ? 2 : 0);
    /* decode GEMVs: one token */
    Shape gemv[] = {
        {"q_proj", 1, C, q, L, 1, {0}, 0},
        {"k_proj, v_proj", 1, C, kv, 2 * L, 1, {0}, 0},
        {"o_proj", 1, q, C, L, 1, {0}, 0},
        {"router gate", 1, C, E, sparse, 1, {0}, 0},
        {"expert gate/up_proj", 1, C, Im, 2 * k * sparse, 1, {0}, 0},
        {"expert down_proj", 1, Im, C, k * sparse, 1, {0}, 0},
        {"dense gate/up_proj", 1, C, Id, 2 * dense, 1, {0}, 0},
        {"dense down_proj", 1, Id, C, dense, 1, {0}, 0},
        {"lm_head", 1, C, demo.vocab_size, 1, 1, {0}, 0},
        {"square 1024", 1, 1024, 1024, 0, 0, {0}, 0},
        {"square 4096", 1, 4096, 4096, 0, 0, {0}, 0},
    };
    int n_gemv = (int)(sizeof gemv / sizeof gemv[0]) - (o.quick ? 1 : 0);
    /* drop shapes the model does not have (no dense layer, say) */
    for (int i = 0; i < n_gemm; i++) if (gemm[i].is_model && gemm[i].count == 0) gemm[i].is_model = 0;
    for (int i = 0; i < n_gemv; i++) if (gemv[i].is_model && gemv[i].count == 0) gemv[i].is_model = 0;

    find_todo();
    if (todo_names[0])
        printf("still TODO (left out below): %s: make check LESSON=09\n", todo_names);
    printf("timing the kernels (median of %d rounds) ...\n", o.reps);
    time_shapes(gemm, n_gemm, &o, threads2);
    time_shapes(gemv, n_gemv, &o, threads2);

    printf("\nGEMM y (T, out) = x (T, in) . W (out, in)^T: GFLOP/s (1 thread unless _2t)\n");
    printf("%-22s %5s %5s %5s %4s", "shape", "T", "in", "out", "x");
    for (int kk = 0; kk < N_KERNELS; kk++) printf(" %11s", KERNEL_NAME[kk]);
    printf("\n");
    Shape *tables[2] = {gemm, gemv};
    int counts[2] = {n_gemm, n_gemv};
    for (int tb = 0; tb < 2; tb++) {
        if (tb == 1) printf("GEMV, one token (decode):\n");
        for (int i = 0; i < counts[tb]; i++) {
            Shape *s = &tables[tb][i];
            printf("%-22s %5d %5d %5d %4d", s->name, s->T, s->in, s->out, s->count);
            for (int kk = 0; kk < N_KERNELS; kk++) {
                if (s->s[kk] > 0.0) printf(" %11.1f", 2.0 * s->T * s->in * s->out / s->s[kk] * 1e-9);
                else printf(" %11s", kernel_todo[kk] ? "todo" : "-");
            }
            printf("\n");
        }
    }

    /* the model */
    ModelTimes mt;
    memset(&mt, 0, sizeof mt);
    DefaultThreads dt;
    memset(&dt, 0, sizeof dt);
    TorchResult torch1, torch2;
    memset(&torch1, 0, sizeof torch1), memset(&torch2, 0, sizeof torch2);
    if (!o.torch) {
        snprintf(torch1.why, sizeof torch1.why, "skipped: --no-torch");
        snprintf(torch2.why, sizeof torch2.why, "skipped: --no-torch");
    }
    if (have_model) {
        printf("\ntiming the model %s: prefill %d tokens, decode %d ...\n", o.model_dir, P, o.decode);
        double pre[N_MODES * 64], dec[N_MODES * 64];
        int n[N_MODES] = {0};
        int half = (o.reps + 1) / 2;
        time_model(&b, half, threads2, pre, dec, n);
        if (o.torch) torch1 = run_torch(&o, o.model_dir, 1);
        if (o.torch && cores() >= 2 && !torch1.why[0]) torch2 = run_torch(&o, o.model_dir, 2);
        if (cores() < 2) snprintf(torch2.why, sizeof torch2.why, "skipped: one core");
        time_model(&b, o.reps - half > 0 ? o.reps - half : 1, threads2, pre, dec, n);
        for (int mode = 0; mode < N_MODES; mode++)
            if (n[mode]) {
                mt.prefill_tps[mode] = median(pre + mode * 64, n[mode]);
                mt.decode_tps[mode] = median(dec + mode * 64, n[mode]);
            }
        printf("timing the default thread count (%d) against 1 thread, idle and busy ...\n",
               default_threads);
        if (default_threads < 2)
            snprintf(dt.why, sizeof dt.why, "skipped: the default is 1 thread here");
        else time_default_threads(&dt, &b, default_threads, o.reps, o.quick ? 0.02 : 0.05);
    } else if (o.torch) {
        snprintf(torch1.why, sizeof torch1.why, "%s", model_why);
        snprintf(torch2.why, sizeof torch2.why, "%s", model_why);
    }

    /* expert scaling: E = 8 vs 64, same top-k and expert size, decode time per token; the
     * big pair is past the L3 cache (the ratio), the demo-shaped one is not (informational) */
    SynthShape big = big_synth_shape(demo.num_experts_per_tok), small = demo_synth_shape(&demo);
    printf("\ntiming expert scaling: synthetic models, E = 8 and E = 64, interleaved ...\n");
    Scaling scale, scale_demo; /* a big token takes ms: a short prompt and 32 tokens will do */
    time_scaling(&scale, &big, o.prompt < 16 ? o.prompt : 16, o.decode < 32 ? o.decode : 32,
                 o.reps);
    time_scaling(&scale_demo, &small, o.prompt, o.decode, o.reps);

    /* the ratios */
    Ratio R[] = {
        {"gemm_vs_naive", ">= 20", "lesson 01 time / fast time, the model's prefill GEMMs, 1 thread", 0, ""},
        {"gemm_vs_openblas", ">= 0.9", "cblas_sgemm time / fast time, the model's prefill GEMMs, 1 thread", 0, ""},
        {"gemm_vs_openblas_2t", "", "the same, 2 threads each", 0, ""},
        {"gemv_vs_openblas", ">= 1.0", "cblas_sgemv time / fast time, the model's decode products, 1 thread", 0, ""},
        {"gemm_peak_fraction", ">= 0.6", "fast GFLOP/s, the model's prefill GEMMs / an FMA loop timed next to them", 0, ""},
        {"gemm_peak_fraction_square512", "", "the same on a 512 x 512 x 512 GEMM", 0, ""},
        {"prefill_vs_pytorch", ">= 1.5", "tokens/s, C (fast, 1 thread) / PyTorch (1 thread)", 0, ""},
        {"decode_vs_pytorch", ">= 10", "tokens/s, C (fast, 1 thread) / PyTorch with a KV cache (1 thread)", 0, ""},
        {"prefill_vs_pytorch_2t", "", "the same, 2 threads each", 0, ""},
        {"decode_vs_pytorch_2t", "", "the same, 2 threads each", 0, ""},
        {"threads_speedup", "", "prefill tokens/s, 2 threads / 1 thread (fast); about 1: the demo's loops are under the thresholds of lesson 09", 0, ""},
        {"expert_scaling", "<= 1.15", "decode s/token, E = 64 / E = 8 experts (top-k, sizes equal): "
         "hidden 256, experts 256x512 in 8 layers, 96 / 768 MiB, both past the L3 cache", 0, ""},
        {"expert_scaling_demo_shape", "", "the same in the demo's shape: the E = 8 model fits in "
         "the L3 cache, so this shows the cache, not the arithmetic", 0, ""},
        {"model_fast_vs_lesson01_prefill", "", "prefill tokens/s, lesson 09 / lesson 01 matmul, 1 thread", 0, ""},
        {"model_fast_vs_lesson01_decode", "", "decode tokens/s, lesson 09 / lesson 01 matmul, 1 thread", 0, ""},
        {"gemv_bf16_vs_f32_square4096", "", "fast time / fast_bf16 time, one token, 4096 x 4096: "
         "64 MiB of W in float32, 32 in bf16, both past the L3 cache (memory-bound)", 0, ""},
        {"gemv_bf16_vs_f32_model", "", "the same over the model's decode products (W in cache: "
         "little to gain)", 0, ""},
        {"default_vs_1t_prefill", ">= 1.0", "prefill tokens/s of the demo prompt (29 tokens), default "
         "thread count / 1 thread", 0, ""},
        {"default_vs_1t_decode", ">= 1.0", "decode tokens/s, default thread count / 1 thread", 0, ""},
        {"default_vs_1t_prefill_busy", ">= 1.0", "the same prefill, next to a spinning process", 0, ""},
        {"default_vs_1t_decode_busy", ">= 1.0", "the same decode, next to a spinning process", 0, ""},
    };
    enum { R_NAIVE, R_BLAS, R_BLAS2, R_GEMV, R_PEAK, R_PEAK512, R_PRE, R_DEC, R_PRE2, R_DEC2,
           R_THREADS, R_SCALE, R_SCALE_DEMO, R_MPRE, R_MDEC, R_BF16_BIG, R_BF16_MODEL, R_DT_PRE,
           R_DT_DEC, R_DT_PRE_BUSY, R_DT_DEC_BUSY, N_R };
    if (kernel_todo[K_FAST1])
        for (int i = 0; i < N_R; i++)
            if (i != R_SCALE && i != R_SCALE_DEMO)
                snprintf(R[i].why, sizeof R[i].why, "skipped: lesson 09 is not done (TODO in %s)",
                         todo_names);
#ifndef HAVE_OPENBLAS
    for (int i = R_BLAS; i <= R_GEMV; i++)
        snprintf(R[i].why, sizeof R[i].why, "skipped: built without OpenBLAS (apt-get install libopenblas-dev)");
#endif
    if (!threads2)
        for (int i = 0; i < N_R; i++)
            if (i == R_BLAS2 || i == R_THREADS || i == R_PRE2 || i == R_DEC2)
                snprintf(R[i].why, sizeof R[i].why, "skipped: %s",
#ifdef _OPENMP
                         "one core"
#else
                         "built without OpenMP"
#endif
                );
    ratio_set(&R[R_NAIVE], model_seconds(gemm, n_gemm, K_NAIVE), model_seconds(gemm, n_gemm, K_FAST1));
    ratio_set(&R[R_BLAS], model_seconds(gemm, n_gemm, K_BLAS1), model_seconds(gemm, n_gemm, K_FAST1));
    ratio_set(&R[R_BLAS2], model_seconds(gemm, n_gemm, K_BLAS2), model_seconds(gemm, n_gemm, K_FAST2));
    ratio_set(&R[R_GEMV], model_seconds(gemv, n_gemv, K_BLAS1), model_seconds(gemv, n_gemv, K_FAST1));
    /* the peak measured next to those shapes (the clock and the load drift during a run) */
    double near[16];
    int n_near = 0;
    for (int i = 0; i < n_gemm && n_near < 16; i++)
        if (gemm[i].is_model && gemm[i].peak > 0) near[n_near++] = gemm[i].peak;
    double model_peak = n_near ? median(near, n_near) : 0.0;
    double fs = model_seconds(gemm, n_gemm, K_FAST1);
    ratio_set(&R[R_PEAK], fs > 0 ? model_flops(gemm, n_gemm) / fs : 0, model_peak);
    if (o.quick) snprintf(R[R_PEAK512].why, sizeof R[R_PEAK512].why, "skipped: --quick");
    ratio_set(&R[R_PEAK512], gemm[6].s[K_FAST1] > 0 ? 2.0 * 512 * 512 * 512 / gemm[6].s[K_FAST1] : 0,
              gemm[6].peak);
    if (!have_model)
        for (int i = R_PRE; i < N_R; i++)
            if (i != R_SCALE && i != R_SCALE_DEMO && !R[i].why[0]) snprintf(R[i].why, sizeof R[i].why, "%s", model_why);
    if (torch1.why[0]) {
        snprintf(R[R_PRE].why, sizeof R[R_PRE].why, "%s", torch1.why);
        snprintf(R[R_DEC].why, sizeof R[R_DEC].why, "%s", torch1.why);
    }
    if (torch2.why[0] || torch1.why[0]) {
        snprintf(R[R_PRE2].why, sizeof R[R_PRE2].why, "%s", torch2.why[0] ? torch2.why : torch1.why);
        snprintf(R[R_DEC2].why, sizeof R[R_DEC2].why, "%s", torch2.why[0] ? torch2.why : torch1.why);
    }
    ratio_set(&R[R_PRE], mt.prefill_tps[M_FAST1], torch1.prefill_tps);
    ratio_set(&R[R_DEC], mt.decode_tps[M_FAST1], torch1.decode_tps);
    ratio_set(&R[R_PRE2], mt.prefill_tps[M_FAST2], torch2.prefill_tps);
    ratio_set(&R[R_DEC2], mt.decode_tps[M_FAST2], torch2.decode_tps);
    ratio_set(&R[R_THREADS], mt.prefill_tps[M_FAST2], mt.prefill_tps[M_FAST1]);
    snprintf(R[R_SCALE].why, sizeof R[R_SCALE].why, "%s", scale.why);
    snprintf(R[R_SCALE_DEMO].why, sizeof R[R_SCALE_DEMO].why, "%s", scale_demo.why);
    ratio_set(&R[R_SCALE], scale.ratio, 1.0); /* already a median of ratios */
    ratio_set(&R[R_SCALE_DEMO], scale_demo.ratio, 1.0);
    ratio_set(&R[R_MPRE], mt.prefill_tps[M_FAST1], mt.prefill_tps[M_NAIVE1]);
    ratio_set(&R[R_MDEC], mt.decode_tps[M_FAST1], mt.decode_tps[M_NAIVE1]);
    if (kernel_todo[K_BF16] && !R[R_BF16_BIG].why[0])
        for (int i = R_BF16_BIG; i <= R_BF16_MODEL; i++)
            snprintf(R[i].why, sizeof R[i].why, "skipped: fast_matmul_bf16 has a TODO");
    if (o.quick) snprintf(R[R_BF16_BIG].why, sizeof R[R_BF16_BIG].why, "skipped: --quick");
    ratio_set(&R[R_BF16_BIG], gemv[10].s[K_FAST1], gemv[10].s[K_BF16]);
    ratio_set(&R[R_BF16_MODEL], model_seconds(gemv, n_gemv, K_FAST1), model_seconds(gemv, n_gemv, K_BF16));
    for (int busy = 0; busy < 2; busy++) { /* the default thread count against 1 thread */
        Ratio *pre = &R[busy ? R_DT_PRE_BUSY : R_DT_PRE], *dec = &R[busy ? R_DT_DEC_BUSY : R_DT_DEC];
        if (dt.why[0] && !pre->why[0]) snprintf(pre->why, sizeof pre->why, "%s", dt.why);
        if (dt.why[0] && !dec->why[0]) snprintf(dec->why, sizeof dec->why, "%s", dt.why);
        ratio_set(pre, dt.prefill_tps[busy][TD_DEFAULT], dt.prefill_tps[busy][TD_ONE]);
        ratio_set(dec, dt.decode_tps[busy][TD_DEFAULT], dt.decode_tps[busy][TD_ONE]);
    }

    if (have_model) {
        printf("\nmodel %s, tokens/s (median of %d rounds)\n", o.model_dir, o.reps);
        printf("%-8s %12s %12s %12s %12s %12s %14s\n", "", "lesson01_1t", "fast_1t", "fast_2t",
               "pytorch_1t", "pytorch_2t", "pytorch_nocache");
        printf("%-8s %12.0f %12.0f %12.0f %12.0f %12.0f\n", "prefill", mt.prefill_tps[0],
               mt.prefill_tps[1], mt.prefill_tps[2], torch1.prefill_tps, torch2.prefill_tps);
        printf("%-8s %12.0f %12.0f %12.0f %12.0f %12.0f %14.0f\n", "decode", mt.decode_tps[0],
               mt.decode_tps[1], mt.decode_tps[2], torch1.decode_tps, torch2.decode_tps,
               torch1.nocache_tps);
    }
    print_default_threads(&dt, o.reps);
    print_scaling(&big, &scale, &small, &scale_demo, o.reps);
    printf("\n%-32s %9s %9s  %s\n", "ratio", "measured", "target", "what");
    for (int i = 0; i < N_R; i++) {
        if (R[i].why[0]) printf("%-32s %9s %9s  %s\n", R[i].name, "-", R[i].target, R[i].why);
        else printf("%-32s %9.2f %9s  %s\n", R[i].name, R[i].value, R[i].target, R[i].how);
    }

    /* build/bench.json */
    FILE *f = fopen(o.json_path, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s\n", o.json_path);
    } else {
        fprintf(f, "{\n  \"date\": ");
        json_put_string(f, date);
        fprintf(f, ",\n  \"cpu\": ");
        json_put_string(f, cpu);
        fprintf(f, ",\n  \"cores\": %d,\n  \"isa\": \"%s\",\n  \"lanes\": %d,\n", cores(),
                fast_matmul_isa(), fast_matmul_lanes());
        fprintf(f, "  \"model\": ");
        json_put_string(f, have_model ? o.model_dir : model_why);
        fprintf(f, ",\n  \"prompt_tokens\": %d,\n  \"decode_tokens\": %d,\n  \"reps\": %d,\n", P,
                o.decode, o.reps);
        fprintf(f, "  \"torch_version\": ");
        json_put_string(f, torch1.version);
        fprintf(f, ",\n  \"fma_peak_gflops\": %.3f,\n  \"ratios\": {\n", peak * 1e-9);
        for (int i = 0; i < N_R; i++) {
            fprintf(f, "    \"%s\": ", R[i].name);
            if (R[i].why[0]) json_put_string(f, R[i].why);
            else fprintf(f, "%.4f", R[i].value);
            fprintf(f, "%s\n", i + 1 < N_R ? "," : "");
        }
        fprintf(f, "  },\n  \"targets\": {\n");
        for (int i = 0, first = 1; i < N_R; i++)
            if (R[i].target[0]) {
                fprintf(f, "%s    \"%s\": \"%s\"", first ? "" : ",\n", R[i].name, R[i].target);
                first = 0;
            }
        fprintf(f, "\n  },\n  \"model_tokens_per_s\": {\n");
        for (int mode = 0; mode < N_MODES; mode++)
            fprintf(f, "    \"%s\": {\"prefill\": %.1f, \"decode\": %.1f},\n", MODE_NAME[mode],
                    mt.prefill_tps[mode], mt.decode_tps[mode]);
        fprintf(f, "    \"pytorch_1t\": {\"prefill\": %.1f, \"decode\": %.1f, \"decode_nocache\": %.1f},\n",
                torch1.prefill_tps, torch1.decode_tps, torch1.nocache_tps);
        fprintf(f, "    \"pytorch_2t\": {\"prefill\": %.1f, \"decode\": %.1f}\n  },\n",
                torch2.prefill_tps, torch2.decode_tps);
        put_scaling_json(f, &big, &scale, &small, &scale_demo);
        put_default_threads_json(f, &dt);
        fprintf(f, "  \"kernels_gflops\": [\n");
        for (int tb = 0, first = 1; tb < 2; tb++)
            for (int i = 0; i < counts[tb]; i++) {
                Shape *s = &tables[tb][i];
                fprintf(f, "%s    {\"shape\": \"%s\", \"T\": %d, \"in\": %d, \"out\": %d, "
                           "\"per_model_call\": %d",
                        first ? "" : ",\n", s->name, s->T, s->in, s->out, s->count);
                for (int kk = 0; kk < N_KERNELS; kk++)
                    if (s->s[kk] > 0.0)
                        fprintf(f, ", \"%s\": %.3f", KERNEL_NAME[kk],
                                2.0 * s->T * s->in * s->out / s->s[kk] * 1e-9);
                fprintf(f, "}");
                first = 0;
            }
        fprintf(f, "\n  ]\n}\n");
        fclose(f);
        printf("\nwrote %s\n", o.json_path);
    }
    if (have_model) bench_close(&b);
    return 0;
}
