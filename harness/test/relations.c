/*
 * relations.c: how a wrong output relates to the expected one (see relations.h).
 *
 * Shapes: got and exp are n floats laid out as l (up to 4 dims, row-major). A relation
 * along dimension k sees them as [outer][size][inner], size = l->shape[k]: the "slice" i of
 * dim k is every value whose index along k is i (a token's row, an expert's column, ...).
 */
#include "relations.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Dims longer than this are not searched slice by slice (the flags live on the stack). */
#define MAX_SLICES 4096

/* ------------------------------------------------------------------------------------
 * comparing, and the layout around one dimension
 * ---------------------------------------------------------------------------------- */

/* |got - want| <= f * (atol + rtol |want|), both finite: f = 1 is the test's "right",
 * f = 10 is "the relation holds" (as stored variants are matched). */
static int within(const RelInput *r, float got, float want, float f) {
    if (!isfinite(got) || !isfinite(want)) return 0;
    return fabsf(got - want) <= f * (r->atol + r->rtol * fabsf(want));
}

static int right_at(const RelInput *r, long i) { return within(r, r->got[i], r->exp[i], 1.0f); }
static int near(const RelInput *r, float got, float want) { return within(r, got, want, 10.0f); }

/* 1 when some value of got is wrong at the test's tolerance: no relation fires without. */
static int any_wrong(const RelInput *r) {
    for (long i = 0; i < r->n; i++)
        if (!right_at(r, i)) return 1;
    return 0;
}

typedef struct {
    long outer, size, inner;
} Around;

static Around around(const Layout *l, int k) {
    Around a = {1, l->shape[k], 1};
    for (int d = 0; d < k; d++) a.outer *= l->shape[d];
    for (int d = k + 1; d < l->ndim; d++) a.inner *= l->shape[d];
    return a;
}

static long at(Around a, long o, long i, long j) { return (o * a.size + i) * a.inner + j; }

/* 1 when slice i of got is near slice j of ref (exp or another case's output). */
static int slice_near(const RelInput *r, Around a, long i, const float *ref, long j) {
    for (long o = 0; o < a.outer; o++)
        for (long m = 0; m < a.inner; m++)
            if (!near(r, r->got[at(a, o, i, m)], ref[at(a, o, j, m)])) return 0;
    return 1;
}

/* 1 when slice i of got is right (the test's own tolerance). */
static int slice_right(const RelInput *r, Around a, long i) {
    for (long o = 0; o < a.outer; o++)
        for (long m = 0; m < a.inner; m++)
            if (!right_at(r, at(a, o, i, m))) return 0;
    return 1;
}

/* "token 0, 3, 7..9" into buf: the indices i < size where flag[i] is set, runs joined. */
static void list_indices(char *buf, size_t len, const char *name, const unsigned char *flag,
                         long size) {
    size_t used = (size_t)snprintf(buf, len, "%s", name);
    int groups = 0;
    for (long i = 0; i < size && used < len; i++) {
        if (!flag[i]) continue;
        long j = i;
        while (j + 1 < size && flag[j + 1]) j++;
        if (++groups > 6) {
            snprintf(buf + used, len - used, ", ...");
            return;
        }
        used += (size_t)(j > i ? snprintf(buf + used, len - used, "%s %ld..%ld",
                                          groups > 1 ? "," : "", i, j)
                               : snprintf(buf + used, len - used, "%s %ld",
                                          groups > 1 ? "," : "", i));
        i = j;
    }
}

/* "token 0, head 1, dim 5" for flat index i */
static void name_index(char *buf, size_t len, const Layout *l, long i) {
    long idx[4] = {0};
    for (int d = l->ndim - 1; d >= 0; d--) idx[d] = i % l->shape[d], i /= l->shape[d];
    buf[0] = '\0';
    for (int d = 0; d < l->ndim; d++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s %ld", d ? ", " : "", l->names[d], idx[d]);
    }
}

/* ------------------------------------------------------------------------------------
 * values in a pattern: a constant, never-written positions, whole slices zero or NaN
 * ---------------------------------------------------------------------------------- */

/* got (n) is one value everywhere: 0, 1, NaN ... */
static int rel_constant(const RelInput *r, char *why, size_t len) {
    float c = r->got[0];
    if (r->n < 2 || !any_wrong(r)) return 0;
    for (long i = 1; i < r->n; i++)
        if (!(r->got[i] == c || (isnan(c) && isnan(r->got[i])))) return 0;
    if (isnan(c))
        snprintf(why, len, "every value is still the NaN the harness filled in: nothing was "
                 "written to the output.");
    else
        snprintf(why, len, "every value is %g: the output is filled with a constant, not "
                 "computed from the inputs (or it is overwritten at the end).", c);
    return 1;
}

