/*
 * selftest_safetensors.c: tests for the JSON parser and the safetensors reader.
 *
 *     gcc -std=c11 -Wall -Wextra -Werror -O2 -Iharness/src harness/src/json.c \
 *         harness/src/safetensors.c harness/test/selftest_safetensors.c -o st_selftest
 *
 * Writes valid and malformed files into a fresh mkdtemp directory (removed at the end),
 * prints one line per check and a last line "N passed, N failed"; exits 1 on a failure.
 * Inputs are handed to the parsers in exact-size heap buffers, so that under
 * AddressSanitizer any read past the end is caught.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "safetensors.h"

typedef struct {
    int passed, failed;
    char dir[512]; /* the temporary directory */
} Suite;

/* ------------------------------------------------------------------------------------
 * reporting
 * ---------------------------------------------------------------------------------- */

static int check(Suite *s, int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One line per check; on failure the detail says what was seen. Returns ok. */
static int check(Suite *s, int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        s->passed++;
        printf("ok    %s\n", name);
        return 1;
    }
    s->failed++;
    printf("FAIL  %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 0;
}

/* ------------------------------------------------------------------------------------
 * JSON helpers
 * ---------------------------------------------------------------------------------- */

/* Parses from an exact-size heap copy (no terminator to lean on). */
static JsonValue *parse_n(const char *text, size_t len, char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, text, len);
    JsonValue *v = json_parse(copy, len, err, errlen);
    free(copy);
    return v;
}

static JsonValue *parse(const char *text, char *err, size_t errlen)
{
    return parse_n(text, strlen(text), err, errlen);
}

static void json_rejects(Suite *s, const char *name, const char *text, const char *expect)
{
    char err[256];
    JsonValue *v = parse(text, err, sizeof err);
    check(s, !v && strstr(err, expect) && strncmp(err, "invalid JSON at byte ", 21) == 0, name,
          "%s, error \"%s\", wanted \"%s\"", v ? "accepted" : "rejected", err, expect);
    json_free(v);
}

/* A string document must decode to exactly the bytes want[0 .. n). */
static void json_string_is(Suite *s, const char *name, const char *text, const char *want,
                           size_t n)
{
    char err[256];
    JsonValue *v = parse(text, err, sizeof err);
    int ok = v && v->type == JSON_STRING && v->length == n && memcmp(v->string, want, n) == 0 &&
             v->string[n] == '\0';
    char got[128] = "";
    if (v && v->type == JSON_STRING)
        json_printable(got, sizeof got, v->string, v->length);
    check(s, ok, name, "decoded to \"%s\" (%zu bytes, wanted %zu); error \"%s\"", got,
          v ? v->length : 0, n, err);
    json_free(v);
}

static void json_number_is(Suite *s, const char *text, double want, int is_int, int64_t iwant)
{
    char err[256], name[96];
    snprintf(name, sizeof name, "json: number %s", text);
    JsonValue *v = parse(text, err, sizeof err);
    double d = 0;
    int64_t i = 0;
    int ok = v && json_number(v, &d) == 0 && d == want && signbit(d) == signbit(want) &&
             (json_int64(v, &i) == 0) == is_int && (!is_int || i == iwant);
    check(s, ok, name, "got %.17g (is_integer %d, %lld); error \"%s\"", d,
          v ? v->is_integer : 0, (long long)i, err);
    json_free(v);
}

/* ------------------------------------------------------------------------------------
 * JSON tests
 * ---------------------------------------------------------------------------------- */

static void test_json_literals_and_access(Suite *s)
{
    char err[256];
    JsonValue *v = parse(" {\"b\": [true, false, null], \"a\": \"x\", \"n\": 4.0} ", err,
                         sizeof err);
    const JsonValue *b = json_get(v, "b");
    int t = -1, f = -1;
    int ok = v && v->count == 3 && strcmp(v->items[0].key, "b") == 0 &&
             strcmp(v->items[1].key, "a") == 0 && json_len(b) == 3 &&
             json_bool(json_at(b, 0), &t) == 0 && t == 1 &&
             json_bool(json_at(b, 1), &f) == 0 && f == 0 && json_at(b, 2)->type == JSON_NULL &&
             json_at(b, 3) == NULL;
    check(s, ok, "json: literals, document order, json_get/json_at", "%s", v ? "wrong tree" : err);
    int64_t i;
    double d;
    ok = json_get(v, "missing") == NULL && json_get(b, "a") == NULL &&
         strcmp(json_string(json_get(v, "a")), "x") == 0 && json_string(b) == NULL &&
         json_int64(json_get(v, "n"), &i) < 0 && json_number(json_get(v, "n"), &d) == 0 &&
         d == 4.0 && json_number(json_get(v, "a"), &d) < 0 && json_len(json_get(v, "a")) == 0 &&
         json_get(v, "b")->offset == 2 && json_int64(NULL, &i) < 0;
    check(s, ok, "json: helpers reject wrong types, 4.0 is not an int64, offsets", "%s",
          "a helper returned the wrong thing");
    json_free(v);
}

