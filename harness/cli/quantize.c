/*
 * quantize.c: `moekit quantize --type q8_0|q4_0 IN_DIR OUT_DIR`, a checkpoint with its
 * matrices in a block type, which the CLI loads as it lies (--weights auto).
 *
 * What is quantized: the matrices `--weights q8_0|q4_0` quantizes at load, by the same
 * function on the same float32 rows, so both give the very same logits:
 *   - every "*_proj.weight" (q/k/v/o, and gate/up/down of the experts, the shared expert
 *     and the dense MLPs): most of the bytes, and what decode reads for every token;
 *   - "lm_head.weight": the biggest single matrix, read whole for every token.
 * What stays in the input's type:
 *   - the router ("mlp.gate.weight") and the shared-expert gate: small (E x C), and their
 *     logits pick experts, where a rounding can flip a choice;
 *   - the norms and biases: vectors, a few KB;
 *   - "model.embed_tokens.weight": one row is read per token, never multiplied, so
 *     quantizing it saves memory but no time (a tied LM head is quantized at load);
 *   - a matrix whose rows are not whole blocks of 32 (as --weights leaves them).
 *
 * The file (a kit convention, docs/quantization.md): one model.safetensors; a quantized
 * matrix (rows, cols) is a U8 tensor (rows, row bytes) holding each row's blocks in
 * llama.cpp's byte layout (weights.h: BlockQ8_0, 34 bytes per 32 weights; BlockQ4_0, 18),
 * and the header's metadata says which block type every U8 tensor holds:
 *     "__metadata__": {"format": "pt", "moekit.blocks": "q8_0"}
 * Each tensor's data starts on a 32-byte boundary, so it is used in place from the
 * mapping. config.json and the tokenizer and generation files are copied beside it.
 */
#define _POSIX_C_SOURCE 200809L
#include "quantize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "model_load.h"
#include "weights.h"

#define ALIGN 32
#define ROWS_AT_ONCE 64

static const char *USAGE =
    "usage: moekit quantize --type q8_0|q4_0 IN_DIR OUT_DIR\n"
    "  Writes OUT_DIR/model.safetensors with the projection and expert matrices and the LM\n"
    "  head in blocks of 32 weights (q8_0: 8.5 bits a weight, q4_0: 4.5), the router, norms\n"
    "  and embedding as they are in IN_DIR, and copies config.json and the tokenizer and\n"
    "  generation files. Run it with --weights auto: the blocks are used in place, and the\n"
    "  logits are those of `--weights q8_0|q4_0` on IN_DIR (docs/quantization.md).\n";

/* One tensor of the output: where it comes from, and what it becomes. */
typedef struct {
    const StTensor *in;
    int blocks;   /* 1: quantized to the block type */
    size_t bytes; /* in the output */
    size_t offset;
} OutTensor;

static int ends_with(const char *s, const char *end) {
    size_t n = strlen(s), m = strlen(end);
    return n >= m && !strcmp(s + n - m, end);
}

/* Does --weights quantize this tensor at load (the header comment above)? */
static int quantized_at_load(const StTensor *t) {
    int matrix = ends_with(t->name, "_proj.weight") || !strcmp(t->name, "lm_head.weight");
    int floats = t->dtype == ST_F32 || t->dtype == ST_BF16 || t->dtype == ST_F16;
    return matrix && floats && t->ndim == 2 && t->shape[1] % QK == 0;
}

/* ------------------------------------------------------------------------------------
 * the header: which tensors, where
 * ---------------------------------------------------------------------------------- */

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* out[i] for every tensor of every file; returns the size of the data section. */
static size_t plan(const ModelFiles *in, WType type, OutTensor *out, int *n) {
    size_t offset = 0;
    *n = 0;
    for (int f = 0; f < in->n; f++)
        for (int i = 0; i < in->files[f].n_tensors; i++) {
            const StTensor *t = &in->files[f].tensors[i];
            OutTensor *o = &out[(*n)++];
            o->in = t;
            o->blocks = quantized_at_load(t);
            o->bytes = o->blocks ? (size_t)t->shape[0] * wtype_row_bytes(type, (long)t->shape[1])
                                 : t->nbytes;
            o->offset = offset;
            offset = align_up(offset + o->bytes);
        }
    return offset;
}

