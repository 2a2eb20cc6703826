/* ep_record.h: what lesson 12's MPI worker (harness/test/mpi/ep_worker.c) hands back to
 * the check runner (lesson12_expert_parallel.c), in the file it writes: this record, then
 * four (P, P) int tables, send_counts, send_displs, recv_counts and recv_displs (row r:
 * rank r's), from the count exchange alone; then, when the layer ran to its end, out
 * (T, C) floats and dropped (P) ints. */
#ifndef MOEKIT_EP_RECORD_H
#define MOEKIT_EP_RECORD_H

#define EP_RECORD_MAGIC 0x3170654d /* "Mep1" */

typedef struct {
    int magic;
    int todo;            /* a rank hit a TODO() */
    char todo_text[512]; /* the first hit on rank 0, as the runner prints it */
} EpRecord;

#endif
