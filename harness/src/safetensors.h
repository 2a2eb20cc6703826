/*
 * safetensors.h: reads .safetensors files (test fixtures and Hugging Face checkpoints).
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
 * name to {"dtype": "F32", "shape": [4, 8], "data_offsets": [begin, end]} plus an optional
 * "__metadata__" object of string -> string, then the data section; offsets count from the
 * start of the data section.
 *
 * st_open maps the file read-only (multi-GB checkpoints cost no copy), or reads it into
 * memory where mapping fails, and validates the whole header before returning: every
 * tensor's byte range lies inside the data section, matches its dtype and shape, and no
 * two ranges overlap (unreferenced gaps are allowed). Any problem is one line that names
 * the file, e.g.
 *     data/fixtures/03-rope.safetensors: tensor 'x' data_offsets [0, 100] do not match
 *     dtype F32 x shape [4, 8] (128 bytes)
 *
 * Alignment: offsets in the file are arbitrary, so StTensor.data may be misaligned for its
 * dtype. Read elements with memcpy (st_to_f32 does), or use the data in place as float *
 * only after st_is_aligned(t, sizeof(float)) says so. Data is little-endian.
 *
 * A mapped file must not be truncated by another process while open (SIGBUS).
 */
#ifndef MOEKIT_SAFETENSORS_H
#define MOEKIT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER 100000000u /* bytes; the limit of the reference (Rust) reader */

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64,
    ST_F64, ST_I8, ST_U8, ST_I16, ST_U16, ST_U32, ST_U64, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2,
    ST_DTYPE_COUNT
} StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;                     /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];   /* shape[0 .. ndim) */
    int64_t numel;                /* product of the shape (1 for a scalar, may be 0) */
    size_t nbytes;                /* numel * st_dtype_size(dtype) */
    size_t offset;                /* where the data starts in the file */
    const void *data;             /* into the mapping; possibly misaligned (see above) */
} StTensor;

typedef struct {
    char *path;          /* as given to st_open */
    int n_tensors;
    StTensor *tensors;   /* in header order */
    int n_meta;
    char **meta_keys;    /* __metadata__, in header order */
    char **meta_values;
    /* private: the name index and the bytes behind the data pointers */
    const StTensor **by_name; /* tensors sorted by name, for st_find */
    const unsigned char *bytes;
    size_t size;
    int storage;         /* 0 borrowed (st_open_memory), 1 mmap, 2 malloc'd copy */
} SafeTensors;

/* Opens and validates path. Returns 0, or -1 with a one-line message "path: problem" in
 * err (errlen bytes, may be 0) and *st zeroed. Call st_close on success. */
int st_open(SafeTensors *st, const char *path, char *err, size_t errlen);

/* Like st_open on a buffer already in memory, which the caller keeps alive and unchanged
 * until st_close (nothing is copied). name stands in for the path in messages. Useful for
 * fuzzing and for files embedded in a program. */
int st_open_memory(SafeTensors *st, const void *buf, size_t size, const char *name, char *err,
                   size_t errlen);

/* Unmaps/frees everything; *st is zeroed, so closing twice or closing a failed open is fine. */
void st_close(SafeTensors *st);

/* The tensor called name, NULL if absent. O(log n_tensors). */
const StTensor *st_find(const SafeTensors *st, const char *name);

/* The __metadata__ value for key, NULL if absent. Linear in n_meta. */
const char *st_meta(const SafeTensors *st, const char *key);

/* Converts t's numel elements to float into out (numel floats). F32, F16 (subnormals,
 * inf and NaN exactly) and BF16 only: returns -1 for any other dtype, 0 on success. */
int st_to_f32(const StTensor *t, float *out);

/* 1 when t->data is a multiple of align (a power of two), e.g. st_is_aligned(t, 4) before
 * reading F32 data in place. A tensor with no bytes counts as aligned. */
int st_is_aligned(const StTensor *t, size_t align);

/* "F32", "BF16" ... as written in headers; "?" for an out-of-range value. */
const char *st_dtype_name(StDtype dtype);

/* Bytes per element: 4 for F32, 2 for BF16 ...; 0 for an out-of-range value. */
size_t st_dtype_size(StDtype dtype);

#endif /* MOEKIT_SAFETENSORS_H */
