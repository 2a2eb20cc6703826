/*
 * routing_check.c: comparing routing choices as sets (see routing_check.h).
 */
#include "routing_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_internal.h"

#define MAX_K 1024

/* "{1, 4, -1}": a row's items in ascending order (-1, a dropped slot, last). */
static void format_set(char *buf, size_t len, const int *row, int k) {
    int sorted[MAX_K];
    memcpy(sorted, row, sizeof(int) * (size_t)k);
    for (int i = 1; i < k; i++) /* insertion sort, -1 after everything */
        for (int j = i; j > 0; j--) {
            unsigned a = (unsigned)sorted[j - 1], b = (unsigned)sorted[j];
            if (a <= b) break;
            int tmp = sorted[j - 1];
            sorted[j - 1] = sorted[j];
            sorted[j] = tmp;
        }
    size_t used = (size_t)snprintf(buf, len, "{");
    for (int i = 0; i < k && used < len; i++) {
        if (sorted[i] == UNWRITTEN_INT)
            used += (size_t)snprintf(buf + used, len - used, "%s(not written)", i ? ", " : "");
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? ", " : "", sorted[i]);
    }
    if (used < len) snprintf(buf + used, len - used, "}");
}

/* The first problem with the student's row on its own (an index out of range, one item
 * twice), or 0. */
static int bad_row(TestCtx *ctx, const ChoiceShape *c, int r, const int *row, const char *what) {
    for (int j = 0; j < c->k; j++) {
        int v = row[j];
        if (v == -1 && c->allow_dropped) continue;
        if (v == UNWRITTEN_INT) {
            fail(ctx, "%s: %s %d, slot %d was not written", what, c->row, r, j);
            return 1;
        }
        if (v < 0 || v >= c->n) {
            fail(ctx, "%s: %s %d, slot %d holds %s %d, outside 0..%d%s", what, c->row, r, j,
                 c->item, v, c->n - 1, c->allow_dropped ? " (or -1 for a dropped slot)" : "");
            return 1;
        }
        for (int i = 0; i < j; i++)
            if (row[i] == v) {
                fail(ctx, "%s: %s %d chose %s %d twice (slots %d and %d)", what, c->row, r,
                     c->item, v, i, j);
                return 1;
            }
    }
    return 0;
}

static int count_dropped(const int *row, int k) {
    int n = 0;
    for (int j = 0; j < k; j++) n += row[j] == -1;
    return n;
}

/* Pairs equal items of the two rows; the rest are left at -1 in m and unused in used. */
static void pair_items(const int *got, const int *exp, int k, int *m, int *used) {
    for (int j = 0; j < k; j++) used[j] = 0;
    for (int j = 0; j < k; j++) {
        m[j] = -1;
        for (int i = 0; i < k; i++)
            if (!used[i] && got[i] == exp[j]) {
                m[j] = i;
                used[i] = 1;
                break;
            }
    }
}

/* Whether every unpaired item, on either side, ties (to float rounding) with the lowest
 * score among the expected items: then the rows differ only by how a tie was broken. */
static int only_ties(const int *got, const int *exp, const int *m, const int *used, int k,
                     const float *score) {
    float last = INFINITY;
    for (int j = 0; j < k; j++)
        if (exp[j] >= 0 && score[exp[j]] < last) last = score[exp[j]];
    float tol = 1e-6f + 1e-5f * fabsf(last);
    for (int j = 0; j < k; j++) {
        if (m[j] < 0 && (exp[j] < 0 || fabsf(score[exp[j]] - last) > tol)) return 0;
        if (!used[j] && (got[j] < 0 || fabsf(score[got[j]] - last) > tol)) return 0;
    }
    return 1;
}

