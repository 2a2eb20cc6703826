/*
 * Lesson 12: expert parallelism. The MoE layer of lesson 07, with the experts spread over
 * P processes (MPI ranks): rank r holds experts r*E/P .. (r+1)*E/P - 1 and its own tokens.
 *
 *   ep_moe_forward   this rank's h (T, C) -> out (T, C), equal to moe_forward over the
 *                    tokens of all ranks, whatever P is
 *
 *   route own tokens -> count rows per destination -> MPI_Alltoall (counts)
 *   -> pack rows by destination -> MPI_Alltoallv (dispatch) -> run own experts
 *   -> MPI_Alltoallv (return) -> add each returned row into its token
 *
 * PyTorch (torch.distributed, as DeepSpeed-MoE and Megatron-LM do it):
 *   dist.all_to_all_single(out_splits, in_splits)                      # the counts
 *   dist.all_to_all_single(recv, send, out_splits, in_splits)          # dispatch
 *   dist.all_to_all_single(back, y, in_splits, out_splits)             # return
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moekit_mpi.h"

/* ------------------------------------------------------------------------------------
 * scratch (ready-made)
 * ---------------------------------------------------------------------------------- */

static void *alloc(size_t n, size_t size) { return calloc(n ? n : 1, size); }

int ep_first_expert(int rank, int P, int E) { return (int)((long)rank * E / P); }

static int ep_alloc(EpScratch *s, const MoeConfig *c) {
    size_t T = (size_t)s->max_tokens, R = (size_t)s->max_rows, P = (size_t)s->P;
    size_t k = (size_t)c->router.num_experts_per_tok, E = (size_t)c->router.num_experts;
    size_t C = (size_t)c->hidden_size, I = (size_t)c->moe_intermediate_size;
    void **all[] = {(void **)&s->send_counts, (void **)&s->send_displs, (void **)&s->recv_counts,
                    (void **)&s->recv_displs};
    for (int i = 0; i < 4; i++) *all[i] = alloc(P, sizeof(int));
    s->experts = alloc(T * k, sizeof(int)), s->weights = alloc(T * k, sizeof(float));
    s->logits = alloc(T * E, sizeof(float)), s->probs = alloc(T * E, sizeof(float));
    s->send_slot = alloc(T * k, sizeof(int)), s->send_expert = alloc(T * k, sizeof(int));
    s->send_x = alloc(T * k * C, sizeof(float)), s->send_weight = alloc(T * k, sizeof(float));
    s->recv_x = alloc(R * C, sizeof(float)), s->recv_expert = alloc(R, sizeof(int));
    s->recv_weight = alloc(R, sizeof(float)), s->recv_y = alloc(R * C, sizeof(float));
    s->back_y = alloc(T * k * C, sizeof(float)), s->rows = alloc(R, sizeof(int));
    s->x_in = alloc(R * C, sizeof(float)), s->y_out = alloc(R * C, sizeof(float));
    s->hidden = alloc(2 * R * I, sizeof(float));
    return s->send_counts && s->send_displs && s->recv_counts && s->recv_displs && s->experts &&
                   s->weights && s->logits && s->probs && s->send_slot && s->send_expert &&
                   s->send_x && s->send_weight && s->recv_x && s->recv_expert && s->recv_weight &&
                   s->recv_y && s->back_y && s->rows && s->x_in && s->y_out && s->hidden
               ? 0 : -1;
}

int ep_scratch_init(EpScratch *s, const MoeConfig *c, int max_tokens, MPI_Comm comm) {
    memset(s, 0, sizeof *s);
    s->comm = comm;
    MPI_Comm_rank(comm, &s->rank);
    MPI_Comm_size(comm, &s->P);
    int E = c->router.num_experts;
    s->first_expert = ep_first_expert(s->rank, s->P, E);
    s->end_expert = ep_first_expert(s->rank + 1, s->P, E);
    s->max_tokens = max_tokens;
    s->max_rows = s->P * max_tokens * c->router.num_experts_per_tok;
    MPI_Type_contiguous(c->hidden_size, MPI_FLOAT, &s->row_type);
    MPI_Type_commit(&s->row_type);
    if (ep_alloc(s, c) == 0) return 0;
    ep_scratch_free(s);
    return -1;
}