static void test_json_strings(Suite *s)
{
    json_string_is(s, "json: simple escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
                   "\"\\/\b\f\n\r\t", 8);
    json_string_is(s, "json: \\u00e9 \\u20AC to UTF-8", "\"\\u00e9\\u20AC\"",
                   "\xc3\xa9\xe2\x82\xac", 5);
    json_string_is(s, "json: surrogate pair to 4-byte UTF-8", "\"\\ud83d\\uDE00\"",
                   "\xf0\x9f\x98\x80", 4);
    json_string_is(s, "json: \\u0000 kept, length counts it", "\"a\\u0000b\"", "a\0b", 3);
    json_string_is(s, "json: raw UTF-8 passes through", "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"",
                   "h\xc3\xa9llo \xf0\x9f\x98\x80", 11);
    json_string_is(s, "json: empty string", "\"\"", "", 0);
    json_rejects(s, "json: lone high surrogate", "\"\\ud83d\"", "high surrogate");
    json_rejects(s, "json: high surrogate then text", "\"\\ud83dxxxxxx\"", "high surrogate");
    json_rejects(s, "json: two high surrogates", "\"\\ud83d\\ud83d\"", "high surrogate");
    json_rejects(s, "json: lone low surrogate", "\"\\ude00\"", "lone low surrogate");
    json_rejects(s, "json: bad hex in \\u", "\"\\u12g4\"", "4 hex digits");
    json_rejects(s, "json: \\u cut by the closing quote", "\"\\u12\"", "4 hex digits");
    json_rejects(s, "json: invalid escape \\x", "\"\\x41\"", "invalid escape");
    json_rejects(s, "json: raw control character", "\"a\x01\"", "raw control character 0x01");
    json_rejects(s, "json: raw newline in a string", "\"a\nb\"", "raw control character 0x0a");
    json_rejects(s, "json: unterminated string", "\"abc", "unterminated string");
    json_rejects(s, "json: backslash at the end", "\"abc\\", "unterminated string");
    json_rejects(s, "json: overlong UTF-8", "\"\xc0\xaf\"", "invalid UTF-8");
    json_rejects(s, "json: UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8");
    json_rejects(s, "json: UTF-8 past U+10FFFF", "\"\xf5\x80\x80\x80\"", "invalid UTF-8");
    json_rejects(s, "json: truncated UTF-8", "\"\xe2\x82\"", "invalid UTF-8");
    json_rejects(s, "json: stray continuation byte", "\"\x80\"", "invalid UTF-8");
}

static void test_json_numbers(Suite *s)
{
    json_number_is(s, "0", 0.0, 1, 0);
    json_number_is(s, "-0", -0.0, 1, 0);
    json_number_is(s, "-12", -12.0, 1, -12);
    json_number_is(s, "1.5e3", 1500.0, 0, 0);
    json_number_is(s, "1E-2", 0.01, 0, 0);
    json_number_is(s, "2.5E+2", 250.0, 0, 0);
    json_number_is(s, "9007199254740993", 9007199254740992.0, 1, 9007199254740993LL);
    json_number_is(s, "9223372036854775807", 9223372036854775807.0, 1, INT64_MAX);
    json_number_is(s, "-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN);
    json_number_is(s, "9223372036854775808", 9223372036854775808.0, 0, 0);
    json_number_is(s, "1e-400", 0.0, 0, 0);
    json_rejects(s, "json: leading zero 01", "01", "leading zero");
    json_rejects(s, "json: 1.", "1.", "digit after '.'");
    json_rejects(s, "json: .5", ".5", "expected a value");
    json_rejects(s, "json: +1", "+1", "expected a value");
    json_rejects(s, "json: lone minus", "-", "expected a digit");
    json_rejects(s, "json: 1e", "[1e]", "digit in the exponent");
    json_rejects(s, "json: 1e+", "1e+", "digit in the exponent");
    json_rejects(s, "json: 0x10", "0x10", "after the value");
    json_rejects(s, "json: NaN", "NaN", "expected a value");
    json_rejects(s, "json: -Infinity", "-Infinity", "expected a digit");
    json_rejects(s, "json: 1e400 overflows a double", "1e400", "out of range");
}

static void test_json_nesting(Suite *s)
{
    char buf[2 * 200001], err[256];
    for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
        memset(buf, '[', (size_t)depth);
        memset(buf + depth, ']', (size_t)depth);
        JsonValue *v = parse_n(buf, 2 * (size_t)depth, err, sizeof err);
        int want_ok = depth <= JSON_MAX_DEPTH;
        check(s, (v != NULL) == want_ok && (want_ok || strstr(err, "nested deeper than 64")),
              depth == JSON_MAX_DEPTH ? "json: 64 nested arrays accepted"
                                      : "json: 65 nested arrays rejected",
              "%s", v ? "accepted" : err);
        json_free(v);
    }
    memset(buf, '[', 200000); /* far deeper than any stack: must fail, not crash */
    JsonValue *v = parse_n(buf, 200000, err, sizeof err);
    check(s, !v && strstr(err, "nested deeper"), "json: 200000 '[' rejected, no stack overflow",
          "%s", v ? "accepted" : err);
    json_free(v);
    v = parse("{\"a\":[{\"b\":[[{}]]}]}", err, sizeof err);
    check(s, v && json_len(json_at(json_get(json_at(json_get(v, "a"), 0), "b"), 0)) == 1,
          "json: mixed nesting", "%s", v ? "wrong tree" : err);
    json_free(v);
}