/* got (n) is right except at some positions where it is NaN and exp is not: the harness's
 * fill (never written) or a NaN computed there. */
static int rel_unwritten(const RelInput *r, char *why, size_t len) {
    long missing = 0, first = -1;
    for (long i = 0; i < r->n; i++) {
        if (isnan(r->got[i])) {
            missing++;
            if (first < 0) first = i;
        } else if (!near(r, r->got[i], r->exp[i])) {
            return 0;
        }
    }
    if (missing == 0 || missing == r->n) return 0;
    char where[128];
    name_index(where, sizeof where, r->l, first);
    snprintf(why, len, "right except %ld of %ld values that are NaN (the first at %s): never "
             "written (the harness fills the output with NaN first), or computed as NaN (an "
             "exp that overflowed to inf, inf - inf, 0 / 0)?", missing, r->n, where);
    return 1;
}

/* Along one dim (any, of size >= 2): every slice of got is either right or all zero /
 * all NaN, and some zero or NaN slice should not be: a mask, a capacity limit or a loop
 * bound cutting off whole rows, columns or a band of them. */
static int rel_dead_slices(const RelInput *r, char *why, size_t len) {
    unsigned char dead[MAX_SLICES];
    for (int k = 0; k < r->l->ndim; k++) {
        Around a = around(r->l, k);
        if (a.size < 2 || a.size > MAX_SLICES) continue;
        long n_dead = 0, zeros = 0, nans = 0, bad = 0;
        for (long i = 0; i < a.size && bad == 0; i++) {
            long z = 0, q = 0, per = a.outer * a.inner;
            for (long o = 0; o < a.outer; o++)
                for (long m = 0; m < a.inner; m++) {
                    float g = r->got[at(a, o, i, m)];
                    z += g == 0.0f, q += isnan(g) != 0;
                }
            int right = slice_right(r, a, i);
            dead[i] = (z == per || q == per) && !right;
            if (dead[i]) n_dead++, zeros += z == per, nans += q == per;
            else bad += !right;
        }
        if (bad || n_dead == 0 || n_dead == a.size) continue;
        char list[160];
        list_indices(list, sizeof list, r->l->names[k], dead, a.size);
        snprintf(why, len, "right except %s (%ld of %ld), which %s: a mask, a capacity limit "
                 "or a loop bound that cuts them off?", list, n_dead, a.size,
                 nans == 0 ? "are all zero" : zeros == 0 ? "were never written (still NaN)"
                                                         : "are all zero or never written");
        return 1;
    }
    return 0;
}

/* Along the last dim (D values per row): every row is right up to its last m values,
 * m <= D / 2, and at least half the rows are wrong there: a loop that stops short. */
static int rel_tail(const RelInput *r, char *why, size_t len) {
    int k = r->l->ndim - 1;
    Around a = around(r->l, k); /* rows = a.outer, D = a.size, a.inner = 1 */
    long D = a.size, m = 0, wrong_rows = 0;
    if (D < 4) return 0;
    for (long o = 0; o < a.outer; o++) {
        long first_bad = D;
        for (long i = 0; i < D && first_bad == D; i++)
            if (!right_at(r, at(a, o, i, 0))) first_bad = i;
        if (first_bad < D) wrong_rows++;
        if (D - first_bad > m) m = D - first_bad;
    }
    if (m == 0 || m > D / 2 || wrong_rows * 2 < a.outer) return 0;
    char extra[128] = "";
    for (int w = 16; w >= 4; w /= 2)
        if (D % w == m && D > w) {
            snprintf(extra, sizeof extra, " (%ld = %ld x %d + %ld: the tail after whole "
                     "vectors of %d)", D, D / w, w, m, w);
            break;
        }
    snprintf(why, len, "right except the last %ld of the %ld values along %s, in %ld of %ld "
             "rows%s: a loop that stops before the end of the row?", m, D, r->l->names[k],
             wrong_rows, a.outer, extra);
    return 1;
}

/* ------------------------------------------------------------------------------------
 * the expected, transformed: scaled, shifted, transposed, permuted
 * ---------------------------------------------------------------------------------- */

