/*
 * selftest_relations.c: each relation of relations.c fires on an output made wrong in its
 * way, and stays silent on the right output, on one off by rounding only, and on noise.
 *
 *   make selftest-relations      (part of make test)
 *
 * Expected outputs are uniform in [-1, 1) from a fixed LCG; the tolerance is lesson 03's
 * (atol 1e-5, rtol 1e-4). A wrong output is built from the expected one, e.g. rows 2 and 4
 * zeroed, or every value times 1/sqrt(16).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "relations.h"

enum { MAXN = 4096 };

static int passed, failed;
static unsigned long long lcg = 88172645463325252ULL;

static float uniform(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static void fill(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = uniform();
}

static long numel(const Layout *l) {
    long n = 1;
    for (int d = 0; d < l->ndim; d++) n *= l->shape[d];
    return n;
}

static RelInput input(const float *got, const float *exp, const Layout *l) {
    return (RelInput){got, exp, l, numel(l), 1e-5f, 1e-4f, NULL, 0};
}

/* relation_find names `want` and its sentence holds `text`. */
static void expect_fires(const char *what, const RelInput *r, const char *want, const char *text) {
    char why[512] = "";
    const Relation *rel = relation_find(r, why, sizeof why);
    if (rel && !strcmp(rel->name, want) && strstr(why, text)) {
        passed++;
        printf("ok    %s: %s\n", what, why);
    } else {
        failed++;
        printf("FAIL  %s: wanted %s (\"%s\"), got %s: %s\n", what, want, text,
               rel ? rel->name : "none", why);
    }
}

/* No relation holds for got (each checked on its own, not just the first). */
static void expect_silent(const char *what, const RelInput *r) {
    char why[512];
    for (const Relation *rel = RELATIONS; rel->name; rel++)
        if (rel->holds(r, why, sizeof why)) {
            failed++;
            printf("FAIL  %s: %s fired: %s\n", what, rel->name, why);
            return;
        }
    passed++;
    printf("ok    %s: no relation fires\n", what);
}

/* The three outputs no relation may name: the right one, one off by rounding (well inside
 * the tolerance), and noise of the same size. */
static void expect_silent_on_right(const char *what, const float *exp, const Layout *l) {
    static float got[MAXN];
    char label[160];
    long n = numel(l);
    RelInput r = input(got, exp, l);
    memcpy(got, exp, sizeof(float) * (size_t)n);
    snprintf(label, sizeof label, "%s, right output", what);
    expect_silent(label, &r);
    for (long i = 0; i < n; i++) got[i] = exp[i] * (1 + 2e-5f);
    snprintf(label, sizeof label, "%s, rounding only", what);
    expect_silent(label, &r);
    fill(got, n);
    snprintf(label, sizeof label, "%s, noise", what);
    expect_silent(label, &r);
}

static void test_patterns(void) {
    static float exp[MAXN], got[MAXN];
    Layout l = {2, {"token", "dim"}, {6, 16}};
    long n = numel(&l);
    RelInput r = input(got, exp, &l);
    fill(exp, n);
    expect_silent_on_right("patterns [6, 16]", exp, &l);

    for (long i = 0; i < n; i++) got[i] = 0.0f;
    expect_fires("all zero", &r, "constant", "every value is 0");
    for (long i = 0; i < n; i++) got[i] = NAN;
    expect_fires("all NaN", &r, "constant", "nothing was written");

    memcpy(got, exp, sizeof exp);
    for (long j = 0; j < 16; j++) got[2 * 16 + j] = got[4 * 16 + j] = 0.0f;
    expect_fires("tokens 2 and 4 zero (a mask)", &r, "dead_slices", "token 2, 4 (2 of 6)");

    memcpy(got, exp, sizeof exp);
    for (long t = 0; t < 6; t++)
        for (long j = 5; j <= 7; j++) got[t * 16 + j] = NAN;
    expect_fires("dims 5..7 never written (a band)", &r, "dead_slices", "dim 5..7");

    memcpy(got, exp, sizeof exp);
    got[17] = got[40] = got[90] = NAN;
    expect_fires("three values never written", &r, "unwritten", "right except 3 of 96 values that are NaN");
}

static void test_tail(void) {
    static float exp[MAXN], got[MAXN];
    Layout l = {2, {"token", "out"}, {4, 37}};
    RelInput r = input(got, exp, &l);
    fill(exp, numel(&l));
    expect_silent_on_right("tail [4, 37]", exp, &l);
    memcpy(got, exp, sizeof exp);
    for (long t = 0; t < 4; t++)
        for (long j = 32; j < 37; j++) got[t * 37 + j] += 0.5f;
    expect_fires("last 5 of 37 wrong", &r, "tail", "last 5 of the 37 values along out, in 4 of 4");
}

