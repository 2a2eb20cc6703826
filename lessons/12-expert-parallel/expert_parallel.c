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
int ep_owner(int e, int P, int E) {
    /* TODO: return the rank r of P whose experts r*E/P .. (r+1)*E/P - 1 (integer division,
     * as ep_first_expert computes the first) include e.
     * Think about: P need not divide E (8 experts over 3 ranks: 2, 3, 3); a loop over the
     * ranks is fine, a formula is nicer (README "Who holds which expert"). */
    TODO("the rank whose expert range holds e");
    return 0;
}

void ep_count_rows(int *send_counts, const int *experts, int n_slots, int P, int E) {
    /* TODO: send_counts[r] = how many of the n_slots (token, slot) assignments in experts
     * go to the rank that owns their expert.
     * Think about: what the array holds before you start. */
    TODO("rows per destination rank");
}

/* An exclusive prefix sum: rank r's rows start after those of ranks 0 .. r-1. */
void ep_displacements(int *displs, const int *counts, int P) {
    /* TODO: displs[r] = where rank r's counts[r] rows start in a buffer holding them rank
     * after rank (README "Counts and displacements"). */
    TODO("where each rank's rows start");
}

/* Rank r's send_counts[q] arrives as rank q's recv_counts[r]. */
void ep_exchange_counts(EpScratch *s) {
    /* TODO: the count exchange. Afterwards s->recv_counts[r] is the number of rows rank r
     * sends here (its send_counts[s->rank]), and s->send_displs, s->recv_displs are the
     * displacements of both.
     * Think about: one MPI_Alltoall of one int per rank does it, on s->comm; every rank
     * must call it (it is collective). */
    TODO("MPI_Alltoall of the counts, then both displacements");
}

/* ------------------------------------------------------------------------------------
 * dispatch, local experts, return
 * ---------------------------------------------------------------------------------- */

/* Rows grouped by destination, token order within one: a cursor per destination, which
 * starts at its displacement. */
static void pack_rows(EpScratch *s, const float *h, int T, const MoeConfig *c) {
    /* TODO: put each of the T * k (token, slot) assignments at position i of the send
     * buffers: send_x row i = h[token] (C floats), send_expert[i], send_weight[i] (from
     * s->experts, s->weights) and send_slot[i] = t * k + j. Rows for rank r fill positions
     * s->send_displs[r] .. + send_counts[r] - 1, in token order.
     * Think about: one cursor per destination (s->rows is free to hold P of them now);
     * why token order matters to the owner's capacity (README "Capacity on a rank"). */
    TODO("rows grouped by destination rank, token order within one");
}

void ep_dispatch(EpScratch *s, const float *h, int T, const MoeConfig *c) {
    pack_rows(s, h, T, c);
    /* TODO: the dispatch exchange. Afterwards s->recv_x, s->recv_expert and
     * s->recv_weight hold the rows every rank sent here, rank 0's first.
     * Think about: MPI_Alltoallv takes counts and displacements in units of its datatype
     * (s->row_type is one row of C floats); which counts describe the sending side and
     * which the receiving side (README "Counts and displacements"). */
    TODO("MPI_Alltoallv of the rows, their experts and their weights");
}

/* Rows one expert may take: lesson 07's ceil(capacity_factor * T * k / E), with T the
 * tokens of all ranks (each owner sees only a part of them). */
static int ep_capacity(const EpScratch *s, const MoeConfig *c) {
    /* TODO: lesson 07's capacity, ceil(capacity_factor * T * k / E), or no limit when
     * c->capacity_factor <= 0.
     * Think about: which T? This rank sees only part of the rows of its experts
     * (README "Capacity on a rank"). */
    TODO("the rows one expert may take");
    return s->T_total;
}

/* Expert e's rows among the n received, in arrival order, up to its capacity: into
 * s->rows; the rest are dropped (their recv_y stays 0). Returns how many it takes. */
static int take_rows(EpScratch *s, int e, int n, int capacity) {
    /* TODO: the positions of expert e's rows among the n received, in arrival order, into
     * s->rows, at most `capacity` of them; each row past that counts in s->dropped. Return
     * how many it takes. */
    TODO("expert e's received rows up to its capacity");
    return 0;
}

void ep_run_local_experts(EpScratch *s, const MoeConfig *c, const MoeWeights *w) {
    int C = c->hidden_size, n = 0, capacity = ep_capacity(s, c);
    for (int r = 0; r < s->P; r++) n += s->recv_counts[r];
    memset(s->recv_y, 0, sizeof(float) * (size_t)n * C);
    s->dropped = 0;
    /* TODO: for each expert held here (s->first_expert .. s->end_expert - 1): take its rows
     * (take_rows), run it once over them (lesson 05's expert_forward_tokens on the rows
     * gathered into s->x_in, output s->y_out, scratch s->hidden), and write
     * recv_weight * output to recv_y at each row's own position.
     * Think about: the rows must go back where they came from, so recv_y keeps the
     * arrival order; who applies the routing weight, and that nobody else does. */
    TODO("each local expert once over its rows; weighted outputs into recv_y");
}

/* The dispatch reversed: what came from rank r goes back to rank r, where it lands
 * exactly where that rank packed it. Then each packed row i adds into its own token
 * send_slot[i] / k, not into row i's position. */
void ep_combine(float *out, EpScratch *s, int T, const MoeConfig *c) {
    /* TODO: the return exchange, recv_y back to the ranks the rows came from, into
     * s->back_y; then out (T, C) = for each token, the sum of its k returned rows.
     * Think about: the return is the dispatch with the two sides swapped; back_y row i is
     * the row this rank packed at position i, which is not token i / k (README "The return
     * exchange and the combine"); what out holds before you add. */
    TODO("MPI_Alltoallv back, then each row into its own token");
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
