/*
 * compare.c: expect_close, the mismatch report and the named-mistake lookup.
 *
 * A report says how many values differ out of how many, the largest errors, the first
 * bad element by name ("token 0, head 1, dim 1"), a few expected/got pairs, and, when
 * the output matches a known-wrong variant from the fixture, which mistake that is; when
 * none does, how the output relates to the expected one, if it does (relations.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "check_internal.h"
#include "diagnoses.h"
#include "relations.h"

static int close_enough(float got, float exp, float atol, float rtol) {
    if (!isfinite(exp) || !isfinite(got)) return 0;
    return fabsf(got - exp) <= atol + rtol * fabsf(exp);
}

static long layout_numel(const Layout *l) {
    long n = 1;
    for (int d = 0; d < l->ndim; d++) n *= l->shape[d];
    return n;
}

/* "token 0, head 1, dim 1" for flat index i */
static void format_index(char *buf, size_t len, const Layout *l, long i) {
    long idx[4];
    for (int d = l->ndim - 1; d >= 0; d--) {
        idx[d] = i % l->shape[d];
        i /= l->shape[d];
    }
    buf[0] = '\0';
    for (int d = 0; d < l->ndim; d++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s %ld", d ? ", " : "", l->names[d], idx[d]);
    }
}

/* ------------------------------------------------------------------------------------
 * statistics of a mismatch
 * ---------------------------------------------------------------------------------- */

typedef struct {
    long n, bad, first, nonfinite, untouched;
    float max_abs, max_rel;
} MismatchStats;

static MismatchStats mismatch_stats(const float *got, const float *exp, long n, float atol,
                                    float rtol) {
    MismatchStats m = {n, 0, -1, 0, 0, 0.0f, 0.0f};
    for (long i = 0; i < n; i++) {
        if (isnan(got[i])) m.untouched++;
        if (close_enough(got[i], exp[i], atol, rtol)) continue;
        m.bad++;
        if (m.first < 0) m.first = i;
        if (!isfinite(got[i])) {
            m.nonfinite++;
            continue;
        }
        float abs_err = fabsf(got[i] - exp[i]);
        float rel_err = abs_err / fmaxf(fabsf(exp[i]), 1e-30f);
        if (abs_err > m.max_abs) m.max_abs = abs_err;
        if (rel_err > m.max_rel) m.max_rel = rel_err;
    }
    return m;
}

/* ------------------------------------------------------------------------------------
 * which known mistake does the output look like?
 * ---------------------------------------------------------------------------------- */

/* A variant matches when most of it is defined and every defined value agrees with got
 * (NaN in a variant marks "undefined under this mistake", e.g. an empty softmax row). */
static int matches_variant(const float *got, const float *var, long n, float atol, float rtol) {
    long defined = 0;
    for (long i = 0; i < n; i++) {
        if (isnan(var[i])) continue;
        defined++;
        if (!close_enough(got[i], var[i], atol, rtol)) return 0;
    }
    return defined * 2 >= n;
}

static const char *find_mistake(TestCtx *ctx, const char *output, const float *got, long n,
                                float atol, float rtol) {
    char prefix[256];
    int plen = snprintf(prefix, sizeof prefix, "%s/%s~", ctx->case_id, output);
    for (int i = 0; i < ctx->fx->n_tensors; i++) {
        const StTensor *t = &ctx->fx->tensors[i];
        if (strncmp(t->name, prefix, (size_t)plen) != 0) continue;
        const char *mistake = t->name + plen;
        const float *var = fx_tensor(ctx, t->name + strlen(ctx->case_id) + 1, n, NULL);
        if (matches_variant(got, var, n, 10 * atol, 10 * rtol)) return mistake;
    }
    return NULL;
}

static void print_diagnosis(const char *mistake) {
    const Diagnosis *d = diagnosis_find(mistake);
    if (!d) {
        printf("  looks like: %s (a mistake this harness has no description of)\n", mistake);
        return;
    }
    printf("  looks like: %s\n  %s\n", d->looks_like, d->fix);
    printf("  see lessons/%s/README.md, \"%s\"\n", d->lesson, d->section);
}

