/* chat.h: Qwen3's chat template, end-of-turn ids and moekit chat (chat.c). */
#ifndef MOEKIT_CHAT_H
#define MOEKIT_CHAT_H

#include "run.h"
#include "tokenizer.h"

typedef struct {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
    size_t length;    /* bytes of content */
} ChatMessage;

/* The prompt Qwen3's chat_template renders for messages (no tools), as Hugging Face's
 * apply_chat_template(messages, add_generation_prompt=True, enable_thinking=...) does:
 * ChatML turns "<|im_start|>role\ncontent<|im_end|>\n", an assistant turn before the last
 * user message without its <think>...</think> part, then "<|im_start|>assistant\n" (and an
 * empty "<think>\n\n</think>\n\n" when thinking is off). malloc'd, *len bytes; NULL when
 * out of memory. */
char *chat_render(const ChatMessage *m, int n, int enable_thinking, size_t *len);

/* The ids generation stops at: eos_token_id of DIR/generation_config.json and of
 * DIR/config.json (a number or a list), and tok's <|im_end|> and <|endoftext|> (tok may be
 * NULL). At most max; returns how many, or -1 with a message in err. */
int stop_ids(const char *dir, const Tokenizer *tok, int *ids, int max, char *err, size_t errlen);

/* moekit chat: the interactive loop. Returns the exit status. */
int cmd_chat(const Args *a, Runner *r, const Tokenizer *tok);

#endif
