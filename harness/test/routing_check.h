/*
 * routing_check.h: comparing routing choices (lessons 06, 07 and 10).
 *
 * A router's choice per token is a set: route() lists experts by descending probability,
 * but nothing downstream depends on that order, so the tests compare each row as a set.
 * Values that belong to a choice (the routing weights) are then compared per expert,
 * after reordering the student's row to the expected order (align_to_expected).
 */
#ifndef MOEKIT_ROUTING_CHECK_H
#define MOEKIT_ROUTING_CHECK_H

#include "check.h"
#include "moekit.h"

typedef struct {
    const char *row;   /* what a row is, in messages: "token" */
    const char *item;  /* what it chooses: "expert" */
    int rows, k, n;    /* rows of k choices, each in [0, n) */
    int allow_dropped; /* -1 marks a slot the capacity limit dropped */
} ChoiceShape;

/* got and expected (rows, k): the same items per row, in any order; no item twice in a
 * row. score (rows, n) or NULL: the expected score of every item (the probabilities).
 * Where a row differs only by items whose scores tie with the last one chosen, either
 * choice is accepted and a note says so. match (rows, k) or NULL: for each expected slot,
 * the slot of got holding the same item (or its tie partner). Reports and returns
 * TEST_FAIL on a difference. */
TestStatus expect_same_choice(TestCtx *ctx, const ChoiceShape *c, const int *got,
                              const int *expected, const float *score, int *match,
                              const char *what);

/* dst[r][j] = got_val[r][match[r][j]]: the student's values in the expected order. */
void align_to_expected(float *dst, const float *got_val, const int *match, int rows, int k);

/* got == expected exactly, element by element (counts, ordered index lists); names the
 * first difference, e.g. "expert_count[5] = 3, expected 2". */
TestStatus expect_equal_ints(TestCtx *ctx, const char *name, const int *got, const int *expected,
                             long n, const char *what);

/* One MoE layer's weights from the case: 'gate.weight' (E, C), the experts stacked as
 * 'experts.{gate,up,down}_proj.weight' (E, I, C), (E, I, C), (E, C, I), and, when shared_I
 * > 0, 'shared_expert.{gate,up,down}_proj.weight' and 'shared_expert_gate.weight' (1, C). */
MoeWeights fx_moe_weights(TestCtx *ctx, int E, int C, int I, int shared_I);

#endif
