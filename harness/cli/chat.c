/*
 * chat.c: moekit chat, with Qwen3's chat template (see chat.h).
 *
 *   moekit chat --model DIR [--system TEXT] [--no-think] [-n N] [sampling]
 *
 * Each line read is a user turn. The whole conversation is rendered with the template and
 * encoded every turn, and the KV cache keeps whatever prefix of it is already there: the
 * system prompt and the earlier turns are not run again. (Not all of the last reply stays:
 * the template drops an earlier turn's <think> part, and what the model wrote and what is
 * rendered can tokenize differently, so the cache is reused up to the first id that
 * differs, as llama.cpp's server does.) Replies stop at <|im_end|>, at an end-of-text id,
 * after -n tokens or at the context. /reset starts over, /exit (or end of input) quits.
 */
#define _POSIX_C_SOURCE 200809L
#include "chat.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "json_file.h"
#include "text.h"

/* ------------------------------------------------------------------------------------
 * the template
 * ---------------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int failed;
} Buf;

static void put(Buf *b, const char *s, size_t len) {
    if (b->failed) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = 2 * (b->n + len + 1);
        char *p = realloc(b->s, cap);
        if (!p) return (void)(b->failed = 1);
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* The last occurrence of needle in s[0 .. len), NULL if none. */
static const char *find_last(const char *s, size_t len, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = len >= k ? len - k + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

static const char *find_first(const char *s, size_t len, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= len; i++)
        if (!memcmp(s + i, needle, k)) return s + i;
    return NULL;
}

/* Jinja's lstrip('\n') / rstrip('\n') on s[0 .. *len). */
static const char *lstrip_nl(const char *s, size_t *len) {
    while (*len && *s == '\n') s++, (*len)--;
    return s;
}
static void rstrip_nl(const char *s, size_t *len) {
    while (*len && s[*len - 1] == '\n') (*len)--;
}

/* An assistant turn: the template's split of content at </think> into the reasoning and
 * the answer, and, after the last user message, the reasoning kept in <think> tags. */
static void render_assistant(Buf *b, const ChatMessage *m, int after_last_query, int last) {
    const char *content = m->content, *reasoning = "";
    size_t clen = m->length, rlen = 0;
    const char *end = find_last(m->content, m->length, "</think>");
    if (end) {
        content = end + 8, clen = m->length - (size_t)(content - m->content);
        content = lstrip_nl(content, &clen); /* split('</think>')[-1].lstrip('\n') */
        const char *first = find_first(m->content, m->length, "</think>");
        rlen = (size_t)(first - m->content); /* split('</think>')[0].rstrip('\n') */
        rstrip_nl(m->content, &rlen);
        const char *open = find_last(m->content, rlen, "<think>"); /* .split('<think>')[-1] */
        reasoning = open ? open + 7 : m->content;
        rlen -= (size_t)(reasoning - m->content);
        reasoning = lstrip_nl(reasoning, &rlen);
    }
    puts_(b, "<|im_start|>assistant\n");
    if (after_last_query && (last || rlen)) {
        reasoning = lstrip_nl(reasoning, &rlen); /* reasoning_content.strip('\n') */
        rstrip_nl(reasoning, &rlen);
        puts_(b, "<think>\n");
        put(b, reasoning, rlen);
        puts_(b, "\n</think>\n\n");
        content = lstrip_nl(content, &clen);
    }
    put(b, content, clen);
    puts_(b, "<|im_end|>\n");
}

/* The index the template calls last_query_index: the last user message that is not a
 * tool response. */
static int last_query(const ChatMessage *m, int n) {
    for (int i = n - 1; i >= 0; i--) {
        if (strcmp(m[i].role, "user")) continue;
        int tool = m[i].length >= 31 && !strncmp(m[i].content, "<tool_response>", 15) &&
                   !memcmp(m[i].content + m[i].length - 16, "</tool_response>", 16);
        if (!tool) return i;
    }
    return n - 1;
}

char *chat_render(const ChatMessage *m, int n, int enable_thinking, size_t *len) {
    Buf b = {0};
    int q = last_query(m, n);
    for (int i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "assistant")) {
            render_assistant(&b, &m[i], i > q, i == n - 1);
            continue;
        }
        puts_(&b, "<|im_start|>");
        puts_(&b, m[i].role);
        puts_(&b, "\n");
        put(&b, m[i].content, m[i].length);
        puts_(&b, "<|im_end|>\n");
    }
    puts_(&b, "<|im_start|>assistant\n");
    if (!enable_thinking) puts_(&b, "<think>\n\n</think>\n\n");
    if (b.failed) return free(b.s), NULL;
    *len = b.n;
    return b.s;
}

