/*
 * args.c: the moekit command line. Every number is checked (non-numeric, negative,
 * overflow, out of range), every flag that needs a value gets one, and every problem is
 * one line naming the flag.
 */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE_GENERATE =
    "usage: moekit generate --model DIR (--prompt TEXT | --ids \"1 2 3\") [-n N]\n"
    "                       [--greedy | --temperature T --top-p P --sample-top-k K --min-p P\n"
    "                        --seed S] [--print-ids]\n"
    "                       [--top-k K] [--disable-expert L:E]... [--dump-routing FILE] [--ctx N]\n"
    "  Streams the continuation (text, or ids with --print-ids) to stdout and a tokens/s\n"
    "  line to stderr. --prompt is text: encoded with the model directory's tokenizer.json\n"
    "  when it has one, else byte by byte (a byte-level model, vocab_size 256, like the\n"
    "  kit's own). Text output is streamed as it decodes, a UTF-8 character only once all\n"
    "  its bytes are there. Default: -n 200, seed 1, and the temperature, top_p, top_k and\n"
    "  min_p of the model's generation_config.json (do_sample false: greedy), else\n"
    "  temperature 0.8, top-p 0.95, no top-k or min-p; the flags override it (greedy: argmax).\n"
    "  --sample-top-k K samples among the K most probable tokens (0: all); --min-p P drops\n"
    "  tokens below P times the most probable. (--top-k K is the routing experiment.)\n"
    "  Generation stops at the context (--ctx; default max_position_embeddings, at most\n"
    "  2048): a prompt + -n past it gives ctx - prompt tokens and a note on stderr.\n";
static const char *USAGE_LOGITS =
    "usage: moekit logits --model DIR --ids \"1 2 3\" --out FILE [--top-k K]\n"
    "                     [--disable-expert L:E]... [--dump-routing FILE]\n"
    "  One prefill; writes T x vocab float32 little-endian logits, one row per position.\n";
static const char *USAGE_PERPLEXITY =
    "usage: moekit perplexity --model DIR --file TEXT [--fortunes] [--ctx N] [--dump-routing FILE]\n"
    "                         [--top-k K] [--disable-expert L:E]... [--replace-expert L:E:DIR]...\n"
    "                         [--capacity-factor F]\n"
    "  Bits per byte of a UTF-8 text file under a byte-level model. The whole file is scored\n"
    "  with a sliding window: windows of ctx positions (max_position_embeddings, or less with\n"
    "  --ctx), each from an empty cache, one every ceil(ctx/2) bytes; every byte after the\n"
    "  first is scored once (file size - 1 bytes): the first ctx given all bytes before them,\n"
    "  later ones given the previous ctx/2+1 to ctx bytes.\n"
    "  --fortunes: a fortune file (fortunes between lines of \"%\"); each fortune scored on its\n"
    "  own as \"%\\n\" + fortune, cut to ctx bytes (harness/pytorch/train.py's held-out bpb).\n"
    "  --capacity-factor F: a line on stderr counts the (token, expert) assignments dropped.\n";
static const char *USAGE_TOKENIZE =
    "usage: moekit tokenize --model DIR [--file F] [--json] [--decode]\n"
    "  Text -> token ids with DIR/tokenizer.json (byte-level BPE, as Hugging Face encodes,\n"
    "  special tokens like <|im_start|> recognised in the text). Reads F, or stdin.\n"
    "  One output line per input line: each line is encoded without its newline, and \\n\n"
    "  in it stands for a newline; the ids are printed space-separated.\n"
    "  --json: the input is a JSON array of strings, the output a JSON array of id arrays.\n"
    "  --decode: the reverse (ids -> text; newlines in the text printed as \\n, or JSON).\n"
    "  --chat: the input is a JSON array of conversations, {\"messages\": [{\"role\": ...,\n"
    "  \"content\": ...}], \"enable_thinking\": true}; prints the ids of each one's prompt as\n"
    "  Qwen3's chat template renders it (add_generation_prompt), a JSON array of id arrays.\n";
static const char *USAGE_CHAT =
    "usage: moekit chat --model DIR [--system TEXT] [--no-think] [-n N]\n"
    "                   [--greedy | --temperature T --top-p P --sample-top-k K --min-p P\n"
    "                    --seed S] [--ctx N]\n"
    "                   [--top-k K] [--disable-expert L:E]... [--dump-routing FILE]\n"
    "  A conversation with a chat model (Qwen3's ChatML template; DIR needs tokenizer.json).\n"
    "  Each line of input is a user turn; the reply is streamed. Thinking is on as Qwen3's\n"
    "  default (--no-think: enable_thinking false). A reply stops at <|im_end|> or an\n"
    "  end-of-text id (generation_config.json, config.json), after -n tokens (default: the\n"
    "  context) or at the context. The KV cache keeps the conversation across turns.\n"
    "  /reset starts over (the system prompt stays), /exit or end of input quits.\n"
    "  Sampling as generate: generation_config.json's defaults, the flags override them.\n";
