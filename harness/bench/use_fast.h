/*
 * use_fast.h: which kernel the model's matmul() and matmul_tokens() calls run, in the
 * programs linked with -Wl,--wrap=matmul -Wl,--wrap=matmul_tokens (the CLI, the bench,
 * the kit test's fast checks; see use_fast.c).
 */
#ifndef MOEKIT_USE_FAST_H
#define MOEKIT_USE_FAST_H

typedef enum {
    MATMUL_AUTO,  /* lesson 09 if it is written and agrees with a plain loop, else lesson 01 */
    MATMUL_NAIVE, /* always lesson 01's matmul / matmul_tokens */
    MATMUL_FAST   /* always lesson 09's fast_matmul / fast_matmul_tokens, unchecked */
} MatmulChoice;

/* Overrides the choice (and the MOEKIT_MATMUL environment variable). */
void use_fast_set(MatmulChoice c);
/* 1 when the model's products run on lesson 09 (decides now if not decided yet). */
int use_fast_active(void);
/* One line for humans: "lesson 09 (avx512, 2 threads)" or "lesson 01 (lesson 09 ...)". */
const char *use_fast_describe(void);

#endif