/* ------------------------------------------------------------------------------------
 * the report
 * ---------------------------------------------------------------------------------- */

static void print_examples(const float *got, const float *exp, const Layout *l,
                           const MismatchStats *m, float atol, float rtol) {
    char where[128];
    format_index(where, sizeof where, l, m->first);
    printf("  first at %s: expected %.6g, got %.6g\n", where, exp[m->first], got[m->first]);
    int shown = 0;
    for (long i = m->first + 1; i < m->n && shown < 3; i++) {
        if (close_enough(got[i], exp[i], atol, rtol)) continue;
        format_index(where, sizeof where, l, i);
        printf("     then at %s: expected %.6g, got %.6g\n", where, exp[i], got[i]);
        shown++;
    }
}

/* The named mistake behind got, or NULL: a non-finite output where the case names one for
 * that, otherwise the variant got matches. */
static const char *diagnose(TestCtx *ctx, const char *output, const float *got,
                            const MismatchStats *m, float atol, float rtol) {
    char key[256];
    snprintf(key, sizeof key, "%s/%s~nonfinite", ctx->case_id, output);
    const char *overflow = m->nonfinite ? st_meta(ctx->fx, key) : NULL;
    return overflow ? overflow : find_mistake(ctx, output, got, m->n, atol, rtol);
}

/* The expected <output> of up to MAX_OTHERS other cases of this fixture with n values, as
 * float32 in ctx's buffers: what rel_other_case compares with. */
enum { MAX_OTHERS = 16 };

static int other_cases(TestCtx *ctx, const char *output, long n, OtherCase *out) {
    int count = 0;
    for (int i = 0; i < ctx->fx->n_tensors && count < MAX_OTHERS; i++) {
        const StTensor *t = &ctx->fx->tensors[i];
        const char *slash = strchr(t->name, '/');
        size_t id_len = slash ? (size_t)(slash - t->name) : 0;
        if (!slash || strcmp(slash + 1, output) != 0 || (long)t->numel != n ||
            (strlen(ctx->case_id) == id_len && !strncmp(t->name, ctx->case_id, id_len)))
            continue;
        float *exp = test_alloc(ctx, sizeof(float) * (size_t)n);
        char title_key[256], *id = test_alloc(ctx, id_len + 1);
        if (st_to_f32(t, exp) != 0) continue;
        memcpy(id, t->name, id_len), id[id_len] = '\0';
        snprintf(title_key, sizeof title_key, "%s/title", id);
        const char *title = st_meta(ctx->fx, title_key);
        out[count++] = (OtherCase){id, title ? title : id, exp};
    }
    return count;
}

/* When no stored variant names the mistake: the first relation between got and exp. */
static void print_relation(TestCtx *ctx, const char *output, const float *got, const float *exp,
                           const Layout *l, long n, float atol, float rtol) {
    OtherCase others[MAX_OTHERS];
    RelInput r = {got, exp, l, n, atol, rtol, others, other_cases(ctx, output, n, others)};
    char why[512];
    if (relation_find(&r, why, sizeof why)) printf("  looks like, from the numbers alone: %s\n", why);
}

static void print_diagnosis_only(TestCtx *ctx, const char *output, const float *got,
                                 const MismatchStats *m, float atol, float rtol) {
    const char *mistake = diagnose(ctx, output, got, m, atol, rtol);
    if (!mistake) return;
    printf("this case shows what went wrong above:\n");
    print_diagnosis(mistake);
}

static void print_report(TestCtx *ctx, const char *output, const float *got, const float *exp,
                         const Layout *l, const MismatchStats *m, float atol, float rtol,
                         const char *what) {
    printf("lesson %s %s, case \"%s\", %s: %ld of %ld values differ", ctx->lesson->id,
           ctx->lesson->name, ctx->title, what, m->bad, m->n);
    if (m->bad > m->nonfinite) printf(" (max abs %.3g, rel %.3g)", m->max_abs, m->max_rel);
    printf("\n");
    if (m->untouched == m->n) {
        printf("  nothing was written: every value is still the NaN the harness filled in.\n");
        return;
    }
    print_examples(got, exp, l, m, atol, rtol);
    if (m->nonfinite) printf("  %ld values are inf or NaN\n", m->nonfinite);
    printf("  tolerance: |got - expected| <= %.0e + %.0e * |expected|\n", atol, rtol);
    const char *mistake = diagnose(ctx, output, got, m, atol, rtol);
    if (mistake) print_diagnosis(mistake);
    else print_relation(ctx, output, got, exp, l, m->n, atol, rtol);
}