static void test_json_structure(Suite *s)
{
    char err[256];
    json_rejects(s, "json: empty input", "", "expected a value, found the end of the input");
    json_rejects(s, "json: only whitespace", " \n\t ", "expected a value");
    json_rejects(s, "json: trailing garbage", "{} x", "at byte 3: unexpected 'x' after the value");
    json_rejects(s, "json: two values", "1 2", "after the value");
    json_rejects(s, "json: extra brace", "{}}", "after the value");
    json_rejects(s, "json: trailing comma in array", "[1,]", "expected a value, found ']'");
    json_rejects(s, "json: trailing comma in object", "{\"a\":1,}", "expected a string key");
    json_rejects(s, "json: missing comma", "[1 2]", "expected ',' or ']'");
    json_rejects(s, "json: missing colon (names the byte)", "{\"a\" 1}",
                 "at byte 5: expected ':' after an object key, found '1'");
    json_rejects(s, "json: non-string key", "{1:2}", "expected a string key");
    json_rejects(s, "json: single quotes", "{'a':1}", "expected a string key");
    json_rejects(s, "json: unclosed array", "[1", "expected ',' or ']' in an array, found the end");
    json_rejects(s, "json: unclosed object", "{\"a\":", "expected a value");
    json_rejects(s, "json: bad literal", "tru", "invalid literal");
    json_rejects(s, "json: UTF-8 BOM", "\xef\xbb\xbf{}", "byte 0xef");
    json_rejects(s, "json: duplicate key", "{\"a\":1,\"b\":2,\"a\":3}",
                 "at byte 13: duplicate key \"a\"");
    json_rejects(s, "json: duplicate key in a large object",
                 "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
                 "\"k8\":8,\"k9\":9,\"k10\":0,\"k11\":1,\"k12\":2,\"k13\":3,\"k14\":4,"
                 "\"k15\":5,\"k16\":6,\"k7\":7,\"k18\":8}",
                 "duplicate key \"k7\"");
    JsonValue *v = parse_n("123", 2, err, sizeof err); /* reads only len bytes */
    check(s, v && v->is_integer && v->integer == 12, "json: stops at len (\"123\", len 2 -> 12)",
          "%s", v ? "wrong value" : err);
    json_free(v);
    v = parse_n("[1]", 2, err, sizeof err);
    check(s, !v, "json: \"[1]\" with len 2 is unterminated", "accepted");
    json_free(v);
    v = json_parse(NULL, 0, err, sizeof err);
    check(s, !v && strstr(err, "expected a value"), "json: NULL text is empty input", "%s", err);
    json_free(v);
}

static void test_json_large(Suite *s)
{
    size_t n = 20000, cap = n * 24 + 16, len = 0;
    char *buf = malloc(cap), err[256];
    if (!buf)
        abort();
    len += (size_t)snprintf(buf + len, cap - len, "{");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"key%zu\":[%zu]", i ? "," : "", i, i);
    len += (size_t)snprintf(buf + len, cap - len, "}");
    JsonValue *v = parse_n(buf, len, err, sizeof err);
    int64_t last = -1;
    check(s, v && v->count == n && json_int64(json_at(json_get(v, "key19999"), 0), &last) == 0 &&
                 last == 19999,
          "json: object with 20000 members (sorted duplicate check)", "%s", v ? "wrong" : err);
    json_free(v);
    free(buf);
}

static void test_json_printable(Suite *s)
{
    char buf[16];
    json_printable(buf, sizeof buf, "a\nb'c", 5);
    int ok = strcmp(buf, "a\\x0ab\\x27c") == 0;
    json_printable(buf, sizeof buf, "abcdefghijklmnopqrstuvwxyz", 26);
    ok = ok && strcmp(buf, "abcdefghijkl...") == 0;
    json_printable(buf, sizeof buf, "abcdefghij\xc3\xa9\xc3\xa9", 14);
    ok = ok && strcmp(buf, "abcdefghij\xc3\xa9...") == 0; /* cut between characters */
    json_printable(buf, 2, "abc", 3);
    ok = ok && buf[0] == '\0';
    check(s, ok, "json: json_printable escapes and cuts at UTF-8 boundaries", "got \"%s\"", buf);
}

/* ------------------------------------------------------------------------------------
 * building safetensors files
 * ---------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n;
} Bytes;

/* 8-byte little-endian length, header padded with spaces so that the data section starts
 * at a multiple of 8 (as real writers do), then the data. */