/* "1/sqrt(dim) with dim = 16", "1/2": a simple form of |c|, or 0 when none is within 0.1%. */
static int simple_form(char *buf, size_t len, double c, const Layout *l) {
    c = fabs(c);
    for (int d = 0; d < l->ndim; d++) {
        double v = (double)l->shape[d];
        const char *nm = l->names[d];
        if (v < 2) continue;
        double forms[4] = {1 / sqrt(v), sqrt(v), 1 / v, v};
        const char *fmt[4] = {"1/sqrt(%s) with %s = %ld", "sqrt(%s) with %s = %ld",
                              "1/%s with %s = %ld", "%s with %s = %ld"};
        for (int f = 0; f < 4; f++)
            if (fabs(c - forms[f]) <= 1e-3 * forms[f]) {
                snprintf(buf, len, fmt[f], nm, nm, l->shape[d]);
                return 1;
            }
    }
    for (int q = 2; q <= 8; q++) {
        if (fabs(c - q) <= 1e-3 * q) return snprintf(buf, len, "%d", q), 1;
        if (fabs(c - 1.0 / q) <= 1e-3 / q) return snprintf(buf, len, "1/%d", q), 1;
    }
    return 0;
}

/* got ~= c exp for one constant c != 1 (c = -1: negated). A single value is always some
 * multiple of another, so with fewer than 4 values only a simple c counts. */
static int rel_scale(const RelInput *r, char *why, size_t len) {
    double ge = 0, ee = 0;
    for (long i = 0; i < r->n; i++) {
        if (!isfinite(r->got[i]) || !isfinite(r->exp[i])) return 0;
        ge += (double)r->got[i] * r->exp[i], ee += (double)r->exp[i] * r->exp[i];
    }
    if (ee <= 1e-30 || !any_wrong(r)) return 0;
    double c = ge / ee;
    if (fabs(c) < 1e-6 || fabs(c - 1) < 1e-3) return 0;
    for (long i = 0; i < r->n; i++)
        if (!near(r, r->got[i], (float)(c * r->exp[i]))) return 0;
    char form[96];
    int negated = fabs(c + 1) < 1e-3, simple = negated || simple_form(form, sizeof form, c, r->l);
    if (r->n < 4 && !simple) return 0;
    if (negated)
        snprintf(why, len, "the expected, negated: every sign is flipped (a subtraction the "
                 "wrong way round?).");
    else
        snprintf(why, len, "the expected times %.4g%s%s%s: a scale factor missing, extra or "
                 "applied twice?", c, simple ? " = " : "", simple && c < 0 ? "-" : "",
                 simple ? form : "");
    return 1;
}

/* c[i] (a.size values): the factor of slice i, got slice ~= c[i] exp slice (1 where exp is
 * zero there); 0 when some slice is no multiple of its expected one. */
static int slice_factors(const RelInput *r, Around a, double *c) {
    for (long i = 0; i < a.size; i++) {
        double ge = 0, ee = 0;
        for (long o = 0; o < a.outer; o++)
            for (long m = 0; m < a.inner; m++) {
                long x = at(a, o, i, m);
                ge += (double)r->got[x] * r->exp[x], ee += (double)r->exp[x] * r->exp[x];
            }
        c[i] = ee > 1e-30 ? ge / ee : 1.0;
        for (long o = 0; o < a.outer; o++)
            for (long m = 0; m < a.inner; m++) {
                long x = at(a, o, i, m);
                if (!near(r, r->got[x], (float)(c[i] * r->exp[x]))) return 0;
            }
    }
    return 1;
}

/* Slices with factors of their own: along each dim, then the rows of the last dim (all
 * dims but the last flattened: a token's head, say). Per row, a normalisation by the wrong
 * sum or norm; per channel of the last dim, a weight left out or applied twice. */
