/*
 * moekit_mpi.c: build/moekit-mpi, the CLI with the experts spread over MPI ranks.
 *
 *   mpirun -np P build/moekit-mpi generate|logits|perplexity ARGS   (ARGS as build/moekit)
 *
 * The CLI itself (harness/cli/moekit.c, compiled with main renamed moekit_main) runs on
 * every rank with the same arguments; only rank 0 prints. The link wraps two of its calls
 * (-Wl,--wrap):
 *   model_load_dir  each rank loads the attention, dense and router weights and only its
 *                   own routed experts (ModelOptions.ep_rank, ep_size: r*E/P .. (r+1)*E/P-1);
 *                   a rank that fails, P > E, or ranks with different configs: one line
 *                   from rank 0, then MPI_Abort;
 *   moe_forward     lesson 08's forward pass runs as it is (attention replicated on every
 *                   rank), and each sparse layer's MoE is computed by ep_moe_forward (lesson
 *                   12): each rank routes a slice of the tokens, the rows go to the experts'
 *                   ranks and back, and MPI_Allgatherv gives every rank the whole layer
 *                   output; with --dump-routing the routing is gathered too, so the dump is
 *                   build/moekit's;
 *   model_forward   only timed.
 * Time in MPI calls is measured through MPI's profiling interface (PMPI_*). At the end
 * rank 0 prints, per rank, resident memory, bytes sent and received per sparse layer, and
 * compute vs communication time, to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "model_load.h"
#include "moekit_mpi.h"

int moekit_main(int argc, char **argv);

/* Under SANITIZE=1, no leak report at exit: Open MPI's own start-up allocations would be
 * reported (the single-process CLI is where the kit checks for leaks). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }
int __real_model_load_dir(Model *m, const char *dir, const ModelOptions *o, char *err,
                          size_t errlen);
int __wrap_model_load_dir(Model *m, const char *dir, const ModelOptions *o, char *err,
                          size_t errlen);
void __real_model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits);
void __wrap_model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits);
void __wrap_moe_forward(float *out, const float *h, int T, const MoeConfig *c,
                        const MoeWeights *w, MoeScratch *s);

#define MAX_LAYERS 256

static struct {
    int rank, P;
    EpScratch *ep;            /* (L) per sparse layer, NULL for dense ones' */
    int n_layers;
    long sent[MAX_LAYERS], received[MAX_LAYERS]; /* payload bytes, summed over calls */
    long rows_in[MAX_LAYERS]; /* rows this rank's experts received */
    int dropped;
    long tokens;              /* tokens through model_forward */
    double comm_s, total_s;   /* in MPI calls; in model_forward */
    int experts_held;
    int dump;                 /* --dump-routing: gather the routing into the stats */
    Model *model;             /* the one model_load_dir loaded */
} G;

/* ------------------------------------------------------------------------------------
 * communication time, through the profiling interface
 * ---------------------------------------------------------------------------------- */

#define TIMED(call)                                 \
    do {                                            \
        double t0_ = now_seconds();                 \
        int rc_ = (call);                           \
        G.comm_s += now_seconds() - t0_;            \
        return rc_;                                 \
    } while (0)

int MPI_Alltoall(const void *sb, int sc, MPI_Datatype st, void *rb, int rc, MPI_Datatype rt,
                 MPI_Comm comm) {
    TIMED(PMPI_Alltoall(sb, sc, st, rb, rc, rt, comm));
}
int MPI_Alltoallv(const void *sb, const int sc[], const int sd[], MPI_Datatype st, void *rb,
                  const int rc[], const int rd[], MPI_Datatype rt, MPI_Comm comm) {
    TIMED(PMPI_Alltoallv(sb, sc, sd, st, rb, rc, rd, rt, comm));
}
int MPI_Allreduce(const void *sb, void *rb, int n, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    TIMED(PMPI_Allreduce(sb, rb, n, t, op, comm));
}
int MPI_Allgatherv(const void *sb, int sc, MPI_Datatype st, void *rb, const int rc[],
                   const int rd[], MPI_Datatype rt, MPI_Comm comm) {
    TIMED(PMPI_Allgatherv(sb, sc, st, rb, rc, rd, rt, comm));
}

/* ------------------------------------------------------------------------------------
 * errors: one line from rank 0, then the whole job ends
 * ---------------------------------------------------------------------------------- */

/* Collective: when any rank has a message (msg non-empty), rank 0 prints the first
 * rank's (naming the rank when per_rank) and aborts the job; the others wait for it. */