static Bytes st_build(const char *header, const void *data, size_t dlen)
{
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    Bytes b = {malloc(8 + padded + dlen + 1), 8 + padded + dlen};
    if (!b.p)
        abort();
    for (int i = 0; i < 8; i++)
        b.p[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b.p + 8, header, hlen);
    memset(b.p + 8 + hlen, ' ', padded - hlen);
    if (dlen)
        memcpy(b.p + 8 + padded, data, dlen);
    return b;
}

static Bytes raw_bytes(const void *p, size_t n)
{
    Bytes b = {malloc(n + 1), n};
    if (!b.p)
        abort();
    if (n)
        memcpy(b.p, p, n);
    return b;
}

static void set_header_length(Bytes *b, uint64_t hlen)
{
    for (int i = 0; i < 8 && i < (int)b->n; i++)
        b->p[i] = (unsigned char)(hlen >> (8 * i));
}

static int write_file(const char *path, const Bytes *b)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = b->n ? fwrite(b->p, 1, b->n, f) : 0;
    return (fclose(f) == 0 && w == b->n) ? 0 : -1;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(p, u, 4);
}

/* ------------------------------------------------------------------------------------
 * malformed files: each must be rejected, from disk and from memory, with a message that
 * starts with the file name, is one line, and contains the expected words
 * ---------------------------------------------------------------------------------- */

static void expect_reject(Suite *s, const char *name, Bytes b, const char *expect)
{
    char path[600], err[512], merr[512], label[96];
    SafeTensors st;
    snprintf(path, sizeof path, "%s/bad.safetensors", s->dir);
    snprintf(label, sizeof label, "st: rejects %s", name);
    if (write_file(path, &b) < 0) {
        check(s, 0, label, "cannot write %s", path);
        free(b.p);
        return;
    }
    int rc = st_open(&st, path, err, sizeof err);
    int zeroed = st.n_tensors == 0 && st.tensors == NULL && st.bytes == NULL && st.path == NULL;
    st_close(&st);
    unlink(path);
    unsigned char *exact = malloc(b.n ? b.n : 1); /* exact size, for ASan */
    if (!exact)
        abort();
    memcpy(exact, b.p, b.n);
    int mrc = st_open_memory(&st, exact, b.n, "mem", merr, sizeof merr);
    st_close(&st);
    free(exact);
    free(b.p);
    int named = strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':';
    check(s, rc == -1 && mrc == -1 && zeroed && named && strstr(err, expect) &&
                 !strchr(err, '\n') && strstr(merr, expect) && strncmp(merr, "mem: ", 5) == 0,
          label, "rc %d/%d, error \"%s\", wanted \"%s\"", rc, mrc, err, expect);
}

static Bytes one_tensor(const char *entry, size_t dlen)
{
    char header[1024];
    unsigned char data[256] = {0};
    snprintf(header, sizeof header, "{\"x\":%s}", entry);
    return st_build(header, data, dlen);
}

static void test_st_rejects_framing(Suite *s)
{
    expect_reject(s, "an empty file", raw_bytes("", 0), "file is 0 bytes, shorter than the 8");
    expect_reject(s, "a 5-byte file", raw_bytes("\x10\0\0\0\0", 5), "file is 5 bytes");
    Bytes b = st_build("{}", NULL, 0);
    set_header_length(&b, 200000000);
    expect_reject(s, "a 200 MB header length", b, "header length 200000000 exceeds the 100000000");
    b = st_build("{}", NULL, 0);
    set_header_length(&b, UINT64_MAX);
    expect_reject(s, "header length 2^64-1", b, "exceeds the 100000000-byte limit");
    b = st_build("{\"x\":{}}", NULL, 0);
    set_header_length(&b, 100);
    expect_reject(s, "a header running past the file", b,
                  "header length 100 runs past the end of the file (16 bytes)");
    b = raw_bytes("\0\0\0\0\0\0\0\0", 8);
    expect_reject(s, "a zero-length header", b, "expected a value, found the end");
    expect_reject(s, "invalid JSON", st_build("{\"x\": {\"dtype\": \"F32\",}}", NULL, 0),
                  "header (JSON from file byte 8): invalid JSON at byte 22: expected a string key");
    expect_reject(s, "a header that is an array", st_build("[1, 2]", NULL, 0),
                  "header is a JSON array, not an object");
    expect_reject(s, "trailing garbage after the JSON", st_build("{} xyz", NULL, 0),
                  "unexpected 'x' after the value");
    expect_reject(s, "a duplicate tensor name",
                  st_build("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                           "\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
                           "12345678", 8),
                  "duplicate key \"w\"");
    expect_reject(s, "invalid UTF-8 in the header", st_build("{\"\xff\":1}", NULL, 0),
                  "invalid UTF-8 byte 0xff");
    expect_reject(s, "a raw control character in a name", st_build("{\"a\x01\":1}", NULL, 0),
                  "raw control character");
}

