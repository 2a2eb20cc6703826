/*
 * typed_model.h: the model's matrices as typed tensors (weights.h), and the forward pass
 * that multiplies by them.
 *
 * `moekit ... --weights TYPE` loads every projection and expert matrix, and the LM head, as
 * one type (auto: each in its file's type, bf16 and f16 in place from the mapping; or f32,
 * bf16, f16, q8_0, q4_0, converted at load). The embedding stays in its file's type, in
 * place (one row is read per token, widened to float32 then). The small weights stay
 * float32 in Model (the norms, biases and the router gate): quantizing them saves almost
 * nothing, and the router's top-k is the choice most sensitive to rounding.
 *
 * Weights and run state are apart, as llama2.c's TransformerWeights and RunState:
 * TypedWeights holds only the matrices (built and freed by the loader, model_load.h);
 * typed_forward takes Model for the configs, the small float32 weights and the RunState (the
 * KV caches and the scratch), and a TypedRun for its own scratch.
 *
 * typed_forward computes what lesson 08's model_forward computes (docs/spec.md), with the
 * lessons' own functions for everything but the products (rmsnorm, rope, attention, route,
 * silu); each product is tensor_matmul(), which calls the kernel of the weight's type.
 */
#ifndef MOEKIT_TYPED_MODEL_H
#define MOEKIT_TYPED_MODEL_H

#include "moekit.h"
#include "weights.h"

typedef struct {
    Tensor gate_proj, up_proj; /* (I, C) */
    Tensor down_proj;          /* (C, I) */
} TypedExpert;

typedef struct {
    Tensor q_proj, k_proj, v_proj; /* (H*D, C), (KV*D, C), (KV*D, C) */
    Tensor o_proj;                 /* (C, H*D) */
} TypedAttn;

typedef struct {
    TypedAttn self_attn;
    TypedExpert *experts;      /* (E) when the layer is sparse */
    TypedExpert shared_expert; /* Qwen2-MoE, else all empty */
    TypedExpert mlp;           /* when the layer is dense */
} TypedLayer;

typedef struct {
    const char *type; /* what was asked for: "auto" or a type name */
    TypedLayer *layers; /* (L) */
    Tensor embed_tokens; /* (V, C), the file's type (Model.embed_tokens is NULL) */
    Tensor lm_head;     /* (V, C) */
    int n_unquantized;  /* matrices left in the file's type: columns not whole blocks of QK */
} TypedWeights;

/* Run state of the typed forward pass. A MoE layer's experts run on `threads` threads at
 * once, each with its own scratch; their rows are packed by expert in rows_in/rows_out and
 * summed into the output in expert order afterwards, so the logits do not depend on the
 * number of threads. */
typedef struct {
    int threads;       /* OpenMP's maximum at init (1 without OpenMP) */
    void *xq;          /* (threads) the activations in q8_0 blocks, xq_bytes each */
    size_t xq_bytes;
    float *hidden;     /* (threads, hidden_len) an expert's gate and up rows */
    size_t hidden_len; /* 2 * max_tokens * the largest intermediate size */
    float *rows_in;    /* (max_rows, C) each expert's input rows, packed by expert */
    float *rows_out;   /* (max_rows, C) their outputs */
    int max_rows;      /* max_tokens * num_experts_per_tok at init: a layer that routes
                          more rows (a larger --top-k) runs its experts in batches */
    int *first;        /* (num_experts + 1) each expert's first packed row */
} TypedRun;

/* 1 here; 0 in the student release, which leaves this file's forward pass out (it repeats
 * the control flow of lessons 04-08) and ships a stand-in (harness/grade/release.sh). */
extern const int typed_available;

int typed_run_init(TypedRun *r, const Model *m); /* 0 or -1 (out of memory) */
void typed_run_free(TypedRun *r);

/* model_forward (lesson 08) with the matrices of w: ids (T) at positions pos0.. ->
 * logits (T, V); x (T, C) residual scratch. Fills the MoE stats like moe_forward.
 * last_only: the LM head runs for the last position alone (row T - 1 of logits; the other
 * rows are left as they were): generation samples only from it, and the head is the
 * largest matrix of a real model (151936 x 2048 in Qwen3-30B-A3B). */
void typed_forward(Model *m, const TypedWeights *w, TypedRun *r, const int *ids, int T,
                   int pos0, float *x, float *logits, int last_only);

#endif /* MOEKIT_TYPED_MODEL_H */