void ep_scratch_free(EpScratch *s) {
    void *all[] = {s->send_counts, s->send_displs, s->recv_counts, s->recv_displs, s->experts,
                   s->weights, s->logits, s->probs, s->send_slot, s->send_expert, s->send_x,
                   s->send_weight, s->recv_x, s->recv_expert, s->recv_weight, s->recv_y,
                   s->back_y, s->rows, s->x_in, s->y_out, s->hidden};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    if (s->row_type != MPI_DATATYPE_NULL && s->row_type != 0) MPI_Type_free(&s->row_type);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------------------
 * who holds what, and the counts
 * ---------------------------------------------------------------------------------- */

/* The r with r*E/P <= e < (r+1)*E/P: r*E/P <= e holds while r < (e+1)*P/E, so r is the
 * largest integer below (e+1)*P/E. */
int ep_owner(int e, int P, int E) { return (int)(((long)(e + 1) * P - 1) / E); }

void ep_count_rows(int *send_counts, const int *experts, int n_slots, int P, int E) {
    for (int r = 0; r < P; r++) send_counts[r] = 0;
    for (int i = 0; i < n_slots; i++) send_counts[ep_owner(experts[i], P, E)]++;
}

/* An exclusive prefix sum: rank r's rows start after those of ranks 0 .. r-1. */
void ep_displacements(int *displs, const int *counts, int P) {
    int at = 0;
    for (int r = 0; r < P; r++) {
        displs[r] = at;
        at += counts[r];
    }
}

/* Rank r's send_counts[q] arrives as rank q's recv_counts[r]. */
void ep_exchange_counts(EpScratch *s) {
    MPI_Alltoall(s->send_counts, 1, MPI_INT, s->recv_counts, 1, MPI_INT, s->comm);
    ep_displacements(s->send_displs, s->send_counts, s->P);
    ep_displacements(s->recv_displs, s->recv_counts, s->P);
}

/* ------------------------------------------------------------------------------------
 * dispatch, local experts, return
 * ---------------------------------------------------------------------------------- */

/* Rows grouped by destination, token order within one: a cursor per destination, which
 * starts at its displacement. */
static void pack_rows(EpScratch *s, const float *h, int T, const MoeConfig *c) {
    int k = c->router.num_experts_per_tok, E = c->router.num_experts, C = c->hidden_size;
    int *next = s->rows; /* (P) cursors; rows is free until the experts run */
    for (int r = 0; r < s->P; r++) next[r] = s->send_displs[r];
    for (int slot = 0; slot < T * k; slot++) {
        int e = s->experts[slot], i = next[ep_owner(e, s->P, E)]++;
        s->send_slot[i] = slot;
        s->send_expert[i] = e;
        s->send_weight[i] = s->weights[slot];
        memcpy(s->send_x + (long)i * C, h + (long)(slot / k) * C, sizeof(float) * C);
    }
}

void ep_dispatch(EpScratch *s, const float *h, int T, const MoeConfig *c) {
    pack_rows(s, h, T, c);
    MPI_Alltoallv(s->send_x, s->send_counts, s->send_displs, s->row_type, s->recv_x,
                  s->recv_counts, s->recv_displs, s->row_type, s->comm);
    MPI_Alltoallv(s->send_expert, s->send_counts, s->send_displs, MPI_INT, s->recv_expert,
                  s->recv_counts, s->recv_displs, MPI_INT, s->comm);
    MPI_Alltoallv(s->send_weight, s->send_counts, s->send_displs, MPI_FLOAT, s->recv_weight,
                  s->recv_counts, s->recv_displs, MPI_FLOAT, s->comm);
}

/* Rows one expert may take: lesson 07's ceil(capacity_factor * T * k / E), with T the
 * tokens of all ranks (each owner sees only a part of them). */
static int ep_capacity(const EpScratch *s, const MoeConfig *c) {
    if (c->capacity_factor <= 0.0f) return s->T_total;
    return (int)ceil((double)c->capacity_factor * s->T_total * c->router.num_experts_per_tok /
                     c->router.num_experts);
}

/* Expert e's rows among the n received, in arrival order, up to its capacity: into
 * s->rows; the rest are dropped (their recv_y stays 0). Returns how many it takes. */
static int take_rows(EpScratch *s, int e, int n, int capacity) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (s->recv_expert[i] != e) continue;
        if (m == capacity) s->dropped++;
        else s->rows[m++] = i;
    }
    return m;
}

