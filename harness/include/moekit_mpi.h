/*
 * moekit_mpi.h: lesson 12, expert parallelism over MPI (lessons/12-expert-parallel/
 * expert_parallel.c). Separate from moekit.h because it needs <mpi.h>: only the MPI
 * build (mpicc, `apt-get install openmpi-bin libopenmpi-dev`) includes it.
 *
 * P ranks, E experts: rank r holds experts r*E/P .. (r+1)*E/P - 1 (integer division, so
 * P need not divide E) and its own tokens. One MoE layer is two all-to-all exchanges:
 *   dispatch: every (token, slot) row goes to the rank that owns its expert;
 *   return:   the owner sends the weighted expert output back, and each rank adds the
 *             rows into its own tokens, in their original order.
 * PyTorch (torch.distributed): dist.all_to_all_single(recv, send, out_splits, in_splits)
 */
#ifndef MOEKIT_MPI_H
#define MOEKIT_MPI_H

#include <mpi.h>

#include "moekit.h"

/* What one rank needs for one MoE layer over up to max_tokens tokens of its own, and what
 * the last call exchanged. Counts and displacements are in rows (one row = C floats,
 * the MPI datatype row_type); arrays of P are indexed by the other rank. */
typedef struct {
    MPI_Comm comm;
    int rank, P;
    int first_expert, end_expert; /* experts [first_expert, end_expert) are held here */
    MPI_Datatype row_type;        /* C contiguous floats */
    int max_tokens, max_rows;     /* own tokens; rows this rank may receive (P * max_tokens * k) */
    /* routing of the own tokens (T, k), (T, E) */
    int *experts;
    float *weights, *logits, *probs;
    /* the dispatch */
    int *send_counts, *send_displs; /* (P) rows to each rank, where they start in send_x */
    int *recv_counts, *recv_displs; /* (P) rows from each rank, where they start in recv_x */
    int *send_slot;      /* (T * k) packed row i is (token, slot) send_slot[i] = t * k + j */
    float *send_x;       /* (T * k, C) own rows, grouped by destination rank */
    int *send_expert;    /* (T * k) the expert of each packed row */
    float *send_weight;  /* (T * k) its routing weight */
    float *recv_x;       /* (max_rows, C) rows to run here, in arrival order */
    int *recv_expert;    /* (max_rows) */
    float *recv_weight;  /* (max_rows) */
    /* the local experts and the return */
    float *recv_y;       /* (max_rows, C) weight * expert(row), 0 for a dropped row */
    float *back_y;       /* (T * k, C) the rows sent back, in packing order */
    int *rows;           /* (max_rows) the received rows of one expert */
    float *x_in, *y_out, *hidden; /* one expert's gathered rows, outputs, scratch */
    int T_total;         /* tokens over all ranks, this call (the capacity) */
    int dropped;         /* rows this rank's experts refused, this call */
    long bytes_sent, bytes_received; /* payload of this call's two exchanges */
} EpScratch;

/* Ready-made. 0, or -1 (out of memory); collective over comm. */
int ep_scratch_init(EpScratch *s, const MoeConfig *c, int max_tokens, MPI_Comm comm);
void ep_scratch_free(EpScratch *s);

/* Ready-made: the first expert rank r of P holds, r * E / P. */
int ep_first_expert(int rank, int P, int E);
/* The rank that holds expert e (0 <= e < E). */
int ep_owner(int e, int P, int E);

/* send_counts (P): how many of the n_slots assignments experts (n_slots) go to each rank. */
void ep_count_rows(int *send_counts, const int *experts, int n_slots, int P, int E);
/* displs (P): where each rank's rows start in a buffer that holds them rank after rank. */
void ep_displacements(int *displs, const int *counts, int P);
/* The count exchange (MPI_Alltoall): s->recv_counts from every rank's s->send_counts,
 * then both displacements. */
void ep_exchange_counts(EpScratch *s);

/* Pack the T own tokens' rows by destination rank (token order within one: fills
 * send_slot, send_x, send_expert, send_weight from h (T, C), s->experts and s->weights)
 * and exchange them (MPI_Alltoallv): s->recv_x, recv_expert, recv_weight. */
void ep_dispatch(EpScratch *s, const float *h, int T, const MoeConfig *c);

/* Run the experts held here over the received rows: recv_y[i] = recv_weight[i] *
 * expert_{recv_expert[i]}(recv_x[i]). Each expert takes at most its capacity,
 * ceil(capacity_factor * T_total * k / E) rows (T_total without a limit), first come
 * first served in arrival order; a refused row returns 0 and counts in s->dropped. */
void ep_run_local_experts(EpScratch *s, const MoeConfig *c, const MoeWeights *w);

/* The return exchange (MPI_Alltoallv, the dispatch reversed) into s->back_y, then
 * out (T, C) = the sum of each token's returned rows, in the tokens' own order. */
void ep_combine(float *out, EpScratch *s, int T, const MoeConfig *c);

/* Ready-made: the MoE layer (no shared expert) of this rank's T tokens h (T, C) -> out
 * (T, C), the same as moe_forward over all ranks' tokens: route, count, exchange the
 * counts, dispatch, run, return and combine. Collective: every rank calls it (T may be 0). */
void ep_moe_forward(float *out, const float *h, int T, const MoeConfig *c, const MoeWeights *w,
                    EpScratch *s);

#endif /* MOEKIT_MPI_H */
