/*
 * fuzz_tape.c: libFuzzer target for the grader's tape (harness/test/tape.c).
 *
 * The input is a tape as the sandboxed test runner writes it, which the student's code can
 * write anything onto. tape_parse must read it without a crash or a leak, whatever it
 * holds, and every section and output it keeps must be whole: names set, sizes in range,
 * the data there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tape.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *bytes = malloc(size ? size : 1);
    CHECK(bytes);
    memcpy(bytes, data, size);
    Tape t;
    tape_parse(&t, bytes, size);
    for (int i = 0; i < t.n; i++) {
        const TapeSection *s = &t.sections[i];
        CHECK(s->lesson && s->func && s->case_id);
        CHECK(!s->ended || (s->ending && s->why && s->report));
        for (int j = 0; j < s->n_outputs; j++) {
            const TapeOutput *o = &s->outputs[j];
            CHECK(o->key && o->data && o->n >= 0 && o->n <= TAPE_MAX_VALUES);
            CHECK(o->type == 'F' || o->type == 'I');
            CHECK(tape_find_output(s, o->key) != NULL);
        }
        CHECK(tape_find(&t, s->lesson, s->func, s->case_id) != NULL);
    }
    tape_free(&t);
    free(bytes);
    return 0;
}
