/*
 * ep_worker.c: the MPI half of lesson 12's tests (the check-mpi program). The check
 * runner starts it once for every case of the fixture (harness/test/lesson12_expert_parallel.c):
 *
 *   mpirun -np 4 check-mpi FIXTURE DIR   every case, each into DIR/CASE.bin
 *   check-mpi --probe OUT                (no MPI: has the lesson been started? see probe())
 *
 * One job for all cases: starting mpirun costs far more than the cases themselves. A case
 * for P ranks runs on the first P ranks of the job, a communicator of their own
 * (MPI_Comm_split), while the others wait for the next case. Each of its ranks reads the
 * case, takes its share of the tokens (rank r: rows r*T/P .. (r+1)*T/P - 1 of h),
 * exchanges the counts of its rows, then runs the student's ep_moe_forward on that
 * communicator. Its rank 0 gathers what the ranks produced and writes it to DIR/CASE.bin
 * (ep_record.h), the counts first; it judges nothing: the runner compares the file with
 * the expected values (check.h, "run first, judge after"). A fixture problem: one line
 * from the rank that met it, and MPI_Abort.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "ep_record.h"
#include "moekit_mpi.h"
#include "routing_check.h"
#include "todo.h"

/* The ranks run with leak detection off: Open MPI's own start-up allocations would be
 * reported as leaks of the student's code. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0:exitcode=66"; }

static int rank_of_world(void) {
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

/* fixture_error lands here (check.c jumps to ctx->bail): one line, then the job ends. */
static void fail_job(const char *what) {
    fprintf(stderr, "check-mpi (rank %d): %s\n", rank_of_world(), what);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

typedef struct {
    int T, P;
    MoeConfig c;
    MoeWeights w;
    const float *h;
    MPI_Comm comm; /* the case's P ranks */
} EpCase;

static EpCase read_case(TestCtx *ctx) {
    EpCase m;
    m.P = fx_int(ctx, "ranks");
    m.T = fx_int(ctx, "T");
    m.c.hidden_size = fx_int(ctx, "hidden_size");
    m.c.moe_intermediate_size = fx_int(ctx, "moe_intermediate_size");
    m.c.shared_expert_intermediate_size = 0;
    m.c.router = (RouterConfig){fx_int(ctx, "num_experts"), fx_int(ctx, "num_experts_per_tok"),
                                fx_int(ctx, "norm_topk_prob"), NULL};
    m.c.capacity_factor = fx_float(ctx, "capacity_factor");
    m.w = fx_moe_weights(ctx, m.c.router.num_experts, m.c.hidden_size,
                         m.c.moe_intermediate_size, 0);
    m.h = fx_tensor(ctx, "h", (long)m.T * m.c.hidden_size, NULL);
    return m;
}

/* Rank 0 of comm gets each rank's n ints of v, rank after rank, into all (P * n). */
static void gather_ints(int *all, const int *v, int n, MPI_Comm comm) {
    MPI_Gather(v, n, MPI_INT, all, n, MPI_INT, 0, comm);
}

/* Rank 0 appends n values of size bytes to the file ("wb" for the first part). */
static void append(const char *path, const char *mode, const void *v, size_t size, long n) {
    FILE *f = fopen(path, mode);
    int ok = f && fwrite(v, size, (size_t)n, f) == (size_t)n;
    if (!f || fclose(f) != 0 || !ok) fail_job("cannot write the output file");
}

/* The routing of this rank's T tokens into s->experts, as ep_moe_forward does it. */
static void route_own(EpScratch *s, const float *h, int T, const MoeConfig *c, const MoeWeights *w) {
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    matmul_tokens(s->logits, h, w->gate, T, c->hidden_size, E);
    for (int t = 0; t < T; t++)
        route(s->experts + (long)t * k, s->weights + (long)t * k, s->probs + (long)t * E,
              s->logits + (long)t * E, &c->router);
}

/* The TODO() hit first on rank 0, or a note that another rank hit one. */
static EpRecord todo_record(int rank, MPI_Comm comm) {
    EpRecord rec = {EP_RECORD_MAGIC, 0, ""};
    const TodoHit *hit = todo_first();
    if (hit) rec.todo = 1, snprintf(rec.todo_text, sizeof rec.todo_text, "%s() is not written "
                                    "yet: TODO at %s:%d\n  %s", hit->func, hit->file, hit->line,
                                    hit->what);
    int any = 0;
    MPI_Reduce(&rec.todo, &any, 1, MPI_INT, MPI_MAX, 0, comm);
    if (rank == 0 && any && !rec.todo)
        rec.todo = 1, snprintf(rec.todo_text, sizeof rec.todo_text, "a TODO() is still there");
    return rec;
}

/* Part 1, the counts alone (so that they are there even when the layer then crashes):
 * route, ep_count_rows, ep_exchange_counts; rank 0 writes the record and the four (P, P)
 * tables. */
static void run_counts(EpCase *m, int rank, int t0, int t1, EpScratch *s, const char *path) {
    int P = m->P;
    int *ints = calloc((size_t)4 * P * P, sizeof(int));
    if (!ints) fail_job("out of memory");
    todo_reset();
    route_own(s, m->h + (long)t0 * m->c.hidden_size, t1 - t0, &m->c, &m->w);
    ep_count_rows(s->send_counts, s->experts, (t1 - t0) * m->c.router.num_experts_per_tok, P,
                  m->c.router.num_experts);
    ep_exchange_counts(s);
    EpRecord rec = todo_record(rank, m->comm);
    int *arrays[4] = {s->send_counts, s->send_displs, s->recv_counts, s->recv_displs};
    for (int a = 0; a < 4; a++) gather_ints(ints + (long)a * P * P, arrays[a], P, m->comm);
    if (rank == 0) append(path, "wb", &rec, sizeof rec, 1), append(path, "ab", ints, sizeof(int), 4L * P * P);
    free(ints);
}

/* Part 2, the layer: rank 0 appends out (T, C) and dropped (P). */
static void run_layer(EpCase *m, int rank, int t0, int t1, EpScratch *s, const char *path) {
    int P = m->P, C = m->c.hidden_size;
    float *out = calloc((size_t)m->T * C + 1, sizeof(float));
    float *mine = calloc((size_t)(t1 - t0) * C + 1, sizeof(float));
    int *counts = calloc((size_t)P, sizeof(int)), *displs = calloc((size_t)P, sizeof(int));
    int *dropped = calloc((size_t)P, sizeof(int));
    if (!out || !mine || !counts || !displs || !dropped) fail_job("out of memory");
    ep_moe_forward(mine, m->h + (long)t0 * C, t1 - t0, &m->c, &m->w, s);
    for (int r = 0; r < P; r++) /* rank r's rows of out */
        counts[r] = ((r + 1) * m->T / P - r * m->T / P) * C, displs[r] = r * m->T / P * C;
    MPI_Gatherv(mine, (t1 - t0) * C, MPI_FLOAT, out, counts, displs, MPI_FLOAT, 0, m->comm);
    gather_ints(dropped, &s->dropped, 1, m->comm);
    if (rank == 0)
        append(path, "ab", out, sizeof(float), (long)m->T * C), append(path, "ab", dropped, sizeof(int), P);
    free(out), free(mine), free(counts), free(displs), free(dropped);
}

/* The case on m->comm (its P ranks): rank is this rank's there. */
static void run_case(EpCase *m, int rank, const char *path) {
    int t0 = rank * m->T / m->P, t1 = (rank + 1) * m->T / m->P;
    EpScratch s;
    if (ep_scratch_init(&s, &m->c, t1 - t0 > 0 ? t1 - t0 : 1, m->comm) != 0)
        fail_job("out of memory in ep_scratch_init");
    run_counts(m, rank, t0, t1, &s, path);
    run_layer(m, rank, t0, t1, &s, path);
    ep_scratch_free(&s);
}

/* Case id of the fixture, on the job's first P ranks (P: the case's "ranks"), into
 * dir/ID.bin. Every rank of the job takes part in the split. */
static void run_one(TestCtx *ctx, const char *id, const char *dir) {
    ctx->case_id = ctx->title = id;
    if (setjmp(ctx->bail)) fail_job("the fixture case is unreadable (see above)");
    EpCase m = read_case(ctx);
    int world, rank = rank_of_world();
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.bin", dir, id);
    if (m.P < 1 || m.P > world) {
        snprintf(path, sizeof path, "case %.100s is for %d ranks, the job has %d", id, m.P, world);
        fail_job(path);
    }
    MPI_Comm_split(MPI_COMM_WORLD, rank < m.P ? 0 : MPI_UNDEFINED, rank, &m.comm);
    if (m.comm != MPI_COMM_NULL) run_case(&m, rank, path), MPI_Comm_free(&m.comm);
    ctx_free_all(ctx);
}

/* check-mpi --probe OUT, without MPI: only the record, whose todo says whether the
 * functions that need no MPI (ep_owner, ep_count_rows, ep_displacements) still have a
 * TODO(). A lesson not started is then reported in milliseconds, not one mpirun per test. */
static int probe(const char *path) {
    int experts[4] = {0, 1, 2, 3}, counts[2], displs[2];
    todo_reset();
    (void)ep_owner(3, 2, 4);
    ep_count_rows(counts, experts, 4, 2, 4);
    ep_displacements(displs, counts, 2);
    EpRecord rec = {EP_RECORD_MAGIC, 0, ""};
    const TodoHit *hit = todo_first();
    if (hit) rec.todo = 1, snprintf(rec.todo_text, sizeof rec.todo_text, "%s() is not written "
                                    "yet: TODO at %s:%d\n  %s", hit->func, hit->file, hit->line,
                                    hit->what);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(&rec, sizeof rec, 1, f) == 1;
    return f && fclose(f) == 0 && ok ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--probe")) return probe(argv[2]);
    MPI_Init(&argc, &argv);
    if (argc != 3) fail_job("usage: mpirun -np 4 check-mpi FIXTURE DIR");
    static TestCtx ctx; /* static: it holds a large buffer table */
    SafeTensors fx;
    char err[600];
    if (st_open(&fx, argv[1], err, sizeof err) != 0) fail_job(err);
    ctx.fx = &fx, ctx.fixture_path = argv[1];
    ctx.role = ROLE_CHECK;
    const char *list = st_meta(&fx, "cases");
    char *ids = strdup(list ? list : "");
    if (!ids) fail_job("out of memory");
    for (char *id = strtok(ids, " "); id; id = strtok(NULL, " ")) run_one(&ctx, id, argv[2]);
    free(ids);
    st_close(&fx);
    MPI_Finalize();
    return 0;
}
