/* Lesson 11 tests: bytes_to_unicode (the 256 code points), bpe_word (pre-split pieces,
 * merges by rank), bpe_split_added (spans), bpe_encode (text with added tokens) and
 * bpe_decode (ids back to bytes). Ids, bytes and spans are compared exactly, as float32
 * (exact for them) so that expect_close names the mistake an output matches; PAD marks
 * the places after the expected end (harness/pytorch/export_bpe.py). */
#include <stdio.h>
#include <string.h>

#include "bpe.h"
#include "check.h"

#define PAD (-9)

/* ------------------------------------------------------------------------------------
 * reading the case
 * ---------------------------------------------------------------------------------- */

/* "<name>.offsets" (n + 1) and "<name>.bytes": n NUL-terminated strings owned by ctx */
static const char *const *fx_strings(TestCtx *ctx, const char *name, int n) {
    char key[64];
    snprintf(key, sizeof key, "%s.offsets", name);
    const int *off = fx_ints(ctx, key, n + 1);
    snprintf(key, sizeof key, "%s.bytes", name);
    const int *bytes = fx_ints(ctx, key, off[n]);
    const char **s = test_alloc(ctx, sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        char *p = test_alloc(ctx, (size_t)(off[i + 1] - off[i] + 1));
        for (int j = off[i]; j < off[i + 1]; j++) p[j - off[i]] = (char)bytes[j];
        p[off[i + 1] - off[i]] = '\0';
        s[i] = p;
    }
    return s;
}

static BpeVocab fx_vocab(TestCtx *ctx) {
    BpeVocab v;
    v.n_vocab = fx_int(ctx, "n_vocab");
    v.n_merges = fx_int(ctx, "n_merges");
    v.n_added = fx_int(ctx, "n_added");
    v.token = fx_strings(ctx, "vocab", v.n_vocab);
    v.merges = fx_ints(ctx, "merges", 3L * v.n_merges);
    v.added = fx_strings(ctx, "added", v.n_added);
    v.added_id = fx_ints(ctx, "added.ids", v.n_added);
    return v;
}

/* The case's bytes "text" (len) as chars owned by ctx. */
static char *fx_text(TestCtx *ctx, int len) {
    const int *t = fx_ints(ctx, "text", len);
    char *s = test_alloc(ctx, (size_t)len + 1);
    for (int i = 0; i < len; i++) s[i] = (char)t[i];
    return s;
}

/* ------------------------------------------------------------------------------------
 * judging
 * ---------------------------------------------------------------------------------- */

/* got[0 .. n) against <output> (cap values, PAD after its end). */
static TestStatus expect_exact(TestCtx *ctx, const char *output, const int *got, int n, int cap,
                               const char *unit, const char *what) {
    if (n < 0 || n > cap)
        return fail(ctx, "%s returned %d: it must be between 0 and %d", what, n, cap);
    float *f = out_buffer(ctx, cap);
    for (int i = 0; i < cap; i++) f[i] = i < n ? (float)got[i] : (float)PAD;
    Layout l = {1, {unit}, {cap}};
    TestStatus st = expect_close(ctx, output, f, &l, 0.0f, 0.0f, what);
    if (!ctx_diagnose(ctx, st)) return st;
    const float *want = want_tensor(ctx, output, cap);
    int m = 0;
    while (m < cap && want[m] != (float)PAD) m++;
    if (m != n)
        printf("  %s gave %d %ss, the expected output has %d (%d marks \"past the end\")\n",
               what, n, unit, m, PAD);
    return st;
}

/* ------------------------------------------------------------------------------------
 * the tests
 * ---------------------------------------------------------------------------------- */

static TestStatus test_bytes_to_unicode(TestCtx *ctx) {
    int *cp = out_ints(ctx, 256);
    student_begin(ctx);
    bytes_to_unicode(cp);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "cp", cp, 256);
    return expect_exact(ctx, "cp", cp, 256, 256, "byte", "bytes_to_unicode");
}

