/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader (and the JSON parser
 * behind it). `make fuzz` builds it with clang -fsanitize=fuzzer,address,undefined.
 *
 * The input is a whole .safetensors file. Whatever it holds, st_open_memory must either
 * accept it, and then every promise of safetensors.h holds (each tensor's bytes lie in the
 * buffer, st_find finds each name, st_to_f32 reads each float tensor), or reject it with a
 * one-line message that names the file. Anything else is a crash here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void check_tensor(const SafeTensors *st, const StTensor *t, const unsigned char *buf,
                         size_t size)
{
    CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
    CHECK(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype));
    CHECK(t->nbytes == 0 || ((const unsigned char *)t->data >= buf &&
                             (size_t)((const unsigned char *)t->data - buf) + t->nbytes <= size));
    CHECK(st_find(st, t->name) == t);
    (void)st_is_aligned(t, 4);
    if ((t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) && t->numel <= 4096) {
        float *out = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        CHECK(out && st_to_f32(t, out) == 0);
        free(out);
    } else if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
        CHECK(st_to_f32(t, NULL) == -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan sees any read past the end. */
    unsigned char *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    SafeTensors st;
    char err[300];
    if (st_open_memory(&st, buf, size, "fuzz.safetensors", err, sizeof err) == 0) {
        for (int i = 0; i < st.n_tensors; i++)
            check_tensor(&st, &st.tensors[i], buf, size);
        for (int i = 0; i < st.n_meta; i++)
            CHECK(st_meta(&st, st.meta_keys[i]) != NULL);
        CHECK(st_find(&st, "no such tensor \x01") == NULL);
        st_close(&st);
    } else {
        /* one line, naming the file */
        CHECK(strncmp(err, "fuzz.safetensors: ", 18) == 0 && err[18] != '\0');
        CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
        CHECK(st.n_tensors == 0 && st.tensors == NULL && st.bytes == NULL);
    }
    st_close(&st); /* closing twice is allowed */
    free(buf);
    return 0;
}