static const char *USAGE_ALL =
    "usage: moekit COMMAND [options]   (moekit COMMAND --help for its options)\n"
    "  generate     continue a prompt\n"
    "  logits       write the logits of a prefill to a file\n"
    "  perplexity   bits per byte of a text file\n"
    "  tokenize     text -> token ids (and back) with the model's tokenizer.json\n"
    "  chat         a conversation with a chat model (Qwen3's template)\n"
    "  quantize     a checkpoint with its matrices in q8_0 or q4_0 blocks\n"
    "routing experiments (all commands): --top-k K, --disable-expert L:E (repeatable),\n"
    "  --replace-expert L:E:DIR[:L2:E2] (repeatable: expert E of layer L runs the weights of\n"
    "  expert E2 of layer L2, default L:E, of the model in DIR),\n"
    "  --dump-routing FILE (TSV: per token and layer, the chosen experts and weights; -1 where\n"
    "  the capacity dropped the assignment),\n"
    "  --capacity-factor F (lesson 07's capacity: each expert takes at most ceil(F * T * k / E)\n"
    "  rows of a forward call of T <= 64 tokens, the rest are dropped; 0, the default: no\n"
    "  limit; the dropped count goes to stderr at the end)\n"
    "weights (generate, logits, perplexity, chat): --weights auto|f32|bf16|f16|q8_0|q4_0\n"
    "  runs the matrices in that type (auto: the file's, bf16/f16 in place; the others are\n"
    "  converted at load; docs/quantization.md). Without it: float32 through the lessons.\n"
    "  --matmul naive|fast: the kernel of the float32 products, lesson 01's matmul or lesson\n"
    "  09's fast_matmul (default: fast, or naive while lesson 09 is not written).\n";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "moekit: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return -1;
}

/* A whole-string integer in [lo, hi]: an optional '-' and decimal digits, nothing else
 * (strtol alone would also take leading blanks and a '+'). */
static int to_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    const char *digits = s + (*s == '-');
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*digits) || *end != '\0')
        return bad("%s: '%s' is not a whole number", flag, json_shown(s).s);
    if (errno == ERANGE || v < lo || v > hi)
        return bad("%s: %s is out of range (%ld..%ld)", flag, json_shown(s).s, lo, hi);
    return *out = v, 0;
}

/* A finite decimal number in [lo, hi] (no blanks, no nan/inf spellings). */
static int to_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    const char *digits = s + (*s == '-' || *s == '+');
    double v = strtod(s, &end);
    if (!(isdigit((unsigned char)*digits) || (*digits == '.' && isdigit((unsigned char)digits[1]))) ||
        *end != '\0' || v != v)
        return bad("%s: '%s' is not a number", flag, json_shown(s).s);
    if (v < lo || v > hi) return bad("%s: %s is out of range (%g..%g)", flag, json_shown(s).s, lo, hi);
    return *out = (float)v, 0;
}

static int disable_expert(Args *a, const char *s) {
    const char *colon = strchr(s, ':');
    char layer[32];
    long l, e;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof layer)
        return bad("--disable-expert: '%s' must be LAYER:EXPERT, e.g. 3:17", json_shown(s).s);
    memcpy(layer, s, (size_t)(colon - s));
    layer[colon - s] = '\0';
    if (to_int("--disable-expert (layer)", layer, 0, INT_MAX, &l) ||
        to_int("--disable-expert (expert)", colon + 1, 0, INT_MAX, &e))
        return -1;
    if (a->model.n_disabled == MAX_DISABLED)
        return bad("--disable-expert: more than %d given", MAX_DISABLED);
    a->disabled_layer[a->model.n_disabled] = (int)l;
    a->disabled_expert[a->model.n_disabled++] = (int)e;
    return 0;
}

/* The field of s up to ':' (or the end) into buf; -> the rest after ':', or NULL if none. */
static const char *field(const char *s, char *buf, size_t size) {
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n >= size) n = size - 1; /* too long for a number: to_int rejects the cut value */
    memcpy(buf, s, n);
    buf[n] = '\0';
    return colon ? colon + 1 : NULL;
}