static void test_st_rejects_entries(Suite *s)
{
    expect_reject(s, "an entry that is not an object", one_tensor("[1]", 0),
                  "tensor 'x' is a JSON array, not an object");
    expect_reject(s, "a missing dtype", one_tensor("{\"shape\":[1],\"data_offsets\":[0,4]}", 4),
                  "tensor 'x' has no \"dtype\"");
    expect_reject(s, "a dtype that is not a string",
                  one_tensor("{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}", 4),
                  "tensor 'x' dtype is a JSON number, not a string");
    expect_reject(s, "an unknown dtype",
                  one_tensor("{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}", 4),
                  "tensor 'x' has unknown dtype \"Q4_K\"");
    expect_reject(s, "a lower-case dtype",
                  one_tensor("{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4),
                  "unknown dtype \"f32\"");
    expect_reject(s, "a missing shape", one_tensor("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", 4),
                  "tensor 'x' has no \"shape\"");
    expect_reject(s, "a shape that is not an array",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]}", 16),
                  "tensor 'x' shape is a JSON string, not an array");
    expect_reject(s, "a non-integer dim",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}", 8),
                  "tensor 'x' shape[0] is not an integer");
    expect_reject(s, "a negative dim",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[4,-3],\"data_offsets\":[0,0]}", 0),
                  "tensor 'x' shape[1] is negative (-3)");
    expect_reject(s, "9 dimensions",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                             "\"data_offsets\":[0,4]}", 4),
                  "shape has 9 dimensions (at most 8 supported)");
    expect_reject(s, "a shape whose size overflows",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
                             "\"data_offsets\":[0,0]}", 0),
                  "shape [4611686018427387904, 4] is too large");
    expect_reject(s, "a dim beyond int64",
                  one_tensor("{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
                             "\"data_offsets\":[0,0]}", 0),
                  "shape[0] is not an integer");
}

static void test_st_rejects_offsets(Suite *s)
{
    expect_reject(s, "missing data_offsets", one_tensor("{\"dtype\":\"F32\",\"shape\":[1]}", 4),
                  "tensor 'x' has no \"data_offsets\"");
    expect_reject(s, "three data_offsets",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}", 8),
                  "data_offsets is not an array of two integers");
    expect_reject(s, "float data_offsets",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}", 4),
                  "data_offsets is not an array of two integers");
    expect_reject(s, "negative data_offsets",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}", 4),
                  "data_offsets [-4, 0] are negative");
    expect_reject(s, "reversed data_offsets",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}", 8),
                  "tensor 'x' data_offsets [8, 0] are reversed (begin > end)");
    expect_reject(s, "data_offsets past the data",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}", 20),
                  "data_offsets [8, 24] run past the end of the data section (20 bytes");
    expect_reject(s, "a size mismatch",
                  one_tensor("{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,100]}", 128),
                  "tensor 'x' data_offsets [0, 100] do not match dtype F32 x shape [4, 8] "
                  "(128 bytes)");
    expect_reject(s, "overlapping tensors",
                  st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                           "012345678901234567890123", 24),
                  "tensors 'a' [0, 16] and 'b' [8, 24] overlap");
    expect_reject(s, "a tensor inside another",
                  st_build("{\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[20,22]},"
                           "\"a\":{\"dtype\":\"U8\",\"shape\":[32],\"data_offsets\":[0,32]},"
                           "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                           "0123456789012345678901234567890123", 32),
                  "tensors 'a' [0, 32] and 'b' [4, 8] overlap");
    expect_reject(s, "two tensors at the same bytes",
                  st_build("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                           "0123", 4),
                  "overlap");
}

static void test_st_rejects_names_and_metadata(Suite *s)
{
    expect_reject(s, "metadata that is not an object",
                  st_build("{\"__metadata__\":\"pt\"}", NULL, 0),
                  "__metadata__ is a JSON string, not an object");
    expect_reject(s, "a metadata value that is not a string",
                  st_build("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", NULL, 0),
                  "__metadata__ value for 'n' is a JSON number, not a string");
    expect_reject(s, "a NUL in a metadata value",
                  st_build("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", NULL, 0),
                  "__metadata__ entry 'k' has a NUL byte");
    expect_reject(s, "a NUL in a tensor name",
                  st_build("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                           NULL, 0),
                  "tensor 'a\\x00b' has a NUL byte in its name");
    expect_reject(s, "a newline in a name (message stays one line)",
                  st_build("{\"a\\nb\":{\"dtype\":\"X\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                           NULL, 0),
                  "tensor 'a\\x0ab' has unknown dtype \"X\"");
}

static void test_st_rejects_paths(Suite *s)
{
    char path[600], err[512];
    SafeTensors st;
    snprintf(path, sizeof path, "%s/no-such-file.safetensors", s->dir);
    int rc = st_open(&st, path, err, sizeof err);
    check(s, rc == -1 && strstr(err, path) && strstr(err, "cannot open (No such file"),
          "st: rejects a missing file", "rc %d, \"%s\"", rc, err);
    rc = st_open(&st, s->dir, err, sizeof err);
    check(s, rc == -1 && strstr(err, ": not a regular file"), "st: rejects a directory",
          "rc %d, \"%s\"", rc, err);
    rc = st_open(&st, path, NULL, 0);
    check(s, rc == -1, "st: errlen 0 / NULL err is fine", "rc %d", rc);
}

/* ------------------------------------------------------------------------------------
 * valid files
 * ---------------------------------------------------------------------------------- */

/* Same value, bit for bit (NaN: any NaN; -0 is not +0). */
static int same_float(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static int floats_are(const StTensor *t, const float *want, int n)
{
    float got[16];
    if (!t || t->numel != n || n > 16 || st_to_f32(t, got) != 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (!same_float(got[i], want[i]))
            return 0;
    return 1;
}

#define BASIC_HEADER                                                                        \
    "{\"__metadata__\":{\"format\":\"pt\",\"lesson\":\"00-selftest\"},"                     \
    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"                    \
    "\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[24,44]},"                    \
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[44,54]},"                    \
    "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[54,62]},"                     \
    "\"l\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[62,70]},"                      \
    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[70,70]},"               \
    "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[73,81]}}"

static const float W_VALUES[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, -65504.0f};
static const uint16_t H_BITS[10] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400,
                                    0x7BFF, 0x7C00, 0xFC00, 0x8000, 0x7E00};
