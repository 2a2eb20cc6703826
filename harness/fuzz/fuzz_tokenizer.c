/*
 * fuzz_tokenizer.c: libFuzzer target for tokenizer.json (tokenizer_parse) and encode/decode.
 *
 * The input is the text of a tokenizer.json, then optionally a NUL byte and a text to
 * encode. tokenizer_parse must accept the file or reject it with one line naming it. An
 * accepted one must encode the text (or refuse it, when it is not UTF-8, with one line)
 * into ids that are all tokens, and decode them again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void check_one_line(const char *err, const char *prefix)
{
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0 && err[strlen(prefix)] != '\0');
    CHECK(strchr(err, '\n') == NULL);
}

static void encode_decode(const Tokenizer *t, const char *text, size_t len)
{
    TokenIds ids = {0};
    char err[400];
    err[0] = '\0';
    if (tokenizer_encode(t, text, len, &ids, err, sizeof err) != 0) {
        check_one_line(err, "");
        free(ids.ids);
        return;
    }
    size_t k, n;
    for (size_t i = 0; i < ids.n; i++) CHECK(tokenizer_token_bytes(t, ids.ids[i], &k) != NULL);
    char *back = tokenizer_decode(t, ids.ids, ids.n, &n, err, sizeof err);
    CHECK(back != NULL);
    char *fixed = malloc(3 * n + 1);
    CHECK(fixed);
    size_t used, m = utf8_lossy(back, n, 1, fixed, &used);
    CHECK(used == n && m <= 3 * n);
    free(fixed);
    free(back);
    free(ids.ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    char *json = malloc(json_len ? json_len : 1); /* exact size: no terminator to lean on */
    CHECK(json);
    memcpy(json, data, json_len);
    char err[400];
    err[0] = '\0';
    Tokenizer *t = tokenizer_parse(json, json_len, "tokenizer.json", err, sizeof err);
    if (!t) {
        check_one_line(err, "tokenizer.json: ");
    } else {
        const char *text = nul ? (const char *)nul + 1 : "Hello <|im_end|> w\xc3\xb6rld 123\n";
        encode_decode(t, text, nul ? size - json_len - 1 : strlen(text));
        tokenizer_free(t);
    }
    free(json);
    return 0;
}