static int all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return n > 0;
}

/* --replace-expert L:E:DIR[:L2:E2]. DIR may hold ':' itself: the last two fields are
 * L2:E2 only when both are whole numbers. */
static int replace_expert(Args *a, const char *s) {
    if (a->n_replaced == MAX_REPLACED) return bad("--replace-expert: more than %d given", MAX_REPLACED);
    ReplaceExpert *r = &a->replaced[a->n_replaced];
    char num[32];
    long l, e, l2 = -1, e2 = -1;
    const char *rest = field(s, num, sizeof num);
    if (!rest || to_int("--replace-expert (layer)", num, 0, INT_MAX, &l)) return rest ? -1 :
        bad("--replace-expert: '%s' must be LAYER:EXPERT:DIR[:LAYER2:EXPERT2], e.g. 2:5:build/other",
            json_shown(s).s);
    const char *dir = field(rest, num, sizeof num), *end;
    if (to_int("--replace-expert (expert)", num, 0, INT_MAX, &e)) return -1;
    if (!dir || !*dir) return bad("--replace-expert: '%s' names no checkpoint directory", json_shown(s).s);
    end = dir + strlen(dir);
    const char *c2 = strrchr(dir, ':'), *c1 = c2;
    while (c1 && c1 > dir && *--c1 != ':') {}
    if (c1 && c1 < c2 && *c1 == ':' && all_digits(c1 + 1, (size_t)(c2 - c1 - 1)) &&
        all_digits(c2 + 1, strlen(c2 + 1))) {
        field(c1 + 1, num, sizeof num);
        if (to_int("--replace-expert (layer2)", num, 0, INT_MAX, &l2) ||
            to_int("--replace-expert (expert2)", c2 + 1, 0, INT_MAX, &e2))
            return -1;
        end = c1;
    }
    if (end == dir) return bad("--replace-expert: '%s' names no checkpoint directory", json_shown(s).s);
    if ((size_t)(end - dir) >= sizeof r->dir) return bad("--replace-expert: the directory name is too long");
    memcpy(r->dir, dir, (size_t)(end - dir));
    r->dir[end - dir] = '\0';
    r->layer = (int)l, r->expert = (int)e;
    r->from_layer = l2 < 0 ? (int)l : (int)l2, r->from_expert = e2 < 0 ? (int)e : (int)e2;
    a->n_replaced++;
    return 0;
}

/* The system prompt is text. */
static int check_text(const char *flag, const char *p) {
    size_t len = strlen(p), bad_at = json_utf8_check(p, len);
    if (bad_at < len) return bad("%s: invalid UTF-8 at byte %zu (0x%02x)", flag, bad_at, (unsigned char)p[bad_at]);
    return 0;
}

/* The prompt is text: invalid UTF-8 is named, not fed to the model byte by byte. */
static int check_prompt(const char *p) {
    size_t len = strlen(p), bad_at = json_utf8_check(p, len);
    if (len == 0) return bad("--prompt: the prompt is empty");
    if (bad_at < len)
        return bad("--prompt: invalid UTF-8 at byte %zu (0x%02x): the prompt must be UTF-8 "
                   "text (or give token ids with --ids)", bad_at, (unsigned char)p[bad_at]);
    return 0;
}

/* ------------------------------------------------------------------------------------
 * flags
 * ---------------------------------------------------------------------------------- */

static const char *usage_of(Command c) {
    return c == CMD_GENERATE ? USAGE_GENERATE : c == CMD_LOGITS ? USAGE_LOGITS
         : c == CMD_PERPLEXITY ? USAGE_PERPLEXITY : c == CMD_TOKENIZE ? USAGE_TOKENIZE : USAGE_CHAT;
}