static const uint16_t B_BITS[5] = {0x3F80, 0xC049, 0x7F80, 0x0001, 0x4049};

/* The data of BASIC_HEADER; bytes 70..73 are an unreferenced gap, which is allowed, and
 * put "u" at an address that is not a multiple of 4. */
static Bytes basic_file(void)
{
    unsigned char d[81] = {0};
    for (int i = 0; i < 6; i++)
        put_f32(d + 4 * i, W_VALUES[i]);
    for (int i = 0; i < 10; i++)
        put_le(d + 24 + 2 * i, H_BITS[i], 2);
    for (int i = 0; i < 5; i++)
        put_le(d + 44 + 2 * i, B_BITS[i], 2);
    put_le(d + 54, 7, 4);
    put_le(d + 58, 0xFFFFFFFFu, 4);
    put_le(d + 62, (uint64_t)1 << 40, 8);
    put_f32(d + 73, 0.5f);
    put_f32(d + 77, -0.25f);
    return st_build(BASIC_HEADER, d, sizeof d);
}

static void check_basic_shapes(Suite *s, const SafeTensors *st, const char *how)
{
    char name[128];
    const StTensor *w = st_find(st, "w"), *l = st_find(st, "l"), *e = st_find(st, "empty");
    snprintf(name, sizeof name, "st: %s: 7 tensors in header order, shapes, sizes, offsets", how);
    const StTensor *u = st_find(st, "u");
    int ok = st->n_tensors == 7 && strcmp(st->tensors[0].name, "w") == 0 &&
             strcmp(st->tensors[6].name, "u") == 0 && w && w->dtype == ST_F32 && w->ndim == 2 &&
             w->shape[0] == 2 && w->shape[1] == 3 && w->numel == 6 && w->nbytes == 24 &&
             w->offset % 8 == 0 && (const unsigned char *)w->data == st->bytes + w->offset &&
             u && u->offset == w->offset + 73 && l && l->ndim == 0 && l->numel == 1 &&
             l->nbytes == 8 &&
             e && e->numel == 0 && e->nbytes == 0 && e->ndim == 2 && e->shape[1] == 4;
    check(s, ok, name, "w %p l %p empty %p, n_tensors %d", (const void *)w, (const void *)l,
          (const void *)e, st->n_tensors);
    snprintf(name, sizeof name, "st: %s: metadata and lookups", how);
    ok = st->n_meta == 2 && strcmp(st_meta(st, "format"), "pt") == 0 &&
         strcmp(st_meta(st, "lesson"), "00-selftest") == 0 && st_meta(st, "nope") == NULL &&
         st_find(st, "nope") == NULL && st_find(st, "") == NULL && st_find(st, "__metadata__") == NULL;
    check(s, ok, name, "n_meta %d", st->n_meta);
}

static void check_basic_values(Suite *s, const SafeTensors *st, const char *how)
{
    char name[128];
    const float h[10] = {1.0f,     -2.0f,    0x1p-24f,  0x3FFp-24f, 0x1p-14f,
                         65504.0f, INFINITY, -INFINITY, -0.0f,      NAN};
    const float b[5] = {1.0f, -3.140625f, INFINITY, 0x1p-133f, 3.140625f};
    snprintf(name, sizeof name, "st: %s: F32 values exact", how);
    check(s, floats_are(st_find(st, "w"), W_VALUES, 6), name, "values differ");
    snprintf(name, sizeof name, "st: %s: F16 -> f32 exact (1, -2, subnormals, 65504, inf, -0, NaN)", how);
    check(s, floats_are(st_find(st, "h"), h, 10), name, "values differ");
    snprintf(name, sizeof name, "st: %s: BF16 -> f32 exact (incl. inf, subnormal)", how);
    check(s, floats_are(st_find(st, "b"), b, 5), name, "values differ");
    const StTensor *u = st_find(st, "u"), *i = st_find(st, "i"), *e = st_find(st, "empty");
    snprintf(name, sizeof name, "st: %s: misaligned F32 reads right, st_is_aligned says no", how);
    check(s, floats_are(u, (const float[]){0.5f, -0.25f}, 2) && !st_is_aligned(u, 4) &&
                 st_is_aligned(u, 1) && st_is_aligned(e, 64),
          name, "aligned: %d", st_is_aligned(u, 4));
    int32_t iv[2] = {0, 0};
    float dummy[2];
    if (i && i->nbytes == sizeof iv)
        memcpy(iv, i->data, sizeof iv);
    snprintf(name, sizeof name, "st: %s: I32 data read raw; st_to_f32 refuses I32/I64", how);
    check(s, iv[0] == 7 && iv[1] == -1 && st_to_f32(i, dummy) == -1 &&
                 st_to_f32(st_find(st, "l"), dummy) == -1 && st_to_f32(e, dummy) == 0,
          name, "got %d %d", iv[0], iv[1]);
}