static TestStatus test_bpe_word(TestCtx *ctx) {
    BpeVocab v = fx_vocab(ctx);
    int n_pieces = fx_int(ctx, "n_pieces"), cap = fx_int(ctx, "cap");
    const char *const *pieces = fx_strings(ctx, "pieces", n_pieces);
    const int *off = fx_ints(ctx, "pieces.offsets", n_pieces + 1);
    int *ids = out_ints(ctx, cap), n = 0, bad[2] = {-1, 0}; /* a piece and what it returned */
    student_begin(ctx);
    for (int p = 0; p < n_pieces && bad[0] < 0; p++) {
        int len = off[p + 1] - off[p], got = bpe_word(&v, (const unsigned char *)pieces[p], len, ids + n);
        if (got < 0 || got > len) bad[0] = p, bad[1] = got; /* ids + n has room for len only */
        else n += got;
    }
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "n", &n, 1);
    observe_ints(ctx, "bad", bad, 2);
    observe_ints(ctx, "ids", ids, cap);
    if (bad[0] >= 0)
        return fail(ctx, "bpe_word returned %d for piece %d, of length %d: a piece gives 1 to its "
                    "length ids", bad[1], bad[0], off[bad[0] + 1] - off[bad[0]]);
    return expect_exact(ctx, "ids", ids, n, cap, "id", "bpe_word, piece after piece");
}

static TestStatus test_bpe_split_added(TestCtx *ctx) {
    BpeVocab v = fx_vocab(ctx);
    int len = fx_int(ctx, "len"), cap = fx_int(ctx, "cap");
    const char *text = fx_text(ctx, len);
    int *spans = out_ints(ctx, cap);
    student_begin(ctx);
    int n = bpe_split_added(&v, text, len, spans);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "n", &n, 1);
    observe_ints(ctx, "spans", spans, cap);
    return expect_exact(ctx, "spans", spans, n < 0 || 3 * n > cap ? -1 : 3 * n, cap,
                        "span value", "bpe_split_added, spans (start, length, id)");
}

static TestStatus test_bpe_encode(TestCtx *ctx) {
    BpeVocab v = fx_vocab(ctx);
    int len = fx_int(ctx, "len"), cap = fx_int(ctx, "cap");
    const char *text = fx_text(ctx, len);
    int *ids = out_ints(ctx, cap);
    student_begin(ctx);
    int n = bpe_encode(&v, text, len, ids);
    if (student_todo(ctx)) return TEST_TODO;
    observe_ints(ctx, "n", &n, 1);
    observe_ints(ctx, "ids", ids, cap);
    return expect_exact(ctx, "ids", ids, n, cap, "id", "bpe_encode");
}

static TestStatus test_bpe_decode(TestCtx *ctx) {
    BpeVocab v = fx_vocab(ctx);
    int n_ids = fx_int(ctx, "n_ids"), cap = fx_int(ctx, "cap");
    const int *ids = fx_ints(ctx, "ids", n_ids);
    char *out = test_alloc(ctx, (size_t)cap + 1);
    memset(out, 0, (size_t)cap + 1);
    student_begin(ctx);
    int n = bpe_decode(&v, ids, n_ids, out);
    if (student_todo(ctx)) return TEST_TODO;
    int *bytes = out_ints(ctx, cap);
    for (int i = 0; i < cap; i++) bytes[i] = (unsigned char)out[i];
    observe_ints(ctx, "n", &n, 1);
    observe_ints(ctx, "text", bytes, cap);
    return expect_exact(ctx, "text", bytes, n, cap, "byte", "bpe_decode");
}

static const TestDef TESTS[] = {
    {"bytes_to_unicode", "bytemap_", test_bytes_to_unicode},
    {"bpe_word", "word_", test_bpe_word},
    {"bpe_split_added", "added_", test_bpe_split_added},
    {"bpe_encode", "encode_", test_bpe_encode},
    {"bpe_decode", "decode_", test_bpe_decode},
    {0},
};

const LessonDef LESSON_11 = {"11", "tokenizer", "bpe.c", "", TESTS};