/* Every flag: the commands that take it (a bit per Command) and whether a value follows. */
#define GEN (1 << CMD_GENERATE)
#define LOG (1 << CMD_LOGITS)
#define PPL (1 << CMD_PERPLEXITY)
#define TOK (1 << CMD_TOKENIZE)
#define CHT (1 << CMD_CHAT)
static const struct {
    const char *name;
    int cmds, has_value;
} FLAGS[] = {
    {"--model", GEN | LOG | PPL | TOK | CHT, 1}, {"--prompt", GEN, 1}, {"--ids", GEN | LOG, 1},
    {"--out", LOG, 1}, {"--file", PPL | TOK, 1}, {"--dump-routing", GEN | LOG | PPL | CHT, 1},
    {"--disable-expert", GEN | LOG | PPL | CHT, 1}, {"-n", GEN | CHT, 1},
    {"--replace-expert", GEN | LOG | PPL | CHT, 1}, {"--capacity-factor", GEN | LOG | PPL | CHT, 1},
    {"--top-k", GEN | LOG | PPL | CHT, 1}, {"--ctx", GEN | LOG | PPL | CHT, 1},
    {"--seed", GEN | CHT, 1}, {"--temperature", GEN | CHT, 1}, {"--top-p", GEN | CHT, 1},
    {"--sample-top-k", GEN | CHT, 1}, {"--min-p", GEN | CHT, 1},
    {"--greedy", GEN | CHT, 0}, {"--print-ids", GEN, 0}, {"--fortunes", PPL, 0},
    {"--json", TOK, 0}, {"--decode", TOK, 0}, {"--chat", TOK, 0}, {"--system", CHT, 1},
    {"--no-think", CHT, 0}, {"--weights", GEN | LOG | PPL | CHT, 1},
    {"--matmul", GEN | LOG | PPL | CHT, 1},
};

/* f's entry in FLAGS, -1 when the command takes no such flag. */
static int find_flag(Command cmd, const char *f) {
    for (int i = 0; i < (int)(sizeof FLAGS / sizeof FLAGS[0]); i++)
        if (!strcmp(f, FLAGS[i].name) && (FLAGS[i].cmds >> cmd & 1)) return i;
    return -1;
}

/* One flag of FLAGS with its value v (NULL for the switches). 0 ok, -1 bad. */
static int flag(Args *a, const char *f, const char *v) {
    long n;
    float x;
    if (!strcmp(f, "--model")) return a->model_dir = v, 0;
    if (!strcmp(f, "--prompt")) return check_prompt(v) ? -1 : (a->prompt = v, 0);
    if (!strcmp(f, "--ids")) return a->ids_text = v, 0;
    if (!strcmp(f, "--out")) return a->out_path = v, 0;
    if (!strcmp(f, "--file")) return a->text_file = v, 0;
    if (!strcmp(f, "--dump-routing")) return a->routing_path = v, 0;
    if (!strcmp(f, "--disable-expert")) return disable_expert(a, v);
    if (!strcmp(f, "--replace-expert")) return replace_expert(a, v);
    if (!strcmp(f, "-n")) return to_int(f, v, 0, 1000000, &n) ? -1 : (a->n_new = (int)n, a->n_new_set = 1, 0);
    if (!strcmp(f, "--top-k")) return to_int(f, v, 1, 4096, &n) ? -1 : (a->model.top_k = (int)n, 0);
    if (!strcmp(f, "--capacity-factor"))
        return to_float(f, v, 0.0, 1000.0, &x) ? -1 : (a->model.capacity_factor = x, 0);
    if (!strcmp(f, "--weights"))
        return strcmp(v, "auto") && wtype_parse(v) < 0
                   ? bad("--weights %s: not a type (auto, f32, bf16, f16, q8_0, q4_0)", v)
                   : (a->model.weights = v, 0);
    if (!strcmp(f, "--matmul"))
        return strcmp(v, "naive") && strcmp(v, "fast")
                   ? bad("--matmul %s: not a kernel (naive: lesson 01's matmul, fast: lesson 09's)", v)
                   : (a->matmul = v, 0);
    if (!strcmp(f, "--ctx")) return to_int(f, v, 1, 1 << 20, &n) ? -1 : (a->model.max_seq = (int)n, 0);
    if (!strcmp(f, "--seed"))
        return to_int(f, v, 0, LONG_MAX, &n) ? -1 : (a->seed = (unsigned long long)n, 0);
    if (!strcmp(f, "--temperature"))
        return to_float(f, v, 0.0, 100.0, &x) ? -1 : (a->temperature = x, a->given |= GIVEN_TEMPERATURE, 0);
    if (!strcmp(f, "--top-p"))
        return to_float(f, v, 0.0, 1.0, &x) ? -1 : (a->top_p = x, a->given |= GIVEN_TOP_P, 0);
    if (!strcmp(f, "--sample-top-k"))
        return to_int(f, v, 0, 1 << 30, &n) ? -1 : (a->sample_top_k = (int)n, a->given |= GIVEN_TOP_K, 0);
    if (!strcmp(f, "--min-p"))
        return to_float(f, v, 0.0, 1.0, &x) ? -1 : (a->min_p = x, a->given |= GIVEN_MIN_P, 0);
    if (!strcmp(f, "--greedy")) return a->greedy = 1, a->given |= GIVEN_GREEDY, 0;
    if (!strcmp(f, "--print-ids")) return a->print_ids = 1, 0;
    if (!strcmp(f, "--fortunes")) return a->fortunes = 1, 0;
    if (!strcmp(f, "--json")) return a->json = 1, 0;
    if (!strcmp(f, "--decode")) return a->decode = 1, 0;
    if (!strcmp(f, "--chat")) return a->chat = a->json = 1, 0;
    if (!strcmp(f, "--system")) return check_text(f, v) ? -1 : (a->system = v, 0);
    if (!strcmp(f, "--no-think")) return a->no_think = 1, 0;
    return bad("%s: in FLAGS but not handled", f); /* a kit bug, not the user's */
}