static void put_entry(FILE *f, const OutTensor *o, WType type) {
    const StTensor *t = o->in;
    json_put_string(f, t->name);
    fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", o->blocks ? "U8" : st_dtype_name(t->dtype));
    if (o->blocks)
        fprintf(f, "%lld,%zu", (long long)t->shape[0], wtype_row_bytes(type, (long)t->shape[1]));
    else
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    fprintf(f, "],\"data_offsets\":[%zu,%zu]}", o->offset, o->offset + o->bytes);
}

/* The header (8-byte length, then JSON padded with spaces so that the data section
 * starts on an ALIGN boundary), written through a memory stream to learn its length. */
static int put_header(FILE *out, const OutTensor *t, int n, WType type) {
    char *json = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&json, &len);
    if (!m) return -1;
    fprintf(m, "{\"__metadata__\":{\"format\":\"pt\",\"moekit.blocks\":\"%s\"}", wtype_name(type));
    for (int i = 0; i < n; i++) fputc(',', m), put_entry(m, &t[i], type);
    fputc('}', m);
    if (fclose(m) != 0) return free(json), -1;
    size_t padded = align_up(8 + len) - 8;
    unsigned char size[8];
    for (int b = 0; b < 8; b++) size[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    int ok = fwrite(size, 1, 8, out) == 8 && fwrite(json, 1, len, out) == len;
    for (size_t i = len; i < padded && ok; i++) ok = fputc(' ', out) != EOF;
    free(json);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------------------
 * the data
 * ---------------------------------------------------------------------------------- */

/* The rows of t (rows, cols) in blocks, ROWS_AT_ONCE rows at a time through float32. */
static int put_blocks(FILE *out, const StTensor *t, WType type, float *buf, void *row) {
    long rows = (long)t->shape[0], cols = (long)t->shape[1];
    size_t esize = st_dtype_size(t->dtype), rb = wtype_row_bytes(type, cols);
    for (long r = 0; r < rows; r += ROWS_AT_ONCE) {
        long n = rows - r < ROWS_AT_ONCE ? rows - r : ROWS_AT_ONCE;
        StTensor part = *t;
        part.data = (const unsigned char *)t->data + (size_t)r * (size_t)cols * esize;
        part.numel = n * cols;
        part.nbytes = (size_t)part.numel * esize;
        st_to_f32(&part, buf);
        for (long i = 0; i < n; i++) {
            wtype_from_f32(type, row, buf + i * cols, cols);
            if (fwrite(row, 1, rb, out) != rb) return -1;
        }
    }
    return 0;
}

static int put_data(FILE *out, const OutTensor *t, int n, WType type) {
    long widest = 1;
    for (int i = 0; i < n; i++)
        if (t[i].blocks && t[i].in->shape[1] > widest) widest = (long)t[i].in->shape[1];
    float *buf = malloc(sizeof(float) * ROWS_AT_ONCE * (size_t)widest);
    void *row = malloc(wtype_row_bytes(type, widest) + 1);
    int rc = buf && row ? 0 : -1;
    size_t at = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        for (; at < t[i].offset && rc == 0; at++) rc = fputc(0, out) == EOF ? -1 : 0;
        if (t[i].blocks) rc = put_blocks(out, t[i].in, type, buf, row);
        else if (fwrite(t[i].in->data, 1, t[i].bytes, out) != t[i].bytes) rc = -1;
        at += t[i].bytes;
    }
    free(buf);
    free(row);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * the directory
 * ---------------------------------------------------------------------------------- */

/* in_dir/name copied to out_dir/name; a missing optional file is no error. */
static int copy_file(const char *in_dir, const char *out_dir, const char *name, int optional) {
    char src[2048], dst[2048], err[1200];
    size_t len;
    snprintf(src, sizeof src, "%s/%s", in_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", out_dir, name);
    FILE *probe = fopen(src, "rb");
    if (!probe) return optional ? 0 : (fprintf(stderr, "moekit: quantize: %s: missing\n", src), -1);
    fclose(probe);
    char *text = read_file(src, 1u << 30, &len, err, sizeof err);
    if (!text) return fprintf(stderr, "moekit: quantize: %s\n", err), -1;
    FILE *f = fopen(dst, "wb");
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok) fprintf(stderr, "moekit: quantize: %s: cannot write it\n", dst);
    return ok ? 0 : -1;
}

static int write_model(const char *path, const ModelFiles *in, WType type, int *n_blocks,
                       size_t *size) {
    int total = 0;
    for (int f = 0; f < in->n; f++) total += in->files[f].n_tensors;
    OutTensor *t = malloc(sizeof *t * (size_t)(total ? total : 1));
    if (!t) return fprintf(stderr, "moekit: quantize: out of memory\n"), -1;
    int n;
    *size = plan(in, type, t, &n);
    *n_blocks = 0;
    for (int i = 0; i < n; i++) *n_blocks += t[i].blocks;
    char tmp[2100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    int rc = out ? put_header(out, t, n, type) : -1;
    if (rc == 0) rc = put_data(out, t, n, type);
    if (out && fclose(out) != 0) rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "moekit: quantize: %s: cannot write it (%s)\n", path, strerror(errno));
        remove(tmp);
    }
    free(t);
    return rc;
}

