/*
 * json.h: a small, strict JSON (RFC 8259) DOM parser.
 *
 * Used for safetensors headers (fixtures and Hugging Face checkpoints) and for
 * config.json. It is written to be pointed at by fuzzers: it never reads past len,
 * never recurses deeper than JSON_MAX_DEPTH, never builds more than JSON_MAX_VALUES values,
 * and reports every problem as one line,
 *     "invalid JSON at byte 123: expected ':' after an object key".
 *
 * Strictness, so that a malformed file is named rather than half-read:
 *   - input must be valid UTF-8 (no BOM); strings may not hold raw control characters;
 *   - \uXXXX escapes are decoded to UTF-8, surrogate pairs combined, lone surrogates
 *     rejected; \u0000 is allowed (string length counts it, see JsonValue.length);
 *   - numbers follow the JSON grammar exactly (no "01", "1.", ".5", "+1", NaN, Infinity)
 *     and must fit a double (1e400 is rejected, 1e-400 reads as 0);
 *   - an object may not repeat a key (which one would win is a silent choice otherwise);
 *   - nothing but whitespace may follow the top-level value.
 *
 * Numbers are converted with strtod, made independent of the C locale's decimal point.
 */
#ifndef MOEKIT_JSON_H
#define MOEKIT_JSON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64 /* arrays/objects nested deeper than this are rejected */
/* Values in one document (each costs a JsonValue, ~100 bytes): a 100 MB header of "0,"
 * would otherwise build a 5 GB tree. A checkpoint header holds ~10 per tensor, so this
 * leaves room for 400k tensors (the largest MoE checkpoints have ~100k). */
#define JSON_MAX_VALUES 4000000

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
struct JsonValue {
    JsonType type;
    size_t offset;      /* byte in the text where this value starts (object member: its key) */
    int boolean;        /* JSON_BOOL: 0 or 1 */
    double number;      /* JSON_NUMBER */
    int is_integer;     /* JSON_NUMBER written without fraction/exponent, fits int64_t */
    int64_t integer;    /* exact value when is_integer (doubles lose it past 2^53) */
    char *string;       /* JSON_STRING: unescaped UTF-8, NUL-terminated (malloc'd) */
    size_t length;      /* JSON_STRING: bytes in string, excluding the terminator */
    size_t count;       /* JSON_ARRAY / JSON_OBJECT: number of children */
    JsonValue *items;   /* JSON_ARRAY / JSON_OBJECT: children in document order */
    char *key;          /* a child of an object: its key (unescaped, NUL-terminated) */
    size_t key_length;  /* a child of an object: bytes in key */
};

/* Parses text[0 .. len) (need not be NUL-terminated). Returns a tree to free with
 * json_free, or NULL with a one-line message in err (err may be NULL; errlen bytes
 * including the terminator). */
JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Frees a tree returned by json_parse. NULL is fine. */
void json_free(JsonValue *v);

/* ------------------------------------------------------------------------------------
 * Access helpers: all accept NULL and the wrong type, so lookups chain safely:
 *     json_int64(json_at(json_get(t, "shape"), 0), &d)
 * ---------------------------------------------------------------------------------- */

/* The member of obj called key, NULL if obj is not an object or has no such key.
 * Keys holding \u0000 never match (key is a C string). Linear in the member count. */
const JsonValue *json_get(const JsonValue *obj, const char *key);

/* Children of an array or object: count, and the i-th (NULL when out of range). */
size_t json_len(const JsonValue *v);
const JsonValue *json_at(const JsonValue *v, size_t i);

/* 0 and *out set when v has the type; -1 (and *out untouched) otherwise. */
int json_number(const JsonValue *v, double *out);
int json_int64(const JsonValue *v, int64_t *out); /* only integer literals, e.g. 4 not 4.0 */
int json_bool(const JsonValue *v, int *out);

/* The string's bytes, NULL if v is not a string. */
const char *json_string(const JsonValue *v);

/* The offset of the first byte of s[0 .. len) that does not start a valid UTF-8 sequence
 * (the rules the parser applies: no overlong forms, surrogates or code points past
 * U+10FFFF), or len when all of it is valid. For text that is not JSON: prompts, files. */
size_t json_utf8_check(const char *s, size_t len);
/* Code point cp (< 0x110000) as UTF-8 in out (1 to 4 bytes, no NUL); returns how many. */
size_t json_utf8_put(char *out, unsigned long cp);

/* "null", "bool", "number", "string", "array", "object": for error messages. */
const char *json_type_name(JsonType t);

/* Copies s[0 .. len) into buf (bufsize bytes, always NUL-terminated) so that it can be
 * quoted in a one-line message: control bytes, '"', '\'' and '\\' become \xNN, and a
 * string too long for buf is cut (at a UTF-8 boundary) and ends in "...". */
void json_printable(char *buf, size_t bufsize, const char *s, size_t len);

/* The C string s written to f as a JSON string literal, quotes included: '"', '\\' and
 * control bytes escaped (\n \t \r \b \f, the others and DEL as \u00XX), and a byte that
 * is not UTF-8 written as U+FFFD, so that the output always parses. */
void json_put_string(FILE *f, const char *s);

/* json_printable of a C string, returned by value so that a message can quote several:
 *     fprintf(stderr, "'%s' is not '%s'\n", json_shown(a).s, json_shown(b).s); */
typedef struct { char s[160]; } JsonShown;
JsonShown json_shown(const char *s);

#endif /* MOEKIT_JSON_H */