void ep_run_local_experts(EpScratch *s, const MoeConfig *c, const MoeWeights *w) {
    int C = c->hidden_size, n = 0, capacity = ep_capacity(s, c);
    for (int r = 0; r < s->P; r++) n += s->recv_counts[r];
    memset(s->recv_y, 0, sizeof(float) * (size_t)n * C);
    s->dropped = 0;
    for (int e = s->first_expert; e < s->end_expert; e++) {
        int m = take_rows(s, e, n, capacity);
        if (m == 0) continue;
        for (int i = 0; i < m; i++) /* gather */
            memcpy(s->x_in + (long)i * C, s->recv_x + (long)s->rows[i] * C, sizeof(float) * C);
        expert_forward_tokens(s->y_out, s->x_in, &w->experts[e], m, C, c->moe_intermediate_size,
                              s->hidden);
        for (int i = 0; i < m; i++) { /* weighted, back at the row's arrival position */
            float *y = s->recv_y + (long)s->rows[i] * C, g = s->recv_weight[s->rows[i]];
            for (int d = 0; d < C; d++) y[d] = g * s->y_out[(long)i * C + d];
        }
    }
}

/* The dispatch reversed: what came from rank r goes back to rank r, where it lands
 * exactly where that rank packed it. Then each packed row i adds into its own token
 * send_slot[i] / k, not into row i's position. */
void ep_combine(float *out, EpScratch *s, int T, const MoeConfig *c) {
    int C = c->hidden_size, k = c->router.num_experts_per_tok;
    MPI_Alltoallv(s->recv_y, s->recv_counts, s->recv_displs, s->row_type, s->back_y,
                  s->send_counts, s->send_displs, s->row_type, s->comm);
    memset(out, 0, sizeof(float) * (size_t)T * C);
    for (int i = 0; i < T * k; i++) {
        float *o = out + (long)(s->send_slot[i] / k) * C;
        const float *y = s->back_y + (long)i * C;
        for (int d = 0; d < C; d++) o[d] += y[d];
    }
}

/* ------------------------------------------------------------------------------------
 * the layer (ready-made)
 * ---------------------------------------------------------------------------------- */

static void count_bytes(EpScratch *s, const MoeConfig *c) {
    long sent = 0, received = 0, row = (long)c->hidden_size * sizeof(float);
    for (int r = 0; r < s->P; r++)
        if (r != s->rank) sent += s->send_counts[r], received += s->recv_counts[r];
    long dispatch = row + (long)sizeof(int) + (long)sizeof(float); /* row, expert, weight */
    /* out: own rows there, others' results back; in: the mirror image */
    s->bytes_sent = sent * dispatch + received * row;
    s->bytes_received = received * dispatch + sent * row;
}

void ep_moe_forward(float *out, const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                    EpScratch *s) {
    int E = c->router.num_experts, k = c->router.num_experts_per_tok;
    MPI_Allreduce(&T, &s->T_total, 1, MPI_INT, MPI_SUM, s->comm);
    linear_tokens(s->logits, h, w->gate, T, c->hidden_size, E);
    for (int t = 0; t < T; t++)
        route(s->experts + (long)t * k, s->weights + (long)t * k, s->probs + (long)t * E,
              s->logits + (long)t * E, &c->router);
    ep_count_rows(s->send_counts, s->experts, T * k, s->P, E);
    ep_exchange_counts(s);
    ep_dispatch(s, h, T, c);
    ep_run_local_experts(s, c, w);
    ep_combine(out, s, T, c);
    count_bytes(s, c);
}
