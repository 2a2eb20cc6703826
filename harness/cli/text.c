/*
 * text.c: moekit tokenize, and streaming decoded text (see text.h).
 *
 *   moekit tokenize --model DIR [--file F] [--json] [--decode]
 *
 * Plain form: one output line per input line. A line is encoded without its newline, a
 * "\n" (backslash, n) in it standing for a newline; ids are printed space-separated.
 * --decode reads such id lines and prints text, a newline in it as "\n". --json takes a
 * JSON array of strings (exact text: any character, newlines included) and prints a JSON
 * array of id arrays, one per line; with --decode, the reverse.
 */
#define _POSIX_C_SOURCE 200809L
#include "text.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "clock.h"
#include "file.h"
#include "json.h"

#define MAX_INPUT (1u << 30)

Tokenizer *model_tokenizer(const char *dir, char *err, size_t errlen) {
    char path[4096];
    err[0] = '\0';
    if (snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: the directory name is too long", dir);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return NULL; /* none: the model takes ids (or bytes) */
    fclose(f);
    return tokenizer_load(path, err, errlen);
}

/* ------------------------------------------------------------------------------------
 * streaming text out
 * ---------------------------------------------------------------------------------- */

void text_stream_put(TextStream *s, const char *bytes, size_t len, FILE *f) {
    char out[3 * (sizeof s->pending + 16)];
    for (size_t i = 0; i < len;) { /* in small steps, through pending */
        size_t take = len - i < 16 ? len - i : 16, used;
        char in[sizeof s->pending + 16];
        memcpy(in, s->pending, s->n), memcpy(in + s->n, bytes + i, take);
        size_t n = s->n + take, o = utf8_lossy(in, n, 0, out, &used);
        fwrite(out, 1, o, f);
        s->n = n - used; /* at most 3 bytes: the start of a character */
        memcpy(s->pending, in + used, s->n);
        i += take;
    }
    fflush(f);
}

void text_stream_end(TextStream *s, FILE *f) {
    char out[3 * sizeof s->pending];
    fwrite(out, 1, utf8_lossy(s->pending, s->n, 1, out, NULL), f);
    s->n = 0;
    fflush(f);
}

/* ------------------------------------------------------------------------------------
 * moekit tokenize: input
 * ---------------------------------------------------------------------------------- */

/* The whole of --file, or of stdin. NULL with a message printed. */
static char *read_input(const Args *a, size_t *len) {
    char err[512];
    if (a->text_file) {
        char *text = read_file(a->text_file, MAX_INPUT, len, err, sizeof err);
        if (!text) fprintf(stderr, "moekit: %s\n", err);
        return text;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, stdin);
        if (n < cap - 1) break;
        char *p = cap < MAX_INPUT ? realloc(buf, 2 * cap) : NULL;
        if (!p) free(buf);
        buf = p, cap *= 2;
    }
    if (!buf) return fprintf(stderr, "moekit: tokenize: stdin: too large or out of memory\n"), NULL;
    if (ferror(stdin)) {
        fprintf(stderr, "moekit: tokenize: cannot read stdin (%s)\n", strerror(errno));
        return free(buf), NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* line[0 .. len) with each "\n" (two characters) made a newline, in place; new length. */
static size_t unescape_newlines(char *line, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\' && i + 1 < len && line[i + 1] == 'n') line[o++] = '\n', i++;
        else line[o++] = line[i];
    }
    return o;
}

static int is_separator(char c) { return c == ' ' || c == '\t' || c == ',' || c == '\r'; }

/* "12 7 99" -> ids, each checked against the tokenizer. 0, or -1 with a message. */
static int parse_id_line(const Tokenizer *t, const char *line, size_t len, size_t lineno,
                         TokenIds *ids) {
    for (size_t i = 0, j; i < len; i = j) {
        if (is_separator(line[i])) {
            j = i + 1;
            continue;
        }
        int digits = 1;
        long v = 0;
        for (j = i; j < len && !is_separator(line[j]); j++) {
            digits &= line[j] >= '0' && line[j] <= '9' && v < (1L << 30);
            if (digits) v = 10 * v + (line[j] - '0');
        }
        size_t k;
        if (!digits || !tokenizer_token_bytes(t, (int)v, &k)) {
            char shown[80];
            json_printable(shown, sizeof shown, line + i, j - i);
            fprintf(stderr, "moekit: tokenize --decode: line %zu: '%s' is not a token id 0..%d\n",
                    lineno, shown, tokenizer_size(t) - 1);
            return -1;
        }
        if (token_ids_push(ids, (int)v)) return fprintf(stderr, "moekit: out of memory\n"), -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * moekit tokenize: output
 * ---------------------------------------------------------------------------------- */

static void print_ids(const TokenIds *ids, const char *sep) {
    for (size_t i = 0; i < ids->n; i++) printf("%s%d", i ? sep : "", ids->ids[i]);
}

/* ids -> text with invalid UTF-8 as U+FFFD (as Hugging Face's decode). NULL: printed. */
static char *decode_lossy(const Tokenizer *t, const TokenIds *ids, size_t *len) {
    char err[256];
    size_t n;
    char *raw = tokenizer_decode(t, ids->ids, ids->n, &n, err, sizeof err);
    char *text = raw ? malloc(3 * n + 1) : NULL;
    if (!text) {
        fprintf(stderr, "moekit: tokenize --decode: %s\n", raw ? "out of memory" : err);
        return free(raw), NULL;
    }
    *len = utf8_lossy(raw, n, 1, text, NULL);
    free(raw);
    return text;
}

/* A JSON string, escaped as JavaScript's JSON.stringify does (the reference's output). */
static void print_json_string(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\b') fputs("\\b", stdout);
        else if (c == '\f') fputs("\\f", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* ------------------------------------------------------------------------------------
 * moekit tokenize: the four forms
 * ---------------------------------------------------------------------------------- */

/* One input line (encode or decode) -> one output line. */
static int tokenize_line(const Tokenizer *t, const Args *a, char *line, size_t len, size_t lineno) {
    TokenIds ids = {0};
    char err[256];
    int rc = 0;
    if (a->decode) {
        char *text = NULL;
        size_t n;
        rc = parse_id_line(t, line, len, lineno, &ids) || !(text = decode_lossy(t, &ids, &n));
        for (size_t i = 0; rc == 0 && i < n; i++)
            text[i] == '\n' ? fputs("\\n", stdout) : putchar(text[i]);
        free(text);
    } else if ((rc = tokenizer_encode(t, line, unescape_newlines(line, len), &ids, err, sizeof err)))
        fprintf(stderr, "moekit: tokenize: line %zu: %s\n", lineno, err);
    else
        print_ids(&ids, " ");
    if (rc == 0) putchar('\n');
    free(ids.ids);
    return rc;
}

static int tokenize_lines(const Tokenizer *t, const Args *a, char *text, size_t len, size_t *bytes) {
    size_t lineno = 1;
    for (size_t at = 0; at < len; lineno++) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (tokenize_line(t, a, text + at, end - at, lineno)) return 1;
        *bytes += end - at;
        at = end + 1;
    }
    return 0;
}

/* --chat: one conversation, {"messages": [{"role": ..., "content": ...}, ...],
 * "enable_thinking": true}, rendered with the chat template. The prompt's bytes go to
 * *bytes; 0, or -1 with a message printed. */
static int encode_chat(const Tokenizer *t, const JsonValue *v, size_t i, TokenIds *ids, size_t *bytes) {
    const JsonValue *msgs = json_get(v, "messages");
    int think = 1;
    if (!msgs || msgs->type != JSON_ARRAY || msgs->count == 0 || msgs->count > 1000000 ||
        (json_get(v, "enable_thinking") && json_bool(json_get(v, "enable_thinking"), &think)))
        return fprintf(stderr, "moekit: tokenize --chat: element %zu must be {\"messages\": [...], "
                               "\"enable_thinking\": true|false}\n", i), -1;
    ChatMessage *m = calloc(msgs->count, sizeof *m);
    if (!m) return fprintf(stderr, "moekit: out of memory\n"), -1;
    for (size_t k = 0; k < msgs->count; k++) {
        const char *role = json_string(json_get(&msgs->items[k], "role"));
        const JsonValue *content = json_get(&msgs->items[k], "content");
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) ||
            !content || content->type != JSON_STRING) {
            fprintf(stderr, "moekit: tokenize --chat: element %zu, message %zu: a role system, "
                            "user or assistant and a string content are needed\n", i, k);
            return free(m), -1;
        }
        m[k] = (ChatMessage){role, content->string, content->length};
    }
    size_t len;
    char err[256];
    char *text = chat_render(m, (int)msgs->count, think, &len);
    free(m);
    int rc = !text ? -1 : tokenizer_encode(t, text, len, ids, err, sizeof err);
    if (rc) fprintf(stderr, "moekit: tokenize --chat: element %zu: %s\n", i, text ? err : "out of memory");
    *bytes += text ? len : 0;
    free(text);
    return rc;
}

/* The JSON forms: an array of strings <-> an array of id arrays, one element a line. */
static int tokenize_json(const Tokenizer *t, const Args *a, const char *text, size_t len, size_t *bytes) {
    char err[256];
    JsonValue *root = json_parse(text, len, err, sizeof err);
    if (!root) return fprintf(stderr, "moekit: tokenize --json: %s\n", err), 1;
    int rc = root->type == JSON_ARRAY ? 0 : 1;
    if (rc) fprintf(stderr, "moekit: tokenize --json: the input must be a JSON array, this is a JSON %s\n",
                    json_type_name(root->type));
    for (size_t i = 0; rc == 0 && i < root->count; i++) {
        const JsonValue *v = &root->items[i];
        TokenIds ids = {0};
        fputs(i ? ",\n " : "[", stdout);
        if (a->chat)
            rc = encode_chat(t, v, i, &ids, bytes) ? 1 : (putchar('['), print_ids(&ids, ","), putchar(']'), 0);
        else if (!a->decode && v->type != JSON_STRING)
            rc = fprintf(stderr, "moekit: tokenize --json: element %zu is a %s, not a string\n", i,
                         json_type_name(v->type)) > 0;
        else if (!a->decode && tokenizer_encode(t, v->string, v->length, &ids, err, sizeof err))
            rc = fprintf(stderr, "moekit: tokenize --json: element %zu: %s\n", i, err) > 0;
        else if (!a->decode)
            putchar('['), print_ids(&ids, ","), putchar(']');
        for (size_t j = 0; a->decode && rc == 0 && j < json_len(v); j++) {
            int64_t id;
            size_t k;
            if (json_int64(json_at(v, j), &id) || id < 0 || id > INT32_MAX ||
                !tokenizer_token_bytes(t, (int)id, &k))
                rc = fprintf(stderr, "moekit: tokenize --json --decode: element %zu, item %zu is not a "
                                     "token id 0..%d\n", i, j, tokenizer_size(t) - 1) > 0;
            else if (token_ids_push(&ids, (int)id))
                rc = fprintf(stderr, "moekit: out of memory\n") > 0;
        }
        if (a->decode && rc == 0 && v->type != JSON_ARRAY)
            rc = fprintf(stderr, "moekit: tokenize --json --decode: element %zu is a %s, not an array "
                                 "of ids\n", i, json_type_name(v->type)) > 0;
        size_t n;
        char *s = a->decode && rc == 0 ? decode_lossy(t, &ids, &n) : NULL;
        *bytes += a->decode ? (s ? n : 0) : a->chat ? 0 : v->length;
        if (a->decode && rc == 0) rc = s ? (print_json_string(s, n), 0) : 1;
        free(s);
        free(ids.ids);
    }
    if (rc == 0) fputs(root->count ? "]\n" : "[]\n", stdout);
    json_free(root);
    return rc;
}

int cmd_tokenize(const Args *a) {
    char err[1024];
    double t0 = now_seconds();
    Tokenizer *t = model_tokenizer(a->model_dir, err, sizeof err);
    if (!t) {
        if (!err[0])
            snprintf(err, sizeof err, "%s/tokenizer.json: cannot open it (%s)", a->model_dir,
                     strerror(errno));
        fprintf(stderr, "moekit: %s\n", err);
        return 1;
    }
    size_t len;
    char *text = read_input(a, &len);
    double t1 = now_seconds();
    size_t bytes = 0; /* of text, encoded or decoded */
    int rc = !text ? 1
           : a->json ? tokenize_json(t, a, text, len, &bytes) : tokenize_lines(t, a, text, len, &bytes);
    double t2 = now_seconds();
    free(text);
    if (rc == 0) /* after the output, on stderr, as generate's tokens/s */
        fprintf(stderr, "moekit: tokenizer.json loaded in %.3f s; %zu bytes of text %s in %.3f s "
                        "(%.2f MB/s)\n", t1 - t0, bytes, a->decode ? "decoded" : "encoded", t2 - t1,
                bytes / 1e6 / (t2 - t1 + 1e-12));
    tokenizer_free(t);
    if (fflush(stdout) != 0)
        return fprintf(stderr, "moekit: tokenize: writing the output failed\n"), 1;
    return rc;
}