TestStatus expect_same_choice(TestCtx *ctx, const ChoiceShape *c, const int *got,
                              const int *expected, const float *score, int *match,
                              const char *what) {
    if (c->k > MAX_K) fixture_error(ctx, "k = %d is more than the harness handles", c->k);
    int m[MAX_K], used[MAX_K];
    for (int r = 0; r < c->rows; r++) {
        const int *g = got + (long)r * c->k, *e = expected + (long)r * c->k;
        if (bad_row(ctx, c, r, g, what)) return TEST_FAIL;
        pair_items(g, e, c->k, m, used);
        int same = 1;
        for (int j = 0; j < c->k; j++) same &= m[j] >= 0;
        if (!same && score && count_dropped(e, c->k) == 0 && count_dropped(g, c->k) == 0 &&
            only_ties(g, e, m, used, c->k, score + (long)r * c->n)) {
            for (int j = 0, i = 0; j < c->k; j++) { /* pair the tied items in order */
                if (m[j] >= 0) continue;
                while (used[i]) i++;
                m[j] = i;
                used[i] = 1;
            }
            if (ctx->verbose == REPORT_FULL)
                printf("note: %s %d: a different %s won an exact tie for the last place; "
                       "either is accepted\n", c->row, r, c->item);
            same = 1;
        }
        if (!same) {
            char want[512], have[512];
            format_set(want, sizeof want, e, c->k);
            format_set(have, sizeof have, g, c->k);
            fail(ctx, "%s: %s %d chose %ss %s, expected %s%s", what, c->row, r, c->item, have,
                 want, c->allow_dropped ? " (-1: dropped by the capacity limit)" : "");
            if (score && ctx->verbose == REPORT_FULL) {
                printf("  expected scores of the %ss that differ:", c->item);
                for (int j = 0; j < c->k; j++) {
                    if (m[j] < 0 && e[j] >= 0)
                        printf(" %d: %.4g (expected)", e[j], score[(long)r * c->n + e[j]]);
                    if (!used[j] && g[j] >= 0)
                        printf(" %d: %.4g (yours)", g[j], score[(long)r * c->n + g[j]]);
                }
                printf("\n");
            }
            return TEST_FAIL;
        }
        if (match) memcpy(match + (long)r * c->k, m, sizeof(int) * (size_t)c->k);
    }
    return TEST_PASS;
}

void align_to_expected(float *dst, const float *got_val, const int *match, int rows, int k) {
    for (long r = 0; r < rows; r++)
        for (int j = 0; j < k; j++) dst[r * k + j] = got_val[r * k + match[r * k + j]];
}

TestStatus expect_equal_ints(TestCtx *ctx, const char *name, const int *got, const int *expected,
                             long n, const char *what) {
    for (long i = 0; i < n; i++) {
        if (got[i] == expected[i]) continue;
        if (got[i] == UNWRITTEN_INT)
            return fail(ctx, "%s: %s[%ld] was not written, expected %d", what, name, i,
                        expected[i]);
        return fail(ctx, "%s: %s[%ld] = %d, expected %d", what, name, i, got[i], expected[i]);
    }
    return TEST_PASS;
}

MoeWeights fx_moe_weights(TestCtx *ctx, int E, int C, int I, int shared_I) {
    long per = (long)I * C;
    MoeWeights w = {0};
    w.gate = fx_tensor(ctx, "gate.weight", (long)E * C, NULL);
    const float *gate_proj = fx_tensor(ctx, "experts.gate_proj.weight", E * per, NULL);
    const float *up_proj = fx_tensor(ctx, "experts.up_proj.weight", E * per, NULL);
    const float *down_proj = fx_tensor(ctx, "experts.down_proj.weight", E * per, NULL);
    w.experts = test_alloc(ctx, sizeof(ExpertWeights) * (size_t)(E > 0 ? E : 1));
    for (int e = 0; e < E; e++)
        w.experts[e] = (ExpertWeights){gate_proj + e * per, up_proj + e * per, down_proj + e * per};
    if (shared_I > 0) {
        long sp = (long)shared_I * C;
        w.shared_expert.gate_proj = fx_tensor(ctx, "shared_expert.gate_proj.weight", sp, NULL);
        w.shared_expert.up_proj = fx_tensor(ctx, "shared_expert.up_proj.weight", sp, NULL);
        w.shared_expert.down_proj = fx_tensor(ctx, "shared_expert.down_proj.weight", sp, NULL);
        w.shared_expert_gate = fx_tensor(ctx, "shared_expert_gate.weight", C, NULL);
    }
    return w;
}
