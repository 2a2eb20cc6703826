/*
 * fuzz_args.c: libFuzzer target for the moekit command line (args_parse, parse_ids).
 *
 * The input is argv[1..] separated by NUL bytes. args_parse must accept the command line
 * with every value in range, or reject it (one message, exit 2 in the CLI); the ids of an
 * accepted --ids are parsed against a 256-token vocabulary the same way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "json.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* one heap copy per argument, each exactly its length + NUL */
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc] = malloc(sizeof "moekit");
    CHECK(argv[argc]);
    memcpy(argv[argc++], "moekit", sizeof "moekit");
    for (size_t start = 0; start <= size && argc <= MAX_ARGS;) {
        const uint8_t *nul = memchr(data + start, '\0', size - start);
        size_t len = nul ? (size_t)(nul - (data + start)) : size - start;
        char *arg = malloc(len + 1);
        CHECK(arg);
        memcpy(arg, data + start, len);
        arg[len] = '\0';
        argv[argc++] = arg;
        start += len + 1;
    }
    argv[argc] = NULL;
    Args a;
    int rc = args_parse(&a, argc, argv);
    CHECK(rc >= -1 && rc <= 1);
    if (rc == 0) {
        CHECK(a.model_dir && a.model_dir[0]);
        CHECK(a.n_new >= 0 && a.temperature >= 0 && a.top_p >= 0 && a.top_p <= 1);
        CHECK(a.model.n_disabled >= 0 && a.model.n_disabled <= MAX_DISABLED);
        CHECK(a.model.top_k >= 0 && a.model.max_seq >= 0);
        if (a.prompt) CHECK(a.prompt[0] && json_utf8_check(a.prompt, strlen(a.prompt)) == strlen(a.prompt));
        if (a.ids_text) {
            int *ids, n;
            if (parse_ids(a.ids_text, 256, &ids, &n) == 0) {
                CHECK(n >= 1);
                for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < 256);
                free(ids);
            } else {
                CHECK(ids == NULL);
            }
        }
    }
    for (int i = 0; i < argc; i++) free(argv[i]);
    return 0;
}
