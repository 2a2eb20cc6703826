/*
 * strip.c: the sandbox's fixture file: a lesson's fixture without the expected values.
 *
 * The grader gives the sandboxed run of one test a copy of the lesson's fixture that
 * leaves out every tensor the test reads only as an expected value (noted by running the
 * solutions with ROLE_STRIP), every known-wrong variant (`<case>/<output>~<mistake>`),
 * and the file-wide metadata but "cases" and "lesson" (the seed would let code rebuild a
 * private fixture). A tensor one test reads as an expected value and another as an input
 * (lesson 08's layer outputs) is left out only for the test that expects it; the cases
 * of the lesson's other tests are left out altogether.
 */
#define _POSIX_C_SOURCE 200809L
#include "strip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* "<case>/...": is it a case this test runs (its id starts with the test's prefix)? */
static int own_case(const char *key, const char *prefix) {
    return strchr(key, '/') && !strncmp(key, prefix, strlen(prefix));
}

/* "<case>/<name>": is name hidden from this test's sandbox? */
static int hidden(const char *tensor, const char *prefix, const NameSet *inputs,
                  const NameSet *expected) {
    const char *name = strchr(tensor, '/') ? strchr(tensor, '/') + 1 : tensor;
    if (!own_case(tensor, prefix) || strchr(name, '~')) return 1;
    return nameset_has(expected, name) && !nameset_has(inputs, name);
}

static int kept_meta(const char *key, const char *prefix) {
    return own_case(key, prefix) || !strcmp(key, "cases") || !strcmp(key, "lesson");
}

/* The header's JSON to f; the data offsets follow the kept tensors in file order. */
static void put_header(FILE *f, const SafeTensors *fx, const unsigned char *keep,
                       const char *prefix) {
    size_t offset = 0;
    fputc('{', f);
    for (int i = 0; i < fx->n_tensors; i++) {
        if (!keep[i]) continue;
        const StTensor *t = &fx->tensors[i];
        json_put_string(f, t->name);
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fprintf(f, "],\"data_offsets\":[%zu,%zu]},", offset, offset + t->nbytes);
        offset += t->nbytes;
    }
    fputs("\"__metadata__\":{", f);
    for (int i = 0, first = 1; i < fx->n_meta; i++) {
        if (!kept_meta(fx->meta_keys[i], prefix)) continue;
        if (!first) fputc(',', f);
        first = 0;
        json_put_string(f, fx->meta_keys[i]);
        fputc(':', f);
        json_put_string(f, fx->meta_values[i]);
    }
    fputs("}}", f);
}

int strip_write(const SafeTensors *fx, const char *prefix, const NameSet *inputs,
                const NameSet *expected, const char *path, char *err, size_t errlen) {
    unsigned char *keep = calloc((size_t)fx->n_tensors + 1, 1);
    char *header = NULL;
    size_t header_len = 0;
    FILE *h = open_memstream(&header, &header_len);
    FILE *out = keep && h ? fopen(path, "wb") : NULL;
    int ok = out != NULL;
    if (ok) {
        for (int i = 0; i < fx->n_tensors; i++)
            keep[i] = !hidden(fx->tensors[i].name, prefix, inputs, expected);
        put_header(h, fx, keep, prefix);
        fclose(h), h = NULL;
        unsigned char len8[8];
        for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)header_len >> (8 * b));
        ok = fwrite(len8, 1, 8, out) == 8 && fwrite(header, 1, header_len, out) == header_len;
        for (int i = 0; ok && i < fx->n_tensors; i++)
            if (keep[i]) ok = fwrite(fx->tensors[i].data, 1, fx->tensors[i].nbytes, out) ==
                              fx->tensors[i].nbytes;
    }
    if (out && fclose(out) != 0) ok = 0;
    if (h) fclose(h);
    if (!ok) snprintf(err, errlen, "%s: cannot write the sandbox's fixture", path);
    free(header);
    free(keep);
    return ok ? 0 : -1;
}
