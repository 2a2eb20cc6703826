/*
 * fuzz_config.c: libFuzzer target for config.json (config_parse, and the JSON parser).
 *
 * The input is the text of a config.json. config_parse must accept it with a config a
 * model can be built from (the sizes the loader and the lessons rely on are in range and
 * consistent), or reject it with one line naming the file.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void check_config(const ModelConfig *c)
{
    CHECK(c->vocab_size >= 1 && c->hidden_size >= 1 && c->num_hidden_layers >= 1);
    CHECK(c->num_attention_heads >= 1 && c->num_key_value_heads >= 1);
    CHECK(c->num_attention_heads % c->num_key_value_heads == 0);
    CHECK(c->head_dim >= 2 && c->head_dim % 2 == 0);
    CHECK(c->num_experts >= 0 && c->decoder_sparse_step >= 1);
    CHECK(c->num_experts == 0 ||
          (c->num_experts_per_tok >= 1 && c->num_experts_per_tok <= c->num_experts));
    CHECK((long long)c->vocab_size * c->hidden_size <= INT_MAX);
    CHECK((long long)c->num_attention_heads * c->head_dim * c->hidden_size <= INT_MAX);
    CHECK(c->rms_norm_eps > 0 && c->rope_theta > 0 && c->max_position_embeddings >= 1);
    CHECK(c->mlp_only_layers != NULL);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        int sparse = !c->mlp_only_layers[l] && c->num_experts > 0 &&
                     (l + 1) % c->decoder_sparse_step == 0;
        CHECK(sparse ? c->moe_intermediate_size >= 1 : c->intermediate_size >= 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1); /* exact size: no terminator to lean on */
    CHECK(text);
    memcpy(text, data, size);
    ModelConfig c;
    char err[400];
    err[0] = '\0';
    if (config_parse(&c, text, size, "config.json", err, sizeof err) == 0) {
        check_config(&c);
        config_free(&c);
    } else {
        CHECK(strncmp(err, "config.json: ", 13) == 0 && err[13] != '\0');
        CHECK(strchr(err, '\n') == NULL);
        CHECK(c.mlp_only_layers == NULL);
    }
    free(text);
    return 0;
}