static int parse_command(Args *a, const char *name) {
    if (!strcmp(name, "generate")) a->cmd = CMD_GENERATE;
    else if (!strcmp(name, "logits")) a->cmd = CMD_LOGITS;
    else if (!strcmp(name, "perplexity")) a->cmd = CMD_PERPLEXITY;
    else if (!strcmp(name, "tokenize")) a->cmd = CMD_TOKENIZE;
    else if (!strcmp(name, "chat")) a->cmd = CMD_CHAT;
    else return -1;
    return 0;
}

/* What every command needs, once all flags are read. */
static int check_required(const Args *a) {
    static const char *const NAMES[] = {"generate", "logits", "perplexity", "tokenize", "chat"};
    if (!a->model_dir) return bad("%s: --model DIR is required", NAMES[a->cmd]);
    if (a->model_dir[0] == '\0') return bad("%s: --model: the directory name is empty", NAMES[a->cmd]);
    if (a->cmd == CMD_GENERATE && !!a->prompt == !!a->ids_text)
        return bad("generate: give exactly one of --prompt TEXT and --ids \"1 2 3\"");
    if (a->cmd == CMD_LOGITS && (!a->ids_text || !a->out_path))
        return bad("logits: --ids \"1 2 3\" and --out FILE are required");
    if (a->cmd == CMD_TOKENIZE && a->chat && a->decode)
        return bad("tokenize: --chat renders conversations; it does not go with --decode");
    if (a->cmd == CMD_PERPLEXITY && !a->text_file)
        return bad("perplexity: --file TEXT is required");
    return 0;
}

int args_parse(Args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->n_new = 200, a->temperature = 0.8f, a->top_p = 0.95f, a->seed = 1;
    a->model.disabled_layer = a->disabled_layer;
    a->model.disabled_expert = a->disabled_expert;
    if (argc < 2)
        return bad("no command given: generate, logits, perplexity, tokenize or chat (moekit --help)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return fputs(USAGE_ALL, stdout), 1;
    if (parse_command(a, argv[1]) != 0)
        return bad("unknown command '%s' (generate, logits, perplexity, tokenize, chat; --help)",
                   json_shown(argv[1]).s);
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return fputs(usage_of(a->cmd), stdout), 1;
        int k = find_flag(a->cmd, f);
        if (k < 0) return bad("%s: unknown option '%s' (see --help)", argv[1], json_shown(f).s);
        if (FLAGS[k].has_value && i + 1 >= argc) return bad("%s needs a value", f);
        if (flag(a, f, FLAGS[k].has_value ? argv[++i] : NULL) != 0) return -1;
    }
    if (a->greedy) a->temperature = 0.0f;
    return check_required(a);
}

/* ------------------------------------------------------------------------------------
 * token ids
 * ---------------------------------------------------------------------------------- */

int parse_ids(const char *text, int vocab_size, int **ids, int *n) {
    static const char SEP[] = " ,\t\r\n";
    size_t cap = strlen(text) / 2 + 1; /* ids are at least one digit and one separator */
    *ids = malloc(sizeof(int) * cap);
    *n = 0;
    const char *p = text;
    while (*ids) {
        p += strspn(p, SEP);
        if (*p == '\0') break;
        size_t len = strcspn(p, SEP);
        char *end;
        errno = 0;
        long v = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
        if (v < 0 || end != p + len || errno == ERANGE || v >= vocab_size) {
            char tok[80];
            json_printable(tok, sizeof tok, p, len);
            fprintf(stderr, "moekit: --ids: '%s' is not a token id 0..%d\n", tok, vocab_size - 1);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[(*n)++] = (int)v;
        p += len;
    }
    if (!*ids || *n == 0) {
        fprintf(stderr, "moekit: --ids: %s\n", *ids ? "no token ids given" : "out of memory");
        free(*ids);
        *ids = NULL;
        return -1;
    }
    return 0;
}