/* ------------------------------------------------------------------------------------
 * where generation stops
 * ---------------------------------------------------------------------------------- */

/* eos_token_id of dir/name (a number, a list of numbers, null or absent) added to ids. */
static int eos_of(const char *dir, const char *name, int *ids, int *n, int max, char *err,
                  size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    JsonValue *root; /* generation_config.json is optional; config.json was read already */
    if (json_file_optional(dir, name, &root, err, errlen) != 0) return -1;
    if (!root) return 0;
    const JsonValue *e = json_get(root, "eos_token_id");
    size_t count = e && e->type == JSON_ARRAY ? e->count : 1;
    int rc = 0;
    for (size_t i = 0; e && e->type != JSON_NULL && i < count && rc == 0; i++) {
        int64_t id;
        if (json_int64(e->type == JSON_ARRAY ? &e->items[i] : e, &id) != 0 || id < 0 ||
            id > 1 << 30) {
            snprintf(err, errlen, "%s: eos_token_id must be a token id or a list of them", path);
            rc = -1;
        } else if (*n < max) {
            ids[(*n)++] = (int)id;
        }
    }
    json_free(root);
    return rc;
}

int stop_ids(const char *dir, const Tokenizer *tok, int *ids, int max, char *err, size_t errlen) {
    int n = 0;
    if (eos_of(dir, "generation_config.json", ids, &n, max, err, errlen) ||
        eos_of(dir, "config.json", ids, &n, max, err, errlen))
        return -1;
    static const char *const END[] = {"<|im_end|>", "<|endoftext|>"};
    for (int i = 0; tok && i < 2 && n < max; i++)
        if (tokenizer_added_id(tok, END[i]) >= 0) ids[n++] = tokenizer_added_id(tok, END[i]);
    return n;
}

/* ------------------------------------------------------------------------------------
 * the loop
 * ---------------------------------------------------------------------------------- */

typedef struct {
    ChatMessage *m;
    int n, cap;
    int *cache; /* (ctx) the id at each position of the KV cache */
    int cached; /* positions of cache that hold the conversation */
} Chat;

static int chat_add(Chat *c, const char *role, const char *text, size_t len) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        ChatMessage *p = realloc(c->m, sizeof *p * (size_t)cap);
        if (!p) return -1;
        c->m = p, c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    c->m[c->n++] = (ChatMessage){role, copy, len};
    return 0;
}

static void chat_pop(Chat *c) { free((char *)c->m[--c->n].content); }

static int is_stop(int id, const int *stop, int n_stop) {
    for (int i = 0; i < n_stop; i++)
        if (stop[i] == id) return 1;
    return 0;
}

/* The conversation so far plus the generation prompt, as ids; NULL with a message. */
static int *render_ids(const Chat *c, const Tokenizer *tok, int think, int *n) {
    size_t len;
    char err[256];
    char *text = chat_render(c->m, c->n, think, &len);
    TokenIds ids = {0};
    if (!text || tokenizer_encode(tok, text, len, &ids, err, sizeof err)) {
        fprintf(stderr, "moekit: chat: %s\n", text ? err : "out of memory");
        free(text), free(ids.ids);
        return NULL;
    }
    free(text);
    *n = (int)ids.n;
    return ids.ids;
}

/* One reply: prefill what the cache lacks of the prompt, then sample, stream and feed
 * back tokens until a stop id, -n or the context. The reply's text goes in *reply. */