static void test_scale(void) {
    static float exp[MAXN], got[MAXN];
    Layout l = {3, {"token", "head", "dim"}, {3, 2, 16}};
    long n = numel(&l);
    RelInput r = input(got, exp, &l);
    fill(exp, n);
    expect_silent_on_right("scale [3, 2, 16]", exp, &l);
    for (long i = 0; i < n; i++) got[i] = exp[i] * 0.25f;
    expect_fires("times 1/sqrt(16)", &r, "scale", "times 0.25 = 1/sqrt(dim) with dim = 16");
    for (long i = 0; i < n; i++) got[i] = exp[i] * 0.37f;
    expect_fires("times 0.37", &r, "scale", "times 0.37:");
    for (long i = 0; i < n; i++) got[i] = -exp[i];
    expect_fires("negated", &r, "scale", "negated");

    Layout one = {1, {"value"}, {1}};
    float e1 = 1.7f, g1 = 0.85f, g2 = 0.61f;
    RelInput r1 = input(&g1, &e1, &one);
    expect_fires("a scalar halved", &r1, "scale", "times 0.5 = 1/2");
    r1.got = &g2;
    expect_silent("a scalar wrong by no simple factor", &r1);
    g2 = -e1;
    expect_fires("a scalar negated", &r1, "scale", "negated");

    Layout rows = {2, {"token", "slot"}, {5, 4}};
    RelInput rr = input(got, exp, &rows);
    for (long t = 0; t < 5; t++)
        for (long j = 0; j < 4; j++) got[t * 4 + j] = exp[t * 4 + j] * (1.0f + 0.3f * (float)t);
    expect_fires("each row its own factor", &rr, "slice_scale", "each token is the expected "
                 "times a factor of its own (token 0: 1, 1: 1.3, 2: 1.6 ...; from 1 to 2.2)");
    for (long t = 0; t < 5; t++)
        for (long j = 0; j < 4; j++) got[t * 4 + j] = exp[t * 4 + j] / (0.5f + 0.25f * (float)j);
    expect_fires("each channel its own factor (a weight left out)", &rr, "slice_scale",
                 "each slot is the expected times a factor of its own (slot 0: 2, 1: 1.333, "
                 "2: 1 ...; from 0.8 to 2): a per-channel weight");
    Layout heads = {3, {"token", "head", "dim"}, {3, 2, 8}};
    RelInput rh = input(got, exp, &heads);
    for (long i = 0; i < 48; i++) got[i] = exp[i] * (1.0f + 0.1f * (float)(i / 8));
    expect_fires("each (token, head) row its own factor", &rh, "slice_scale",
                 "each row along the last dim is the expected times");
}

static void test_moved(void) {
    static float exp[MAXN], got[MAXN];
    Layout l = {2, {"token", "hidden"}, {8, 12}};
    long n = numel(&l);
    RelInput r = input(got, exp, &l);
    fill(exp, n);
    expect_silent_on_right("moved [8, 12]", exp, &l);

    fill(got, 12);
    memcpy(got + 12, exp, sizeof(float) * 7 * 12);
    expect_fires("shifted one token later", &r, "shift", "token i holds the expected of token i - 1");
    memcpy(got, exp + 12, sizeof(float) * 7 * 12);
    fill(got + 7 * 12, 12);
    expect_fires("shifted one token earlier", &r, "shift", "token i + 1");

    memcpy(got, exp, sizeof exp);
    memcpy(got + 1 * 12, exp + 4 * 12, sizeof(float) * 12);
    memcpy(got + 4 * 12, exp + 1 * 12, sizeof(float) * 12);
    expect_fires("tokens 1 and 4 swapped", &r, "permuted", "token 1 has token 4's");

    Layout cols = {2, {"token", "expert"}, {5, 8}};
    RelInput rc = input(got, exp, &cols);
    for (long t = 0; t < 5; t++)
        for (long e = 0; e < 8; e++) got[t * 8 + e] = exp[t * 8 + (e ^ 1)];
    expect_fires("experts swapped in pairs", &rc, "permuted", "every expert holds");

    Layout rect = {2, {"row", "col"}, {5, 7}};
    RelInput rt = input(got, exp, &rect);
    for (long i = 0; i < 5; i++)
        for (long j = 0; j < 7; j++) got[j * 5 + i] = exp[i * 7 + j];
    expect_fires("written as [7, 5]", &rt, "transposed", "written as [7, 5]");
    Layout sq = {2, {"row", "col"}, {6, 6}};
    RelInput rs = input(got, exp, &sq);
    for (long i = 0; i < 6; i++)
        for (long j = 0; j < 6; j++) got[j * 6 + i] = exp[i * 6 + j];
    expect_fires("square, transposed", &rs, "transposed", "row and col swapped");
}

static void test_elsewhere(void) {
    static float exp[MAXN], got[MAXN], other[MAXN];
    Layout l = {2, {"token", "vocab"}, {5, 9}};
    long n = numel(&l);
    fill(exp, n);
    fill(other, n);
    OtherCase oc = {"sample_hot", "V=45 hot", other};
    RelInput r = input(got, exp, &l);
    r.others = &oc, r.n_others = 1;
    memcpy(got, other, sizeof(float) * (size_t)n);
    expect_fires("another case's answer", &r, "other_case", "case sample_hot");
    memcpy(got, exp, sizeof(float) * (size_t)n);
    expect_silent("right, with another case at hand", &r);
    fill(got, n);
    expect_silent("noise, with another case at hand", &r);

    for (long i = 0; i < n; i++) got[i] = exp[i] + 3e-4f; /* 3e-4 > 1e-5 + 1e-4 |exp| */
    expect_fires("off by 3e-4 everywhere", &r, "nearly", "nearly right");
    for (long i = 0; i < n; i++) got[i] = exp[i] + 3e-2f * (i % 2 ? 1.0f : -1.0f);
    expect_silent("off by 3e-2, far outside 100 times the tolerance", &r);
    Layout one = {1, {"value"}, {1}};
    float tiny = -0.0078f, zero = 0.0f;
    RelInput r1 = {&zero, &tiny, &one, 1, 1e-4f, 1e-4f, NULL, 0};
    expect_silent("0 for -0.0078 (within 100 atol, but all of the value)", &r1);

    memcpy(got, exp, sizeof(float) * (size_t)n);
    fill(got + 2 * 9, 3 * 9);
    r.n_others = 0;
    expect_fires("tokens 0..1 right only", &r, "right_slices", "right at token 0..1, wrong at token 2..4: what differs");
}

int main(void) {
    test_patterns();
    test_tail();
    test_scale();
    test_moved();
    test_elsewhere();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