static int same_dir(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_quantize(int argc, char **argv) {
    const char *type_name = NULL, *dirs[2] = {NULL, NULL};
    int n_dirs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(USAGE, stdout), 0;
        if (!strcmp(argv[i], "--type") && i + 1 < argc) type_name = argv[++i];
        else if (argv[i][0] == '-')
            return fprintf(stderr, "moekit: quantize: '%s': not an option (or no value)\n%s",
                           json_shown(argv[i]).s, USAGE), 2;
        else if (n_dirs < 2) dirs[n_dirs++] = argv[i];
        else return fprintf(stderr, "moekit: quantize: '%s': one input and one output "
                                    "directory only\n", json_shown(argv[i]).s), 2;
    }
    int type = type_name ? wtype_parse(type_name) : -1;
    if (type != WT_Q8_0 && type != WT_Q4_0)
        return fprintf(stderr, "moekit: quantize: --type %s: give q8_0 or q4_0\n%s",
                       type_name ? json_shown(type_name).s : "(missing)", USAGE), 2;
    if (n_dirs < 2) return fprintf(stderr, "moekit: quantize: needs IN_DIR and OUT_DIR\n%s", USAGE), 2;
    return quantize_dir(dirs[0], dirs[1], (WType)type);
}

/* Input that would come out wrong: blocks already (their U8 would be taken for the new
 * type's), or a U8 tensor of its own. -1 with a message. */
static int check_input(const ModelFiles *in) {
    for (int f = 0; f < in->n; f++) {
        const SafeTensors *st = &in->files[f];
        if (st_meta(st, "moekit.blocks"))
            return fprintf(stderr, "moekit: quantize: %s is quantized already (%s blocks): "
                           "quantize the original checkpoint\n", st->path,
                           json_shown(st_meta(st, "moekit.blocks")).s), -1;
        for (int i = 0; i < st->n_tensors; i++)
            if (st->tensors[i].dtype == ST_U8)
                return fprintf(stderr, "moekit: quantize: %s: tensor '%s' is U8, which the "
                               "output keeps for blocks\n", st->path,
                               json_shown(st->tensors[i].name).s), -1;
    }
    return 0;
}

static int make_out_dir(const char *in_dir, const char *out_dir) {
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return fprintf(stderr, "moekit: quantize: %s: cannot create it (%s)\n", out_dir,
                       strerror(errno)), -1;
    if (same_dir(in_dir, out_dir))
        return fprintf(stderr, "moekit: quantize: %s: the output must be another directory "
                               "than the input\n", out_dir), -1;
    return 0;
}

int quantize_dir(const char *in_dir, const char *out_dir, WType type) {
    ModelFiles in;
    char err[1024], path[2048];
    if (model_files_open(&in, in_dir, err, sizeof err) != 0)
        return fprintf(stderr, "moekit: quantize: %s\n", err), 1;
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    int n_blocks = 0;
    size_t size = 0;
    int rc = check_input(&in) != 0 || make_out_dir(in_dir, out_dir) != 0 ? -1
             : write_model(path, &in, type, &n_blocks, &size);
    static const char *optional[] = {"generation_config.json", "tokenizer.json",
                                     "tokenizer_config.json"};
    if (rc == 0) rc = copy_file(in_dir, out_dir, "config.json", 0);
    for (int i = 0; i < 3 && rc == 0; i++) rc = copy_file(in_dir, out_dir, optional[i], 1);
    if (rc == 0)
        fprintf(stderr, "moekit: quantize: wrote %s: %d matrices in %s blocks, %.1f MiB of data\n",
                path, n_blocks, wtype_name(type), (double)size / (1 << 20));
    model_files_close(&in);
    return rc == 0 ? 0 : 1;
}