/* make check FULL=1, on a pass: how close it came, as llm.c prints maxdiff */
static void print_max_error(const float *got, const float *exp, const Layout *l, float atol,
                            float rtol, const char *what) {
    long worst = 0;
    float max_abs = 0.0f, max_use = 0.0f; /* use: an error's share of its tolerance */
    for (long i = 0; i < layout_numel(l); i++) {
        float err = fabsf(got[i] - exp[i]), use = err / (atol + rtol * fabsf(exp[i]));
        if (err > max_abs) max_abs = err, worst = i;
        if (use > max_use) max_use = use;
    }
    char where[160];
    format_index(where, sizeof where, l, worst);
    printf("%s: max abs error %.3g at %s (expected %.9g, got %.9g); the closest call used "
           "%.0f%% of its tolerance\n", what, max_abs, where, exp[worst], got[worst], 100.0f * max_use);
}

TestStatus matches(TestCtx *ctx, const char *output, const float *got, const Layout *l,
                   float atol, float rtol) {
    long n = layout_numel(l);
    MismatchStats m = mismatch_stats(got, want_tensor(ctx, output, n), n, atol, rtol);
    return m.bad == 0 ? TEST_PASS : TEST_FAIL;
}

TestStatus expect_close(TestCtx *ctx, const char *output, const float *got, const Layout *l,
                        float atol, float rtol, const char *what) {
    long n = layout_numel(l);
    const float *exp = want_tensor(ctx, output, n);
    MismatchStats m = mismatch_stats(got, exp, n, atol, rtol);
    if (m.bad == 0 && ctx->full) print_max_error(got, exp, l, atol, rtol, what);
    if (m.bad == 0) return TEST_PASS;
    if (ctx->verbose == REPORT_FULL) print_report(ctx, output, got, exp, l, &m, atol, rtol, what);
    if (ctx->verbose == REPORT_DIAGNOSIS) print_diagnosis_only(ctx, output, got, &m, atol, rtol);
    return TEST_FAIL;
}

/* ------------------------------------------------------------------------------------
 * property checks (check.h): the observed outputs against what the property says
 * ---------------------------------------------------------------------------------- */

TestStatus expect_property(TestCtx *ctx, const char *property, const float *got,
                           const float *want, const Layout *l, float atol, float rtol) {
    long n = layout_numel(l);
    MismatchStats m = mismatch_stats(got, want, n, atol, rtol);
    if (m.bad == 0 && ctx->full) print_max_error(got, want, l, atol, rtol, property);
    if (m.bad == 0) return TEST_PASS;
    if (ctx->verbose != REPORT_FULL) return TEST_FAIL;
    char where[160];
    format_index(where, sizeof where, l, m.first);
    printf("lesson %s %s, random inputs shaped like case \"%s\": %s does not hold: %ld of %ld values "
           "are off", ctx->lesson->id, ctx->lesson->name, ctx->title, property, m.bad, m.n);
    if (m.bad > m.nonfinite) printf(" (max abs %.3g)", m.max_abs);
    printf("\n  first at %s: the property says %g, your code gives %g\n", where, want[m.first],
           got[m.first]);
    if (m.untouched == m.n) printf("  nothing was written: every value is still the NaN the harness filled in.\n");
    printf("  tolerance: |got - property| <= %.0e + %.0e * |property|\n", atol, rtol);
    printf("  the inputs came from seed %lu: `make check LESSON=%s SEED=%lu` draws them again\n",
           ctx->seed, ctx->lesson->id, ctx->seed);
    return TEST_FAIL;
}