static int rel_slice_scale(const RelInput *r, char *why, size_t len) {
    static double c[MAX_SLICES];
    int nd = r->l->ndim;
    if (!any_wrong(r)) return 0;
    for (int k = 0; k <= nd; k++) {
        if (k == nd && nd < 3) break; /* the rows of a 2-D layout are its dim 0 */
        long D = r->l->shape[nd - 1];
        Around a = k < nd ? around(r->l, k) : (Around){1, r->n / D, D};
        if (a.size < 2 || a.size > MAX_SLICES || a.outer * a.inner < 2) continue;
        if (!slice_factors(r, a, c)) continue;
        double lo = c[0], hi = c[0];
        for (long i = 1; i < a.size; i++) lo = fmin(lo, c[i]), hi = fmax(hi, c[i]);
        if (hi - lo <= 1e-3 * fmax(fabs(hi), fabs(lo))) continue; /* one factor: rel_scale's */
        const char *nm = k < nd ? r->l->names[k] : "row";
        char first[96];
        int used = snprintf(first, sizeof first, "%s 0: %.4g, 1: %.4g", nm, c[0], c[1]);
        if (a.size > 2 && used > 0 && (size_t)used < sizeof first)
            snprintf(first + used, sizeof first - (size_t)used, ", 2: %.4g%s", c[2],
                     a.size > 3 ? " ..." : "");
        snprintf(why, len, "each %s%s is the expected times a factor of its own (%s; from %.4g "
                 "to %.4g): %s", nm, k < nd ? "" : " along the last dim", first, lo, hi,
                 k == nd - 1 ? "a per-channel weight left out, or applied twice?"
                             : "a normalisation that divides by the wrong sum or norm?");
        return 1;
    }
    return 0;
}

/* Along a dim of size >= 3: slice i of got is slice i - s of exp (s = +1 or -1) for every i
 * that has one: an off-by-one in a position or an index. */
static int rel_shift(const RelInput *r, char *why, size_t len) {
    if (!any_wrong(r)) return 0;
    for (int k = 0; k < r->l->ndim; k++) {
        Around a = around(r->l, k);
        if (a.size < 3) continue;
        for (int s = 1; s >= -1; s -= 2) {
            int holds = 1;
            for (long i = s > 0 ? 1 : 0; i < a.size - (s < 0) && holds; i++)
                holds = slice_near(r, a, i, r->exp, i - s);
            if (!holds) continue;
            const char *nm = r->l->names[k];
            snprintf(why, len, "%s i holds the expected of %s i %s 1: shifted by one %s, an "
                     "off-by-one in a position or an index?", nm, nm, s > 0 ? "-" : "+", nm);
            return 1;
        }
    }
    return 0;
}

/* The last two dims (a, b) swapped: got read as [outer][b][a] is exp [outer][a][b]; for a
 * square a = b, the transpose. An index i * b + j written as j * a + i. */
static int rel_transposed(const RelInput *r, char *why, size_t len) {
    int nd = r->l->ndim;
    if (nd < 2 || !any_wrong(r)) return 0;
    long A = r->l->shape[nd - 2], B = r->l->shape[nd - 1], outer = r->n / (A * B);
    if (A < 2 || B < 2) return 0;
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < A; i++)
            for (long j = 0; j < B; j++)
                if (!near(r, r->got[o * A * B + j * A + i], r->exp[o * A * B + i * B + j]))
                    return 0;
    const char *na = r->l->names[nd - 2], *nb = r->l->names[nd - 1];
    if (A == B)
        snprintf(why, len, "the transpose of the expected (%s and %s swapped): an index "
                 "i * %ld + j written as j * %ld + i?", na, nb, B, A);
    else
        snprintf(why, len, "the expected with %s and %s swapped (%s, %s read as [%ld, %ld] "
                 "but written as [%ld, %ld]): an index i * %ld + j written as j * %ld + i?", na,
                 nb, na, nb, A, B, B, A, B, A);
    return 1;
}

/* Along a dim: every slice of got is some slice of exp, not always its own (rows or
 * experts in the wrong order, or one copied to another). */