static void fail_if_any(const char *msg, int per_rank) {
    char line[512] = "";
    snprintf(line, sizeof line, "%s", msg);
    char *all = G.rank == 0 ? calloc((size_t)G.P, sizeof line) : NULL;
    PMPI_Gather(line, sizeof line, MPI_CHAR, all, sizeof line, MPI_CHAR, 0, MPI_COMM_WORLD);
    int bad = line[0] != '\0', any = 0;
    PMPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) return free(all);
    for (int r = 0; G.rank == 0 && r < G.P; r++)
        if (all[(size_t)r * sizeof line]) {
            if (per_rank) fprintf(stderr, "moekit-mpi: rank %d of %d: %s\n", r, G.P, all + (size_t)r * sizeof line);
            else fprintf(stderr, "moekit-mpi: %s\n", all + (size_t)r * sizeof line);
            break;
        }
    free(all);
    fflush(stderr);
    if (G.rank == 0) MPI_Abort(MPI_COMM_WORLD, 1);
    PMPI_Barrier(MPI_COMM_WORLD); /* never completes: MPI_Abort ends this rank */
    exit(1);
}

/* The config values every rank must agree on, compared as min == max. */
static void same_config(const ModelConfig *c) {
    int v[8] = {c->vocab_size, c->hidden_size, c->num_hidden_layers, c->num_experts,
                c->num_experts_per_tok, c->moe_intermediate_size, c->num_attention_heads,
                c->head_dim};
    int lo[8], hi[8];
    PMPI_Allreduce(v, lo, 8, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    PMPI_Allreduce(v, hi, 8, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    static const char *names[8] = {"vocab_size", "hidden_size", "num_hidden_layers",
                                   "num_experts", "num_experts_per_tok",
                                   "moe_intermediate_size", "num_attention_heads", "head_dim"};
    char msg[512] = "";
    for (int i = 0; i < 8 && !msg[0]; i++)
        if (lo[i] != hi[i])
            snprintf(msg, sizeof msg, "the ranks loaded different configs: %s is %d here, "
                     "between %d and %d over the ranks (the same --model on every machine?)",
                     names[i], v[i], lo[i], hi[i]);
    fail_if_any(msg, 1);
}

/* ------------------------------------------------------------------------------------
 * loading: own experts only
 * ---------------------------------------------------------------------------------- */

static int init_layers(Model *m, char *msg, size_t len) {
    const ModelConfig *c = &m->config;
    G.n_layers = c->num_hidden_layers;
    G.ep = calloc((size_t)G.n_layers, sizeof *G.ep);
    if (!G.ep || G.n_layers > MAX_LAYERS) return snprintf(msg, len, "out of memory"), -1;
    for (int l = 0; l < G.n_layers; l++)
        if (m->weights.layers[l].is_sparse &&
            ep_scratch_init(&G.ep[l], &m->moe_config[l], m->state.max_tokens, MPI_COMM_WORLD) != 0)
            return snprintf(msg, len, "out of memory for layer %d's exchange buffers", l), -1;
    G.experts_held = ep_first_expert(G.rank + 1, G.P, c->num_experts) -
                     ep_first_expert(G.rank, G.P, c->num_experts);
    return 0;
}

int __wrap_model_load_dir(Model *m, const char *dir, const ModelOptions *o, char *err,
                          size_t errlen) {
    ModelOptions mine = *o;
    mine.ep_rank = G.rank, mine.ep_size = G.P;
    char msg[512] = "";
    if (__real_model_load_dir(m, dir, &mine, err, errlen) != 0) snprintf(msg, sizeof msg, "%s", err);
    fail_if_any(msg, 1);
    same_config(&m->config);
    const ModelConfig *c = &m->config;
    if (G.P > 1024)
        snprintf(msg, sizeof msg, "%d ranks: moekit-mpi runs up to 1024", G.P);
    else if (G.P > c->num_experts)
        snprintf(msg, sizeof msg, "%d ranks for %d experts: every rank needs one (mpirun -np %d "
                 "or fewer)", G.P, c->num_experts, c->num_experts);
    else if (c->shared_expert_intermediate_size > 0)
        snprintf(msg, sizeof msg, "%s: a shared expert (Qwen2-MoE) is not supported across ranks", dir);
    fail_if_any(msg, 0);
    init_layers(m, msg, sizeof msg);
    fail_if_any(msg, 1);
    G.model = m;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * the forward pass, MoE layers across ranks
 * ---------------------------------------------------------------------------------- */

/* The routing of all T tokens, (T, k) experts and weights, gathered from the ranks into
 * the layer's MoeStats, where --dump-routing reads it. */
static void gather_routing(Model *m, int l, int T) {
    MoeStats *st = &m->state.moe_scratch[l].stats;
    const EpScratch *s = &G.ep[l];
    int k = m->moe_config[l].router.num_experts_per_tok, counts[1024], displs[1024];
    for (int r = 0; r < G.P; r++)
        displs[r] = r * T / G.P * k, counts[r] = (r + 1) * T / G.P * k - displs[r];
    int mine = counts[G.rank];
    MPI_Allgatherv(s->experts, mine, MPI_INT, st->experts, counts, displs, MPI_INT, MPI_COMM_WORLD);
    MPI_Allgatherv(s->weights, mine, MPI_FLOAT, st->weights, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    st->T = T;
}

/* Lesson 07's moe_forward, as lesson 08's mlp_block calls it for layer l (the layer is
 * where s sits in m->state.moe_scratch): rank r computes tokens r*T/P .. (r+1)*T/P - 1 of h
 * through ep_moe_forward, then every rank gathers all T rows of out. */
void __wrap_moe_forward(float *out, const float *h, int T, const MoeConfig *c,
                        const MoeWeights *w, MoeScratch *ms) {
    int l = (int)(ms - G.model->state.moe_scratch);
    int C = c->hidden_size, t0 = G.rank * T / G.P, t1 = (G.rank + 1) * T / G.P;
    EpScratch *s = &G.ep[l];
    ep_moe_forward(out + (long)t0 * C, h + (long)t0 * C, t1 - t0, c, w, s);
    int counts[1024], displs[1024];
    for (int r = 0; r < G.P; r++)
        displs[r] = r * T / G.P * C, counts[r] = (r + 1) * T / G.P * C - displs[r];
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, out, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    if (G.dump) gather_routing(G.model, l, T);
    G.sent[l] += s->bytes_sent, G.received[l] += s->bytes_received, G.dropped += s->dropped;
    for (int r = 0; r < G.P; r++) G.rows_in[l] += s->recv_counts[r];
}

/* Lesson 08's forward pass as it is, timed. */
void __wrap_model_forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits) {
    double t0 = now_seconds();
    __real_model_forward(m, ids, T, pos0, x, logits);
    G.tokens += T;
    G.total_s += now_seconds() - t0;
}

/* ------------------------------------------------------------------------------------
 * the report, and main
 * ---------------------------------------------------------------------------------- */

static long rss_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) kib = atol(line + strlen(field));
    if (f) fclose(f);
    return kib;
}

/* One line per rank: what it held, its memory, its traffic per sparse layer and token. */
static void report(void) {
    double mine[6] = {(double)rss_kib("VmHWM:") / 1024.0, G.total_s - G.comm_s, G.comm_s,
                      (double)G.experts_held, (double)G.dropped, (double)G.tokens};
    double *all = calloc((size_t)G.P * (6 + 3 * MAX_LAYERS), sizeof(double));
    double per_layer[3 * MAX_LAYERS];
    for (int l = 0; l < MAX_LAYERS; l++)
        per_layer[3 * l] = (double)G.sent[l], per_layer[3 * l + 1] = (double)G.received[l],
        per_layer[3 * l + 2] = (double)G.rows_in[l];
    PMPI_Gather(mine, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    PMPI_Gather(per_layer, 3 * MAX_LAYERS, MPI_DOUBLE, all + (size_t)G.P * 6, 3 * MAX_LAYERS,
                MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (G.rank == 0 && all && G.ep && all[5] > 0) {
        fprintf(stderr, "moekit-mpi: %d ranks, %.0f tokens through the model\n", G.P, all[5]);
        fprintf(stderr, "rank experts  peak_rss_MiB  compute_s  comm_s  dropped  layer:"
                        "sent_B/recv_B/rows_in (bytes per token: sent/recv)\n");
        for (int r = 0; r < G.P; r++) {
            const double *v = all + (size_t)r * 6, *pl = all + (size_t)G.P * 6 + (size_t)r * 3 * MAX_LAYERS;
            fprintf(stderr, "%4d %7.0f %13.1f %10.3f %7.3f %8.0f ", r, v[3], v[0], v[1], v[2], v[4]);
            for (int l = 0; l < G.n_layers; l++)
                if (G.ep[l].P) fprintf(stderr, " %d:%.0f/%.0f/%.0f (%.0f/%.0f)", l, pl[3 * l],
                                       pl[3 * l + 1], pl[3 * l + 2], pl[3 * l] / all[5],
                                       pl[3 * l + 1] / all[5]);
            fputc('\n', stderr);
        }
    }
    free(all);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &G.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &G.P);
    /* every rank runs the same CLI; only rank 0 speaks (errors come through fail_if_any) */
    if (G.rank != 0 && (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)))
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 1; i + 1 < argc; i++) {
        G.dump |= !strcmp(argv[i], "--dump-routing");
        if (G.rank != 0 && (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--dump-routing")))
            argv[i + 1] = "/dev/null"; /* one writer per output file */
    }
    int rc = moekit_main(argc, argv);
    int worst = 0;
    PMPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst == 0) report();
    for (int l = 0; G.ep && l < G.n_layers; l++)
        if (G.ep[l].P) ep_scratch_free(&G.ep[l]);
    free(G.ep);
    MPI_Finalize();
    return worst;
}
