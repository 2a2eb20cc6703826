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
#include "typed_model.h"

/* Run-time choices that are not in config.json. Zero means "the default". */
typedef struct {
    int max_seq;    /* KV cache positions; default min(max_position_embeddings, 2048) */
    int max_tokens; /* tokens per model_forward call; default 64 */
    int top_k;      /* override num_experts_per_tok; 0 keeps the config's */
    /* lesson 07's capacity limit: each expert takes at most ceil(capacity_factor * T * k / E)
     * rows of a model_forward call of T tokens; 0 (the default): no limit, dropless */
    float capacity_factor;
    int n_disabled; /* --disable-expert L:E pairs */
    const int *disabled_layer, *disabled_expert;
    /* expert parallelism (build/moekit-mpi): with ep_size > 0, load only the routed experts
     * ep_rank*E/ep_size .. (ep_rank+1)*E/ep_size - 1; the others stay all NULL */
    int ep_rank, ep_size;
    /* NULL: every weight as float32, for the lessons' model_forward. Else the projection
     * and expert matrices and the LM head as typed tensors (typed_model.h) for
     * typed_forward: "auto" keeps each in its file's type (bf16/f16 in place), or one of
     * "f32", "bf16", "f16", "q8_0", "q4_0" converts them at load. */
    const char *weights;
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

/* A run state for m's weights (moekit.h), for max_seq positions and max_tokens tokens per
 * forward call: the loader builds m->state with it; a second one serves a second sequence
 * on the same weights. 0, or -1 (out of memory; s is then empty). */
int run_state_init(RunState *s, const Model *m, int max_seq, int max_tokens);
void run_state_free(RunState *s, int n_layers);

/* The typed matrices and their run state when the model was loaded with
 * ModelOptions.weights, else NULL. Freed by model_free. */
const TypedWeights *model_typed(const Model *m, TypedRun **run);

/* The safetensors files of the checkpoint in dir (model.safetensors, or the shards that
 * model.safetensors.index.json names), opened and checked as model_load_dir opens them
 * (moekit quantize reads them). 0, or -1 with err set. */
typedef struct {
    SafeTensors *files;
    int n;
} ModelFiles;
int model_files_open(ModelFiles *f, const char *dir, char *err, size_t errlen);
void model_files_close(ModelFiles *f);

#endif /* MOEKIT_MODEL_LOAD_H */