static int reply(const Args *a, Runner *r, const Tokenizer *tok, Chat *c, Sampler *s,
                 const int *stop, int n_stop, Buf *out) {
    int n, ctx = r->model.state.max_seq, next;
    int *ids = render_ids(c, tok, !a->no_think, &n);
    if (!ids) return -1;
    if (n >= ctx) {
        fprintf(stderr, "moekit: chat: the conversation is %d tokens, the context %d: /reset "
                        "starts over (or --ctx)\n", n, ctx);
        return free(ids), 1;
    }
    int p = 0; /* the cache holds ids[0 .. p) already */
    while (p < c->cached && p < n - 1 && c->cache[p] == ids[p]) p++;
    memcpy(c->cache, ids, sizeof *ids * (size_t)n);
    int rc = runner_prefill(r, ids + p, n - p, p, &next, s);
    free(ids);
    c->cached = n;
    TextStream ts = {0};
    int limit = a->n_new_set ? a->n_new : ctx;
    for (int i = 0; rc == 0 && i < limit && !is_stop(next, stop, n_stop); i++) {
        size_t k;
        const char *bytes = tokenizer_token_bytes(tok, next, &k);
        if (bytes) text_stream_put(&ts, bytes, k, stdout), put(out, bytes, k);
        if (c->cached == ctx) {
            fprintf(stderr, "\nmoekit: chat: the context (%d positions) is full: /reset starts "
                            "over (or --ctx)", ctx);
            break;
        }
        c->cache[c->cached] = next;
        rc = runner_step(r, next, c->cached++, &next, s);
    }
    text_stream_end(&ts, stdout);
    putchar('\n');
    fflush(stdout);
    return rc == 0 && !out->failed ? 0 : -1;
}

/* One line of input: a command, or a user turn and its reply. 0: go on, 1: quit, -1: a
 * failure (a lesson function unfinished, out of memory). */
static int chat_line(const Args *a, Runner *r, const Tokenizer *tok, Chat *c, Sampler *s,
                     const int *stop, int n_stop, char *line, size_t len) {
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (!strcmp(line, "/exit")) return 1;
    if (!strcmp(line, "/reset")) {
        while (c->n > (a->system ? 1 : 0)) chat_pop(c);
        c->cached = 0;
        return fprintf(stderr, "moekit: chat: the conversation starts over\n"), 0;
    }
    size_t bad = json_utf8_check(line, len);
    if (len == 0) return 0;
    if (bad < len) return fprintf(stderr, "moekit: chat: invalid UTF-8 at byte %zu: not sent\n", bad), 0;
    if (chat_add(c, "user", line, len)) return fprintf(stderr, "moekit: out of memory\n"), -1;
    Buf out = {0};
    int rc = reply(a, r, tok, c, s, stop, n_stop, &out);
    if (rc > 0) chat_pop(c); /* did not fit: the turn is not kept */
    else if (rc == 0) {
        char *fixed = malloc(3 * out.n + 1);
        size_t n = fixed ? utf8_lossy(out.s ? out.s : "", out.n, 1, fixed, NULL) : 0;
        rc = !fixed || chat_add(c, "assistant", fixed, n) ? -1 : 0;
        free(fixed);
    }
    free(out.s);
    return rc < 0 ? -1 : 0;
}

int cmd_chat(const Args *a, Runner *r, const Tokenizer *tok) {
    char err[512];
    int stop[64];
    int n_stop = stop_ids(a->model_dir, tok, stop, 64, err, sizeof err);
    if (n_stop < 0) return fprintf(stderr, "moekit: %s\n", err), 1;
    if (tokenizer_added_id(tok, "<|im_start|>") < 0 || tokenizer_added_id(tok, "<|im_end|>") < 0) {
        fprintf(stderr, "moekit: chat: %s/tokenizer.json has no <|im_start|> and <|im_end|>: not "
                        "a ChatML (Qwen) model\n", a->model_dir);
        return 1;
    }
    Chat c = {0};
    c.cache = malloc(sizeof *c.cache * (size_t)r->model.state.max_seq);
    if (!c.cache || (a->system && chat_add(&c, "system", a->system, strlen(a->system))))
        return free(c.cache), fprintf(stderr, "moekit: out of memory\n"), 1;
    Sampler s = {a->temperature, a->top_p, a->seed * 0x9E3779B97F4A7C15ULL + 1};
    int tty = isatty(0);
    fprintf(stderr, "moekit chat: %s, thinking %s. /reset starts over, /exit or Ctrl-D quits.\n",
            a->model_dir, a->no_think ? "off" : "on");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int state = 0;
    while (state == 0 && (tty ? fputs("> ", stderr) : 0, (len = getline(&line, &cap, stdin)) >= 0))
        state = chat_line(a, r, tok, &c, &s, stop, n_stop, line, (size_t)len);
    free(line);
    while (c.n) chat_pop(&c);
    free(c.m);
    free(c.cache);
    return state < 0 ? 1 : 0;
}