static int rel_permuted(const RelInput *r, char *why, size_t len) {
    if (!any_wrong(r)) return 0;
    for (int k = 0; k < r->l->ndim; k++) {
        Around a = around(r->l, k);
        long per = a.outer * a.inner;
        if (a.size < 2 || per < 2 || (double)a.size * r->n > 5e7) continue;
        long moved = 0, from[3] = {0}, to[3] = {0};
        int holds = 1;
        for (long i = 0; i < a.size && holds; i++) {
            if (slice_near(r, a, i, r->exp, i)) continue;
            long j = 0;
            while (j < a.size && (j == i || !slice_near(r, a, i, r->exp, j))) j++;
            if (j == a.size) holds = 0;
            else if (moved < 3) from[moved] = j, to[moved++] = i;
            else moved++;
        }
        if (!holds || moved == 0) continue;
        const char *nm = r->l->names[k];
        char pairs[160] = "";
        for (long p = 0; p < moved && p < 3; p++) {
            size_t used = strlen(pairs);
            snprintf(pairs + used, sizeof pairs - used, "%s%s %ld has %s %ld's", p ? ", " : "",
                     nm, to[p], nm, from[p]);
        }
        snprintf(why, len, "every %s holds the expected values of some %s, but %ld of them the "
                 "wrong one's (%s%s): %ss mixed up, an index into the wrong row?", nm, nm,
                 moved, pairs, moved > 3 ? ", ..." : "", nm);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * right somewhere else: another case's answer, right for some slices only
 * ---------------------------------------------------------------------------------- */

/* got is the expected output of another case of the same test (a parameter not read, a
 * value hard-coded from that case). */
static int rel_other_case(const RelInput *r, char *why, size_t len) {
    if (!any_wrong(r)) return 0;
    for (int c = 0; c < r->n_others; c++) {
        long i = 0;
        while (i < r->n && near(r, r->got[i], r->others[c].exp[i])) i++;
        if (i < r->n) continue;
        snprintf(why, len, "the expected output of case %s (\"%s\"), not of this one: a "
                 "parameter of this case that is not read, or a value written for that one?",
                 r->others[c].case_id, r->others[c].title);
        return 1;
    }
    return 0;
}

/* Every value within 100 times the tolerance of its expected one, some outside it, and
 * every error under 1% of the largest |exp| (near zero, 100 atol may be all of a value): a
 * small systematic difference (where eps goes, a float where a double is needed, a small
 * term left out) rather than a wrong formula. */
static int rel_nearly(const RelInput *r, char *why, size_t len) {
    double worst = 0, err = 0, scale = 0; /* worst: the largest error in tolerances */
    if (!any_wrong(r)) return 0;
    for (long i = 0; i < r->n; i++) {
        if (!within(r, r->got[i], r->exp[i], 100.0f)) return 0;
        double tol = r->atol + r->rtol * fabsf(r->exp[i]);
        if (tol > 0) worst = fmax(worst, fabsf(r->got[i] - r->exp[i]) / tol);
        err = fmax(err, fabsf(r->got[i] - r->exp[i])), scale = fmax(scale, fabsf(r->exp[i]));
    }
    if (err > 1e-2 * scale) return 0;
    snprintf(why, len, "nearly right: every value is within %.0f times the tolerance (the worst "
             "%.1f times): a small systematic difference (where eps goes, a float where a "
             "double is needed, a small term left out of a sum) rather than a wrong formula?", 100.0, worst);
    return 1;
}

/* Along a dim other than the last: some slices right, the others wrong. Says which, so
 * the student can ask what differs between them (a position, a cache length, a mask). */
static int rel_right_slices(const RelInput *r, char *why, size_t len) {
    unsigned char ok[MAX_SLICES], bad[MAX_SLICES];
    for (int k = 0; k < r->l->ndim - 1; k++) {
        Around a = around(r->l, k);
        long n_ok = 0;
        if (a.size < 2 || a.size > MAX_SLICES) continue;
        for (long i = 0; i < a.size; i++) {
            ok[i] = (unsigned char)slice_right(r, a, i);
            bad[i] = !ok[i];
            n_ok += ok[i];
        }
        if (n_ok == 0 || n_ok == a.size) continue;
        char good_list[160], bad_list[160];
        list_indices(good_list, sizeof good_list, r->l->names[k], ok, a.size);
        list_indices(bad_list, sizeof bad_list, r->l->names[k], bad, a.size);
        snprintf(why, len, "right at %s, wrong at %s: what differs between them in your "
                 "code (a position, an index, how much of a cache is read, a mask)?", good_list,
                 bad_list);
        return 1;
    }
    return 0;
}

const Relation RELATIONS[] = {
    {"constant", rel_constant},         {"tail", rel_tail},
    {"dead_slices", rel_dead_slices},   {"unwritten", rel_unwritten},
    {"scale", rel_scale},               {"slice_scale", rel_slice_scale},
    {"shift", rel_shift},               {"transposed", rel_transposed},
    {"permuted", rel_permuted},         {"other_case", rel_other_case},
    {"nearly", rel_nearly},             {"right_slices", rel_right_slices},
    {0, 0},
};

const Relation *relation_find(const RelInput *r, char *why, size_t len) {
    if (r->n < 1) return NULL;
    for (const Relation *rel = RELATIONS; rel->name; rel++)
        if (rel->holds(r, why, len)) return rel;
    return NULL;
}