static void test_st_valid_basic(Suite *s)
{
    char path[600], err[512];
    SafeTensors st;
    Bytes b = basic_file();
    snprintf(path, sizeof path, "%s/basic.safetensors", s->dir);
    int rc = write_file(path, &b) == 0 ? st_open(&st, path, err, sizeof err) : -2;
    if (check(s, rc == 0 && strcmp(st.path, path) == 0, "st: opens a valid file from disk",
              "rc %d: %s", rc, err)) {
        check_basic_shapes(s, &st, "disk");
        check_basic_values(s, &st, "disk");
        st_close(&st);
        st_close(&st); /* closing twice is allowed */
    }
    unlink(path);
    unsigned char *exact = malloc(b.n);
    if (!exact)
        abort();
    memcpy(exact, b.p, b.n);
    rc = st_open_memory(&st, exact, b.n, "basic", err, sizeof err);
    if (check(s, rc == 0, "st: opens the same bytes from memory", "%s", err)) {
        check_basic_shapes(s, &st, "memory");
        check_basic_values(s, &st, "memory");
        st_close(&st);
    }
    free(exact);
    free(b.p);
}

static void test_st_valid_small(Suite *s)
{
    char err[512];
    SafeTensors st;
    Bytes b = st_build("{}", "trailing bytes nobody references", 32);
    int rc = st_open_memory(&st, b.p, b.n, "empty", err, sizeof err);
    check(s, rc == 0 && st.n_tensors == 0 && st.n_meta == 0 && st_find(&st, "x") == NULL &&
                 st_meta(&st, "x") == NULL,
          "st: '{}' with unreferenced data is a valid empty file", "%s", err);
    st_close(&st);
    free(b.p);
    b = st_build("{\"e\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[2,2]},"
                 "\"f\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                 "\"g\":{\"dtype\":\"BOOL\",\"shape\":[0,7],\"data_offsets\":[4,4]}}",
                 "abcd", 4);
    rc = st_open_memory(&st, b.p, b.n, "zeros", err, sizeof err);
    check(s, rc == 0 && st.n_tensors == 3 && st_find(&st, "e")->numel == 0,
          "st: zero-element tensors (even inside another's range) are fine", "%s", err);
    st_close(&st);
    free(b.p);
    SafeTensors zero;
    memset(&zero, 0, sizeof zero);
    st_close(&zero);
    st_close(NULL);
    check(s, st_find(&zero, "x") == NULL && st_meta(NULL, "x") == NULL && st_find(NULL, "x") == NULL,
          "st: close/find/meta on an empty struct or NULL are safe", "crashed?");
}

static void test_st_valid_many(Suite *s)
{
    int n = 3000;
    size_t cap = (size_t)n * 96 + 16, len = 0;
    char *header = malloc(cap), path[600], err[512], key[64];
    unsigned char *data = malloc((size_t)n * 4);
    if (!header || !data)
        abort();
    len += (size_t)snprintf(header, cap, "{");
    for (int i = 0; i < n; i++) {
        int id = (i * 7919) % n; /* names out of order relative to offsets */
        len += (size_t)snprintf(header + len, cap - len,
                                "%s\"model.layers.%d.w\":{\"dtype\":\"F32\",\"shape\":[1],"
                                "\"data_offsets\":[%d,%d]}", i ? "," : "", id, 4 * i, 4 * i + 4);
        put_f32(data + 4 * i, (float)id);
    }
    snprintf(header + len, cap - len, "}");
    Bytes b = st_build(header, data, (size_t)n * 4);
    SafeTensors st;
    snprintf(path, sizeof path, "%s/many.safetensors", s->dir);
    int rc = write_file(path, &b) == 0 ? st_open(&st, path, err, sizeof err) : -2;
    int found = 0;
    for (int id = 0; rc == 0 && id < n; id++) {
        float v = -1;
        snprintf(key, sizeof key, "model.layers.%d.w", id);
        const StTensor *t = st_find(&st, key);
        found += t && strcmp(t->name, key) == 0 && st_to_f32(t, &v) == 0 && v == (float)id;
    }
    check(s, rc == 0 && found == n && st_find(&st, "model.layers.3000.w") == NULL,
          "st: 3000 tensors, every one found by name with its value", "rc %d (%s), found %d",
          rc, err, found);
    if (rc == 0)
        st_close(&st);
    unlink(path);
    free(b.p);
    free(header);
    free(data);
}

