/*
 * json.c: a strict recursive-descent JSON parser producing a DOM (see json.h).
 *
 * Invariant that keeps error paths simple: every JsonValue in the tree is always in a
 * freeable state (children [0, count) are initialised, pointers are NULL or owned), so a
 * failure anywhere just stops, and json_parse frees the whole partial tree.
 */
#define _POSIX_C_SOURCE 200809L

#include "json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Objects with more members than this are checked for duplicate keys by sorting
 * (O(n log n)) rather than by comparing every pair: safetensors headers of real
 * checkpoints have ~20k members. */
#define DUP_CHECK_PAIRWISE_MAX 16

typedef struct {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int depth;
    size_t values; /* children made so far (JSON_MAX_VALUES) */
    int failed; /* the first error wins: later ones are consequences */
    char *err;
    size_t errlen;
} Parser;

/* ------------------------------------------------------------------------------------
 * errors
 * ---------------------------------------------------------------------------------- */

static int fail_at(Parser *p, size_t pos, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int fail_at(Parser *p, size_t pos, const char *fmt, ...)
{
    if (!p->failed && p->err && p->errlen > 0) {
        int n = snprintf(p->err, p->errlen, "invalid JSON at byte %zu: ", pos);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    p->failed = 1;
    return -1;
}

static int fail_oom(Parser *p)
{
    if (!p->failed && p->err && p->errlen > 0)
        snprintf(p->err, p->errlen, "out of memory while parsing JSON (%zu bytes)", p->len);
    p->failed = 1;
    return -1;
}

static size_t utf8_len(const unsigned char *s, size_t avail);

/* What sits at the parse position, for "expected X, found Y" messages. */
static const char *found(const Parser *p, char buf[24])
{
    if (p->pos >= p->len)
        return "the end of the input";
    unsigned char c = p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 24, "'%c'", c);
    else
        snprintf(buf, 24, "byte 0x%02x", c);
    return buf;
}

/* The letter JSON escapes byte c with (\n: 'n'), or 0 for one it does not. */
static char short_escape(unsigned char c) {
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\n': return 'n';
    case '\t': return 't';
    case '\r': return 'r';
    case '\b': return 'b';
    case '\f': return 'f';
    default: return 0;
    }
}

