/*
 * model_load.h: builds a Model (moekit.h) from a Hugging Face model directory
 * (config.json + model.safetensors, or model.safetensors.index.json + shards), or from
 * tensors already open (the lesson 08 fixtures).
 *
 * Float32 tensors that are aligned in the file are used in place (mmapped, no copy);
 * BF16/F16 tensors, and misaligned F32 ones, are converted to float32 once at load.
 * Every problem is one line naming the file or the tensor and what is wrong.
 *
 * Checked before any weight is used: config.json's fields (types, ranges, consistency, and
 * that no matrix or buffer outgrows the int indices of the lessons), each tensor's shape
 * against the config, the shard index (every shard opens, holds what the index maps to it,
 * no tensor in two shards, names stay inside the directory). NaN/Inf: rejected in the norm
 * weights, biases, router and shared-expert gates, the embedding and the LM head (small,
 * or read whole for every token: one NaN there spoils every output); not scanned in the
 * projection and expert matrices (most of a checkpoint, used in place from the mapping),
 * where a NaN surfaces as non-finite logits, which the CLI reports.
 */
#ifndef MOEKIT_MODEL_LOAD_H
#define MOEKIT_MODEL_LOAD_H

#include <stddef.h>

#include "json.h"
#include "moekit.h"
#include "safetensors.h"

/* Run-time choices that are not in config.json. Zero means "the default". */
typedef struct {
    int max_seq;    /* KV cache positions; default min(max_position_embeddings, 2048) */
    int max_tokens; /* tokens per model_forward call; default 64 */
    int top_k;      /* override num_experts_per_tok; 0 keeps the config's */
    int n_disabled; /* --disable-expert L:E pairs */
    const int *disabled_layer, *disabled_expert;
} ModelOptions;

/* Parses config.json text into c (c->mlp_only_layers is malloc'd: config_free).
 * Accepts the transformers 4.x and 5.x spellings. what names the file in messages. */
int config_parse(ModelConfig *c, const char *text, size_t len, const char *what, char *err,
                 size_t errlen);
void config_free(ModelConfig *c);

/* Loads dir/config.json and the weights. 0, or -1 with err set; on failure m is empty. */
int model_load_dir(Model *m, const char *dir, const ModelOptions *o, char *err, size_t errlen);

/* Builds m from a parsed config and tensors named "<prefix><HF key>" in st (which must
 * outlive m). Used for fixtures that carry a whole model. Takes ownership of *c. */
int model_build(Model *m, ModelConfig *c, const SafeTensors *st, const char *prefix,
                const ModelOptions *o, char *err, size_t errlen);

void model_free(Model *m);

#endif /* MOEKIT_MODEL_LOAD_H */
