/*
 * safetensors.c: opens, validates and indexes a .safetensors file (see safetensors.h).
 *
 * Everything a later reader relies on is checked here, once, so that code using a
 * StTensor can trust ndim, numel, nbytes and that [data, data + nbytes) is readable.
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64 /* multi-GB checkpoints on 32-bit hosts: off_t must be 64-bit */

#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

enum { STORAGE_BORROWED = 0, STORAGE_MMAP = 1, STORAGE_MALLOC = 2 };

/* State of one st_open: where messages go and what the header said so far. */
typedef struct {
    SafeTensors *st;
    const char *label; /* the path, first word of every message */
    char *err;
    size_t errlen;
    size_t data_start; /* file offset of the data section: 8 + header length */
    size_t data_size;
    char what[96];     /* printable name of the tensor being checked */
} Loader;

static int fail(Loader *L, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int fail(Loader *L, const char *fmt, ...)
{
    if (L->err && L->errlen > 0) {
        int n = snprintf(L->err, L->errlen, "%s: ", L->label);
        if (n >= 0 && (size_t)n < L->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------
 * dtypes
 * ---------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},   [ST_I64] = {"I64", 8},   [ST_F64] = {"F64", 8},
    [ST_I8] = {"I8", 1},     [ST_U8] = {"U8", 1},     [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},   [ST_U32] = {"U32", 4},   [ST_U64] = {"U64", 8},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(StDtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? DTYPES[dtype].name : "?";
}

size_t st_dtype_size(StDtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? DTYPES[dtype].size : 0;
}

static int dtype_from_name(const char *s, StDtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(s, DTYPES[i].name) == 0) {
            *out = (StDtype)i;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------
 * one tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}
 * ---------------------------------------------------------------------------------- */

static void format_shape(char *buf, size_t n, const StTensor *t)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "",
                                 (long long)t->shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
}

static int parse_dtype(Loader *L, const JsonValue *entry, StTensor *t)
{
    const JsonValue *v = json_get(entry, "dtype");
    char shown[64];
    if (!v)
        return fail(L, "tensor '%s' has no \"dtype\"", L->what);
    if (v->type != JSON_STRING)
        return fail(L, "tensor '%s' dtype is a JSON %s, not a string", L->what,
                    json_type_name(v->type));
    if (dtype_from_name(v->string, &t->dtype) < 0) {
        json_printable(shown, sizeof shown, v->string, v->length);
        return fail(L, "tensor '%s' has unknown dtype \"%s\"", L->what, shown);
    }
    return 0;
}

/* The element count, rejecting counts whose byte size overflows int64 or size_t. */
static int shape_size(Loader *L, StTensor *t)
{
    char shape[160];
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            numel = 0; /* [huge, huge, 0] is empty, not an overflow */
    /* nbytes must fit both int64_t (offsets are int64) and size_t (32-bit hosts) */
    uint64_t max_bytes = (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX
                                                                 : (uint64_t)INT64_MAX;
    int64_t limit = (int64_t)(max_bytes / st_dtype_size(t->dtype));
    for (int i = 0; i < t->ndim && numel != 0; i++) {
        if (numel > limit / t->shape[i]) {
            format_shape(shape, sizeof shape, t);
            return fail(L, "tensor '%s' shape %s is too large (byte size overflows)", L->what,
                        shape);
        }
        numel *= t->shape[i];
    }
    t->numel = numel;
    t->nbytes = (size_t)numel * st_dtype_size(t->dtype);
    return 0;
}

static int parse_shape(Loader *L, const JsonValue *entry, StTensor *t)
{
    const JsonValue *v = json_get(entry, "shape");
    if (!v)
        return fail(L, "tensor '%s' has no \"shape\"", L->what);
    if (v->type != JSON_ARRAY)
        return fail(L, "tensor '%s' shape is a JSON %s, not an array", L->what,
                    json_type_name(v->type));
    if (v->count > ST_MAX_DIMS)
        return fail(L, "tensor '%s' shape has %zu dimensions (at most %d supported)", L->what,
                    v->count, ST_MAX_DIMS);
    t->ndim = (int)v->count;
    for (int i = 0; i < t->ndim; i++) {
        if (json_int64(&v->items[i], &t->shape[i]) < 0)
            return fail(L, "tensor '%s' shape[%d] is not an integer", L->what, i);
        if (t->shape[i] < 0)
            return fail(L, "tensor '%s' shape[%d] is negative (%lld)", L->what, i,
                        (long long)t->shape[i]);
    }
    return shape_size(L, t);
}

/* Checks [begin, end) against the dtype x shape size and the data section. */
static int check_range(Loader *L, StTensor *t, int64_t begin, int64_t end)
{
    char shape[160];
    long long b = (long long)begin, e = (long long)end;
    if (begin > end)
        return fail(L, "tensor '%s' data_offsets [%lld, %lld] are reversed (begin > end)",
                    L->what, b, e);
    if ((uint64_t)(end - begin) != (uint64_t)t->nbytes) {
        format_shape(shape, sizeof shape, t);
        return fail(L, "tensor '%s' data_offsets [%lld, %lld] do not match dtype %s x shape %s "
                    "(%zu bytes)", L->what, b, e, st_dtype_name(t->dtype), shape, t->nbytes);
    }
    if ((uint64_t)end > (uint64_t)L->data_size)
        return fail(L, "tensor '%s' data_offsets [%lld, %lld] run past the end of the data "
                    "section (%zu bytes; file truncated?)", L->what, b, e, L->data_size);
    t->offset = L->data_start + (size_t)begin;
    t->data = L->st->bytes + t->offset;
    return 0;
}

static int parse_offsets(Loader *L, const JsonValue *entry, StTensor *t)
{
    const JsonValue *v = json_get(entry, "data_offsets");
    int64_t begin, end;
    if (!v)
        return fail(L, "tensor '%s' has no \"data_offsets\"", L->what);
    if (json_len(v) != 2 || v->type != JSON_ARRAY || json_int64(&v->items[0], &begin) < 0 ||
        json_int64(&v->items[1], &end) < 0)
        return fail(L, "tensor '%s' data_offsets is not an array of two integers", L->what);
    if (begin < 0 || end < 0)
        return fail(L, "tensor '%s' data_offsets [%lld, %lld] are negative", L->what,
                    (long long)begin, (long long)end);
    return check_range(L, t, begin, end);
}

static int parse_tensor(Loader *L, const JsonValue *entry, StTensor *t)
{
    json_printable(L->what, sizeof L->what, entry->key, entry->key_length);
    /* A NUL inside a name would make two names equal as C strings. */
    if (memchr(entry->key, '\0', entry->key_length))
        return fail(L, "tensor '%s' has a NUL byte in its name", L->what);
    if (entry->type != JSON_OBJECT)
        return fail(L, "tensor '%s' is a JSON %s, not an object", L->what,
                    json_type_name(entry->type));
    if (!(t->name = strdup(entry->key)))
        return fail(L, "out of memory");
    if (parse_dtype(L, entry, t) < 0 || parse_shape(L, entry, t) < 0)
        return -1;
    return parse_offsets(L, entry, t);
}

/* ------------------------------------------------------------------------------------
 * __metadata__: a flat string -> string map
 * ---------------------------------------------------------------------------------- */

static int parse_metadata(Loader *L, const JsonValue *meta)
{
    SafeTensors *st = L->st;
    char key[96];
    if (meta->type != JSON_OBJECT)
        return fail(L, "__metadata__ is a JSON %s, not an object", json_type_name(meta->type));
    if (meta->count > INT_MAX)
        return fail(L, "__metadata__ has too many entries (%zu)", meta->count);
    st->meta_keys = calloc(meta->count + 1, sizeof *st->meta_keys);
    st->meta_values = calloc(meta->count + 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values)
        return fail(L, "out of memory");
    for (size_t i = 0; i < meta->count; i++) {
        const JsonValue *m = &meta->items[i];
        json_printable(key, sizeof key, m->key, m->key_length);
        if (m->type != JSON_STRING)
            return fail(L, "__metadata__ value for '%s' is a JSON %s, not a string", key,
                        json_type_name(m->type));
        if (memchr(m->key, '\0', m->key_length) || memchr(m->string, '\0', m->length))
            return fail(L, "__metadata__ entry '%s' has a NUL byte", key);
        st->meta_keys[i] = strdup(m->key);
        st->meta_values[i] = strdup(m->string);
        st->n_meta = (int)i + 1; /* st_close frees entries [0, n_meta) */
        if (!st->meta_keys[i] || !st->meta_values[i])
            return fail(L, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * whole-file checks: overlaps and the name index
 * ---------------------------------------------------------------------------------- */

static int cmp_offset(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static int fail_overlap(Loader *L, const StTensor *a, const StTensor *b)
{
    char an[96], bn[96];
    json_printable(an, sizeof an, a->name, strlen(a->name));
    json_printable(bn, sizeof bn, b->name, strlen(b->name));
    size_t ab = a->offset - L->data_start, bb = b->offset - L->data_start;
    return fail(L, "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", an, ab,
                ab + a->nbytes, bn, bb, bb + b->nbytes);
}

/* Sorted by start, a tensor overlaps an earlier one iff it starts before the furthest end
 * seen so far. Empty tensors occupy no bytes and overlap nothing. */
static int check_overlaps(Loader *L, const StTensor **idx)
{
    SafeTensors *st = L->st;
    int n = 0;
    for (int i = 0; i < st->n_tensors; i++)
        if (st->tensors[i].nbytes > 0)
            idx[n++] = &st->tensors[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_offset);
    const StTensor *reach = NULL; /* the tensor that ends furthest so far */
    for (int i = 0; i < n; i++) {
        if (reach && idx[i]->offset < reach->offset + reach->nbytes)
            return fail_overlap(L, reach, idx[i]);
        if (!reach || idx[i]->offset + idx[i]->nbytes > reach->offset + reach->nbytes)
            reach = idx[i];
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

static int build_index(Loader *L)
{
    SafeTensors *st = L->st;
    const StTensor **idx = malloc(((size_t)st->n_tensors + 1) * sizeof *idx);
    if (!idx)
        return fail(L, "out of memory");
    if (check_overlaps(L, idx) < 0) {
        free(idx);
        return -1;
    }
    for (int i = 0; i < st->n_tensors; i++)
        idx[i] = &st->tensors[i];
    qsort(idx, (size_t)st->n_tensors, sizeof *idx, cmp_name);
    st->by_name = idx;
    /* The JSON parser already rejects duplicate keys; this guards st_find's contract. */
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0) {
            json_printable(L->what, sizeof L->what, idx[i]->name, strlen(idx[i]->name));
            return fail(L, "tensor name '%s' appears twice", L->what);
        }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * the header
 * ---------------------------------------------------------------------------------- */

static int is_metadata(const JsonValue *m)
{
    return m->key_length == 12 && memcmp(m->key, "__metadata__", 12) == 0;
}

static int parse_entries(Loader *L, const JsonValue *root)
{
    SafeTensors *st = L->st;
    size_t n = root->count - (json_get(root, "__metadata__") ? 1 : 0);
    if (n > (size_t)INT_MAX - 1)
        return fail(L, "header lists too many tensors (%zu)", n);
    if (!(st->tensors = calloc(n + 1, sizeof *st->tensors)))
        return fail(L, "out of memory");
    for (size_t i = 0; i < root->count; i++) {
        const JsonValue *m = &root->items[i];
        int rc = is_metadata(m) ? parse_metadata(L, m)
                                : parse_tensor(L, m, &st->tensors[st->n_tensors++]);
        if (rc < 0)
            return -1;
    }
    return build_index(L);
}

/* Reads the 8-byte length, bounds it, parses the JSON and every entry. */
static int parse_file(Loader *L)
{
    const unsigned char *b = L->st->bytes;
    size_t size = L->st->size;
    char jerr[200];
    if (size < 8)
        return fail(L, "file is %zu bytes, shorter than the 8-byte header length", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > ST_MAX_HEADER)
        return fail(L, "header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                    (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > size - 8)
        return fail(L, "header length %llu runs past the end of the file (%zu bytes)",
                    (unsigned long long)hlen, size);
    L->data_start = 8 + (size_t)hlen;
    L->data_size = size - L->data_start;
    JsonValue *root = json_parse((const char *)b + 8, (size_t)hlen, jerr, sizeof jerr);
    if (!root)
        return fail(L, "header (JSON from file byte 8): %s", jerr);
    int rc = root->type == JSON_OBJECT
                 ? parse_entries(L, root)
                 : fail(L, "header is a JSON %s, not an object", json_type_name(root->type));
    json_free(root);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * getting the bytes: mmap, or read() where mapping is not possible
 * ---------------------------------------------------------------------------------- */

static int read_all(Loader *L, int fd, size_t size)
{
    unsigned char *buf = malloc(size);
    if (!buf)
        return fail(L, "cannot map the file and out of memory reading its %zu bytes", size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return fail(L, "read failed after %zu of %zu bytes (%s)", got, size,
                        r < 0 ? strerror(errno) : "file shrank");
        }
        got += (size_t)r;
    }
    L->st->bytes = buf;
    L->st->size = size;
    L->st->storage = STORAGE_MALLOC;
    return 0;
}

static int load_fd(Loader *L, int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return fail(L, "cannot stat (%s)", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return fail(L, "not a regular file");
    if (sb.st_size < 0 || (uintmax_t)sb.st_size > SIZE_MAX)
        return fail(L, "file size %lld does not fit in memory", (long long)sb.st_size);
    size_t size = (size_t)sb.st_size;
    if (size == 0)
        return 0; /* nothing to map; parse_file reports the short file */
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) /* some filesystems (FUSE, network mounts) cannot map */
        return read_all(L, fd, size);
    L->st->bytes = m;
    L->st->size = size;
    L->st->storage = STORAGE_MMAP;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * public entry points
 * ---------------------------------------------------------------------------------- */

static void loader_init(Loader *L, SafeTensors *st, const char *label, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    memset(L, 0, sizeof *L);
    L->st = st;
    L->label = label ? label : "(unnamed)";
    L->err = err;
    L->errlen = errlen;
    if (err && errlen > 0)
        err[0] = '\0';
}

int st_open(SafeTensors *st, const char *path, char *err, size_t errlen)
{
    Loader L;
    loader_init(&L, st, path, err, errlen);
    if (!path)
        return fail(&L, "no path given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(&L, "cannot open (%s)", strerror(errno));
    int rc = load_fd(&L, fd);
    close(fd); /* a mapping stays valid after close */
    if (rc == 0 && !(st->path = strdup(path)))
        rc = fail(&L, "out of memory");
    if (rc == 0)
        rc = parse_file(&L);
    if (rc < 0)
        st_close(st);
    return rc;
}

int st_open_memory(SafeTensors *st, const void *buf, size_t size, const char *name, char *err,
                   size_t errlen)
{
    Loader L;
    loader_init(&L, st, name, err, errlen);
    st->bytes = buf;
    st->size = buf ? size : 0;
    st->storage = STORAGE_BORROWED;
    int rc = (st->path = strdup(L.label)) ? parse_file(&L) : fail(&L, "out of memory");
    if (rc < 0)
        st_close(st);
    return rc;
}

void st_close(SafeTensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->by_name);
    free(st->path);
    if (st->storage == STORAGE_MMAP)
        munmap((void *)st->bytes, st->size);
    else if (st->storage == STORAGE_MALLOC)
        free((void *)st->bytes);
    memset(st, 0, sizeof *st);
}

static int cmp_find(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const StTensor *const *)elem)->name);
}

const StTensor *st_find(const SafeTensors *st, const char *name)
{
    if (!st || !name || !st->by_name || st->n_tensors == 0)
        return NULL;
    const StTensor *const *hit =
        bsearch(name, st->by_name, (size_t)st->n_tensors, sizeof *st->by_name, cmp_find);
    return hit ? *hit : NULL;
}

const char *st_meta(const SafeTensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * conversion to float: bytes are assembled explicitly (little-endian, any alignment)
 * ---------------------------------------------------------------------------------- */

static float bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE half -> float, exact for every input: subnormals are renormalised, inf stays inf
 * and NaN payloads are kept (shifted into the float mantissa). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0x1F)
        return bits_to_f32(sign | 0x7F800000u | man << 13);
    if (exp != 0) /* rebias 15 -> 127 */
        return bits_to_f32(sign | (exp + 112) << 23 | man << 13);
    if (man == 0)
        return bits_to_f32(sign);
    uint32_t e = 113; /* subnormal: man * 2^-24; shift the leading 1 into the implicit bit */
    while (!(man & 0x400u)) {
        man <<= 1;
        e--;
    }
    return bits_to_f32(sign | e << 23 | (man & 0x3FFu) << 13);
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t load_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* One loop per dtype: the multi-GB case (BF16 checkpoints) should not branch per element. */
int st_to_f32(const StTensor *t, float *out)
{
    if (!t || (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16))
        return -1;
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    if (t->dtype == ST_F32 && host_is_little_endian()) {
        if (n > 0)
            memcpy(out, p, n * sizeof *out);
    } else if (t->dtype == ST_F32) {
        for (size_t i = 0; i < n; i++)
            out[i] = bits_to_f32(load_le32(p + 4 * i));
    } else if (t->dtype == ST_F16) {
        for (size_t i = 0; i < n; i++)
            out[i] = f16_to_f32(load_le16(p + 2 * i));
    } else {
        for (size_t i = 0; i < n; i++) /* bf16 is the top half of a float */
            out[i] = bits_to_f32((uint32_t)load_le16(p + 2 * i) << 16);
    }
    return 0;
}

int st_is_aligned(const StTensor *t, size_t align)
{
    if (!t || t->nbytes == 0 || align <= 1)
        return 1;
    return ((uintptr_t)t->data & (align - 1)) == 0;
}
