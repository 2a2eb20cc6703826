/*
 * fuzz_model.c: libFuzzer target for the model loader (config.json + weights -> Model)
 * and one short forward pass through the reference solutions.
 *
 * The input is the text of a config.json, a NUL byte, then a .safetensors file holding
 * the weights under their Hugging Face names. model_build must reject any mismatch
 * between the two (missing tensor, wrong shape, wrong dtype, NaN/Inf where it is checked)
 * with one line, or build a model that runs two tokens without a sanitizer report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    if (!nul)
        return 0;
    size_t clen = (size_t)(nul - data), wlen = size - clen - 1;
    char *config = malloc(clen ? clen : 1);
    unsigned char *weights = malloc(wlen ? wlen : 1);
    CHECK(config && weights);
    memcpy(config, data, clen);
    memcpy(weights, nul + 1, wlen);
    char err[600];
    ModelConfig c;
    SafeTensors st;
    if (config_parse(&c, config, clen, "config.json", err, sizeof err) == 0) {
        if (st_open_memory(&st, weights, wlen, "model.safetensors", err, sizeof err) == 0) {
            ModelOptions o = {.max_seq = 8, .max_tokens = 2};
            Model m;
            if (model_build(&m, &c, &st, "", &o, err, sizeof err) == 0) {
                int V = m.config.vocab_size, C = m.config.hidden_size;
                int ids[2] = {0, V - 1};
                float *x = malloc(sizeof(float) * 2 * (size_t)C);
                float *logits = malloc(sizeof(float) * 2 * (size_t)V);
                CHECK(x && logits);
                model_forward(&m, ids, 2, 0, x, logits);
                model_forward(&m, ids, 1, 2, x, logits); /* one decode step on the cache */
                free(x);
                free(logits);
                model_free(&m);
            } else {
                CHECK(err[0] && strchr(err, '\n') == NULL);
            }
            st_close(&st);
        } else {
            config_free(&c);
        }
    }
    free(config);
    free(weights);
    return 0;
}