void json_put_string(FILE *f, const char *s) {
    size_t len = strlen(s), i = 0;
    fputc('"', f);
    while (i < len) {
        size_t ok = json_utf8_check(s + i, len - i); /* the valid UTF-8 from s + i */
        for (size_t j = i; j < i + ok; j++) {
            unsigned char c = (unsigned char)s[j];
            if (short_escape(c)) fputc('\\', f), fputc(short_escape(c), f);
            else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i += ok;
        if (i < len) fputs("\\ufffd", f), i++; /* one byte that is not UTF-8 */
    }
    fputc('"', f);
}

void json_printable(char *buf, size_t bufsize, const char *s, size_t len)
{
    if (bufsize < 4) { /* not even room for "..." */
        if (bufsize > 0)
            buf[0] = '\0';
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0, i = 0;
    while (i < len) {
        unsigned char c = u[i];
        size_t k = c < 0x80 ? 1 : utf8_len(u + i, len - i); /* whole characters only */
        int esc = k == 0 || c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\';
        size_t need = esc ? 4 : k;
        if (n + need + 3 >= bufsize) /* keep room for "..." and the NUL */
            break;
        if (esc) {
            n += (size_t)snprintf(buf + n, bufsize - n, "\\x%02x", c);
            i++;
        } else {
            memcpy(buf + n, u + i, k);
            n += k;
            i += k;
        }
    }
    if (i < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

JsonShown json_shown(const char *s)
{
    JsonShown out;
    json_printable(out.s, sizeof out.s, s, strlen(s));
    return out;
}

/* ------------------------------------------------------------------------------------
 * tree building and freeing
 * ---------------------------------------------------------------------------------- */

static void value_clear(JsonValue *v)
{
    if (v->type == JSON_STRING)
        free(v->string);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++) {
            value_clear(&v->items[i]);
            free(v->items[i].key);
        }
        free(v->items);
    }
}

void json_free(JsonValue *v)
{
    if (!v)
        return;
    value_clear(v);
    free(v);
}

/* Appends a zeroed child to an array or object, growing items geometrically. */
static JsonValue *push_child(Parser *p, JsonValue *parent, size_t *cap)
{
    if (++p->values > JSON_MAX_VALUES) {
        fail_at(p, p->pos, "more than %d values in one document", JSON_MAX_VALUES);
        return NULL;
    }
    if (parent->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof(JsonValue)) {
            fail_oom(p);
            return NULL;
        }
        JsonValue *items = realloc(parent->items, ncap * sizeof *items);
        if (!items) {
            fail_oom(p);
            return NULL;
        }
        parent->items = items;
        *cap = ncap;
    }
    JsonValue *c = &parent->items[parent->count++];
    memset(c, 0, sizeof *c);
    c->type = JSON_NULL;
    return c;
}

static void skip_ws(Parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int peek_is(const Parser *p, unsigned char c)
{
    return p->pos < p->len && p->s[p->pos] == c;
}

/* ------------------------------------------------------------------------------------
 * strings
 * ---------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most avail bytes), 0 if invalid.
 * Rejects overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned long cp;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        return 0;
    return n;
}

size_t json_utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = u[i] < 0x80 ? 1 : utf8_len(u + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

size_t json_utf8_put(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads the 4 hex digits of a \uXXXX escape starting at the backslash at pos; the caller
 * guarantees pos + 6 <= end. -1 if they are not hex. */
static long read_u4(const unsigned char *s, size_t pos)
{
    long v = 0;
    for (size_t i = pos + 2; i < pos + 6; i++) {
        unsigned c = s[i];
        int d = c >= '0' && c <= '9'   ? (int)(c - '0')
                : c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? (int)(c - 'A' + 10)
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes \uXXXX (and a following low surrogate) at p->pos; end is the closing quote. */
static int decode_u(Parser *p, size_t end, char *out, size_t *n)
{
    size_t at = p->pos;
    long hi = at + 6 <= end ? read_u4(p->s, at) : -1;
    if (hi < 0)
        return fail_at(p, at, "\\u must be followed by 4 hex digits");
    unsigned long cp = (unsigned long)hi;
    p->pos += 6;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return fail_at(p, at, "lone low surrogate \\u%04lx", cp);
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        long lo = -1;
        if (p->pos + 6 <= end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u')
            lo = read_u4(p->s, p->pos);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(p, at, "high surrogate \\u%04lx not followed by a low one", cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
        p->pos += 6;
    }
    *n += json_utf8_put(out + *n, cp);
    return 0;
}

/* Decodes the escape at p->pos (a backslash; p->pos + 1 < end is guaranteed). */
static int decode_escape(Parser *p, size_t end, char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned char c = p->s[p->pos + 1];
    if (c == 'u')
        return decode_u(p, end, out, n);
    const char *hit = c ? strchr(from, c) : NULL;
    if (!hit)
        return fail_at(p, p->pos, "invalid escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
    out[(*n)++] = to[hit - from];
    p->pos += 2;
    return 0;
}

/* Copies one character or escape of a string body; end is the closing quote. */
static int string_char(Parser *p, size_t end, char *out, size_t *n)
{
    unsigned char c = p->s[p->pos];
    if (c == '\\')
        return decode_escape(p, end, out, n);
    if (c < 0x20)
        return fail_at(p, p->pos, "raw control character 0x%02x in a string", c);
    size_t k = c < 0x80 ? 1 : utf8_len(p->s + p->pos, end - p->pos);
    if (k == 0)
        return fail_at(p, p->pos, "invalid UTF-8 byte 0x%02x", c);
    memcpy(out + *n, p->s + p->pos, k);
    *n += k;
    p->pos += k;
    return 0;
}

/* Parses the string at p->pos (a '"') into a malloc'd, NUL-terminated buffer. */
static int parse_string(Parser *p, char **out, size_t *out_len)
{
    size_t open = p->pos, end = open + 1;
    /* Find the closing quote first: unescaping only shrinks (\u escapes of 6 or 12 bytes
     * give at most 3 or 4), so the raw length bounds the buffer. */
    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return fail_at(p, open, "unterminated string");
    char *buf = malloc(end - open);
    if (!buf)
        return fail_oom(p);
    size_t n = 0;
    p->pos = open + 1;
    while (p->pos < end) {
        if (string_char(p, end, buf, &n) < 0) {
            free(buf);
            return -1;
        }
    }
    buf[n] = '\0';
    p->pos = end + 1;
    *out = buf;
    *out_len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * numbers
 * ---------------------------------------------------------------------------------- */

static int is_digit_at(const Parser *p, size_t i)
{
    return i < p->len && p->s[i] >= '0' && p->s[i] <= '9';
}

/* Exact int64 value of an integer literal; 0 if it does not fit. */
static int to_int64(const unsigned char *s, size_t n, int64_t *out)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t u = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        unsigned d = s[i] - '0';
        if (u > (UINT64_MAX - d) / 10)
            return 0;
        u = u * 10 + d;
    }
    if (u > (uint64_t)INT64_MAX + (uint64_t)neg)
        return 0;
    *out = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    return 1;
}

/* strtod on a copy of the literal (the text is not NUL-terminated), with '.' swapped for
 * the locale's decimal point so that a program that called setlocale still reads 1.5. */
static int to_double(Parser *p, size_t start, size_t end, double *out)
{
    char small[64], *buf = small;
    size_t n = end - start;
    if (n >= sizeof small && !(buf = malloc(n + 1)))
        return fail_oom(p);
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    const char *dp = localeconv()->decimal_point;
    char *dot = strchr(buf, '.');
    if (dot && dp && dp[0] && !dp[1])
        *dot = dp[0];
    char *stop;
    errno = 0;
    *out = strtod(buf, &stop);
    int ok = stop == buf + n && !isinf(*out);
    if (buf != small)
        free(buf);
    if (!ok)
        return fail_at(p, start, "number out of range for a double");
    return 0;
}

/* The grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int parse_number(Parser *p, JsonValue *v)
{
    size_t start = p->pos, i = start;
    int is_int = 1;
    if (i < p->len && p->s[i] == '-')
        i++;
    if (!is_digit_at(p, i))
        return fail_at(p, i, "expected a digit");
    if (p->s[i++] == '0' && is_digit_at(p, i))
        return fail_at(p, start, "leading zero in a number");
    while (is_digit_at(p, i))
        i++;
    if (i < p->len && p->s[i] == '.') {
        is_int = 0;
        if (!is_digit_at(p, ++i))
            return fail_at(p, i, "expected a digit after '.'");
        while (is_digit_at(p, i))
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        is_int = 0;
        if (++i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (!is_digit_at(p, i))
            return fail_at(p, i, "expected a digit in the exponent");
        while (is_digit_at(p, i))
            i++;
    }
    p->pos = i;
    v->type = JSON_NUMBER;
    if (to_double(p, start, i, &v->number) < 0)
        return -1;
    v->is_integer = is_int && to_int64(p->s + start, i - start, &v->integer);
    return 0;
}

/* ------------------------------------------------------------------------------------
 * arrays and objects
 * ---------------------------------------------------------------------------------- */

static int parse_value(Parser *p, JsonValue *v);

static int enter(Parser *p)
{
    if (++p->depth > JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "nested deeper than %d arrays/objects", JSON_MAX_DEPTH);
    p->pos++; /* the '[' or '{' */
    skip_ws(p);
    return 0;
}

static int parse_array(Parser *p, JsonValue *v)
{
    size_t cap = 0;
    char what[24];
    v->type = JSON_ARRAY;
    if (enter(p) < 0)
        return -1;
    if (peek_is(p, ']')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        JsonValue *c = push_child(p, v, &cap);
        if (!c || parse_value(p, c) < 0)
            return -1;
        skip_ws(p);
        if (peek_is(p, ']'))
            break;
        if (!peek_is(p, ','))
            return fail_at(p, p->pos, "expected ',' or ']' in an array, found %s", found(p, what));
        p->pos++;
    }
    p->pos++;
    p->depth--;
    return 0;
}

static int same_key(const JsonValue *a, const JsonValue *b)
{
    return a->key_length == b->key_length && memcmp(a->key, b->key, a->key_length) == 0;
}

/* By key bytes, then by position so that the later of two duplicates sorts second. */
static int cmp_key(const void *x, const void *y)
{
    const JsonValue *a = *(const JsonValue *const *)x, *b = *(const JsonValue *const *)y;
    size_t n = a->key_length < b->key_length ? a->key_length : b->key_length;
    int c = memcmp(a->key, b->key, n);
    if (c != 0)
        return c;
    if (a->key_length != b->key_length)
        return a->key_length < b->key_length ? -1 : 1;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

static int fail_duplicate(Parser *p, const JsonValue *member)
{
    char name[96];
    json_printable(name, sizeof name, member->key, member->key_length);
    return fail_at(p, member->offset, "duplicate key \"%s\"", name);
}

static int check_duplicates(Parser *p, const JsonValue *obj)
{
    size_t n = obj->count;
    if (n <= DUP_CHECK_PAIRWISE_MAX) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (same_key(&obj->items[i], &obj->items[j]))
                    return fail_duplicate(p, &obj->items[i]);
        return 0;
    }
    const JsonValue **idx = malloc(n * sizeof *idx);
    if (!idx)
        return fail_oom(p);
    for (size_t i = 0; i < n; i++)
        idx[i] = &obj->items[i];
    qsort(idx, n, sizeof *idx, cmp_key);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (same_key(idx[i - 1], idx[i]))
            rc = fail_duplicate(p, idx[i]);
    free(idx);
    return rc;
}

/* One "key": value member; the child records the key's position as its offset. */
static int parse_member(Parser *p, JsonValue *obj, size_t *cap)
{
    char what[24];
    skip_ws(p);
    if (!peek_is(p, '"'))
        return fail_at(p, p->pos, "expected a string key, found %s", found(p, what));
    JsonValue *c = push_child(p, obj, cap);
    size_t key_at = p->pos;
    if (!c || parse_string(p, &c->key, &c->key_length) < 0)
        return -1;
    skip_ws(p);
    if (!peek_is(p, ':'))
        return fail_at(p, p->pos, "expected ':' after an object key, found %s", found(p, what));
    p->pos++;
    if (parse_value(p, c) < 0)
        return -1;
    c->offset = key_at;
    return 0;
}

static int parse_object(Parser *p, JsonValue *v)
{
    size_t cap = 0;
    char what[24];
    v->type = JSON_OBJECT;
    if (enter(p) < 0)
        return -1;
    if (peek_is(p, '}')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (parse_member(p, v, &cap) < 0)
            return -1;
        skip_ws(p);
        if (peek_is(p, '}'))
            break;
        if (!peek_is(p, ','))
            return fail_at(p, p->pos, "expected ',' or '}' in an object, found %s", found(p, what));
        p->pos++;
    }
    p->pos++;
    p->depth--;
    return check_duplicates(p, v);
}

/* ------------------------------------------------------------------------------------
 * values and the entry point
 * ---------------------------------------------------------------------------------- */

static int parse_literal(Parser *p, JsonValue *v, const char *word, JsonType t, int b)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail_at(p, p->pos, "invalid literal (expected true, false or null)");
    p->pos += n;
    v->type = t;
    v->boolean = b;
    return 0;
}

static int parse_value(Parser *p, JsonValue *v)
{
    char what[24];
    skip_ws(p);
    v->offset = p->pos;
    if (p->pos >= p->len)
        return fail_at(p, p->pos, "expected a value, found the end of the input");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_object(p, v);
    case '[': return parse_array(p, v);
    case 't': return parse_literal(p, v, "true", JSON_BOOL, 1);
    case 'f': return parse_literal(p, v, "false", JSON_BOOL, 0);
    case 'n': return parse_literal(p, v, "null", JSON_NULL, 0);
    case '"':
        v->type = JSON_STRING;
        return parse_string(p, &v->string, &v->length);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
        return fail_at(p, p->pos, "expected a value, found %s", found(p, what));
    }
}

JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    Parser p = {.s = (const unsigned char *)(text ? text : ""), .len = text ? len : 0,
                .err = err, .errlen = errlen};
    char what[24];
    if (err && errlen > 0)
        err[0] = '\0';
    JsonValue *root = calloc(1, sizeof *root);
    if (!root) {
        fail_oom(&p);
        return NULL;
    }
    if (parse_value(&p, root) == 0) {
        skip_ws(&p);
        if (p.pos < p.len)
            fail_at(&p, p.pos, "unexpected %s after the value", found(&p, what));
    }
    if (p.failed) {
        json_free(root);
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------------------------
 * access helpers
 * ---------------------------------------------------------------------------------- */

const JsonValue *json_get(const JsonValue *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT || !key)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->count; i++) {
        const JsonValue *m = &obj->items[i];
        if (m->key_length == n && memcmp(m->key, key, n) == 0)
            return m;
    }
    return NULL;
}

size_t json_len(const JsonValue *v)
{
    return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->count : 0;
}

const JsonValue *json_at(const JsonValue *v, size_t i)
{
    return i < json_len(v) ? &v->items[i] : NULL;
}

int json_number(const JsonValue *v, double *out)
{
    if (!v || v->type != JSON_NUMBER)
        return -1;
    *out = v->number;
    return 0;
}

int json_int64(const JsonValue *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !v->is_integer)
        return -1;
    *out = v->integer;
    return 0;
}

int json_bool(const JsonValue *v, int *out)
{
    if (!v || v->type != JSON_BOOL)
        return -1;
    *out = v->boolean;
    return 0;
}

const char *json_string(const JsonValue *v)
{
    return v && v->type == JSON_STRING ? v->string : NULL;
}

const char *json_type_name(JsonType t)
{
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "bool";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}