static void test_st_dtypes(Suite *s)
{
    int ok = 1;
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        ok = ok && st_dtype_size((StDtype)d) >= 1 && strcmp(st_dtype_name((StDtype)d), "?") != 0;
    ok = ok && st_dtype_size(ST_F32) == 4 && st_dtype_size(ST_BF16) == 2 &&
         st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_BOOL) == 1 &&
         strcmp(st_dtype_name(ST_F8_E4M3), "F8_E4M3") == 0 &&
         strcmp(st_dtype_name(ST_DTYPE_COUNT), "?") == 0 && st_dtype_size(ST_DTYPE_COUNT) == 0;
    check(s, ok, "st: dtype names and sizes", "a name or size is wrong");
}

/* ------------------------------------------------------------------------------------
 * fuzzing: mutated inputs must be rejected or accepted, never crash or over-read (this
 * proves most under -fsanitize=address,undefined)
 * ---------------------------------------------------------------------------------- */

static uint64_t next_random(uint64_t *state) /* xorshift64* */
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1DULL;
}

static void mutate(unsigned char *p, size_t *n, uint64_t *rng)
{
    static const char pool[] = "{}[]\",:0123456789-eE.\\u tfn";
    int edits = 1 + (int)(next_random(rng) % 4);
    for (int k = 0; k < edits && *n > 0; k++) {
        size_t at = next_random(rng) % *n;
        uint64_t r = next_random(rng);
        if (r % 4 == 0)
            p[at] = (unsigned char)(r >> 8);
        else if (r % 4 == 1)
            p[at] = (unsigned char)pool[(r >> 8) % (sizeof pool - 1)];
        else if (r % 4 == 2)
            *n = at; /* truncate */
        else
            p[at] ^= (unsigned char)(1u << ((r >> 8) % 8));
    }
}

/* Touches every byte and converts every float tensor of an accepted file. */
static unsigned read_everything(const SafeTensors *st)
{
    unsigned sum = 0;
    float buf[64];
    for (int i = 0; i < st->n_tensors; i++) {
        const StTensor *t = &st->tensors[i];
        for (size_t j = 0; j < t->nbytes; j++)
            sum += ((const unsigned char *)t->data)[j];
        if (t->numel <= 64)
            st_to_f32(t, buf);
        sum += st_find(st, t->name) == t;
    }
    return sum;
}

static void test_fuzz(Suite *s)
{
    Bytes seed = basic_file();
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int accepted = 0, runs = 20000;
    unsigned sink = 0;
    char err[512];
    unsigned char *scratch = malloc(seed.n);
    if (!scratch)
        abort();
    for (int r = 0; r < runs; r++) {
        size_t n = seed.n;
        memcpy(scratch, seed.p, n);
        mutate(scratch, &n, &rng);
        unsigned char *p = malloc(n ? n : 1); /* exact size after truncation, for ASan */
        if (!p)
            abort();
        memcpy(p, scratch, n);
        SafeTensors st;
        if (st_open_memory(&st, p, n, "fuzz", err, sizeof err) == 0) {
            accepted++;
            sink += read_everything(&st);
            st_close(&st);
        }
        JsonValue *v = json_parse((const char *)p + (n > 8 ? 8 : 0), n > 8 ? n - 8 : 0, err,
                                  sizeof err);
        json_free(v);
        free(p);
    }
    check(s, accepted < runs, "st+json: 20000 mutated files, no crash",
          "all accepted (sink %u)", sink);
    free(scratch);
    free(seed.p);
}

/* ------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------- */

int main(void)
{
    Suite s = {0, 0, {0}};
    const char *tmp = getenv("TMPDIR");
    snprintf(s.dir, sizeof s.dir, "%s/moekit-st-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s.dir)) {
        perror("mkdtemp");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    test_json_literals_and_access(&s);
    test_json_strings(&s);
    test_json_numbers(&s);
    test_json_nesting(&s);
    test_json_structure(&s);
    test_json_large(&s);
    test_json_printable(&s);
    test_st_rejects_framing(&s);
    test_st_rejects_entries(&s);
    test_st_rejects_offsets(&s);
    test_st_rejects_names_and_metadata(&s);
    test_st_rejects_paths(&s);
    test_st_valid_basic(&s);
    test_st_valid_small(&s);
    test_st_valid_many(&s);
    test_st_dtypes(&s);
    test_fuzz(&s);
    if (rmdir(s.dir) != 0)
        check(&s, 0, "st: temporary directory removed", "%s is not empty", s.dir);
    printf("%d passed, %d failed\n", s.passed, s.failed);
    return s.failed ? 1 : 0;
}
