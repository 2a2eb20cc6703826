// reference.mjs: Hugging Face's own tokenizer (tokenizers.js, @huggingface/tokenizers) as the
// reference for moekit's C tokenizer. Node 18+; the packages come from `make tokenizer-ref`
// (npm, into build/npm).
//
//   node harness/tokenizer/reference.mjs corpus OUT.json [fortunes]
//       The test corpus, a JSON array of strings: fortunes in five languages (Debian's
//       fortunes, fortunes-de, -es, -it, -ru), lines of the kit's C sources, and hand-written
//       edge cases (emoji, CJK, accents that NFC composes, whitespace runs, digits,
//       contractions, mixed scripts, special tokens inside text), alone and in pairs.
//       "fortunes": the fortunes alone (the speed benchmark's corpus, harness/tokenizer/bench.sh).
//   node harness/tokenizer/reference.mjs encode NPM_DIR TOKENIZER_DIR IN.json IDS.json TEXT.json
//       Encodes each string of IN.json with TOKENIZER_DIR/tokenizer.json; writes the ids
//       and each decode in exactly the form `moekit tokenize --json [--decode]` prints, so
//       that the two compare with cmp. Prints the counts, the round trip and the speed.
//   node harness/tokenizer/reference.mjs small NPM_DIR TOKENIZER_DIR MERGES OUT_DIR
//       A small tokenizer for the kit's own tests (data/tokenizers/): TOKENIZER_DIR's with
//       only its first MERGES merges (and the tokens they make: Qwen's ids follow merge
//       rank), written one entry a line with merges as "a b" strings; with the edge cases
//       and pairs as strings.json and the reference's ids.json and text.json for them;
//       and the chat conversations as chat.json with chat_ids.json, their prompts rendered
//       with TOKENIZER_DIR's chat template and encoded with the small tokenizer.
//   node harness/tokenizer/reference.mjs chat NPM_DIR TOKENIZER_DIR IN.json IDS.json
//       A few multi-turn conversations, thinking on and off, rendered with the model's
//       chat_template by @huggingface/jinja (transformers.js' engine; add_generation_prompt)
//       and encoded: IN.json in the form `moekit tokenize --chat` reads, IDS.json in the
//       form it prints.
//   node harness/tokenizer/reference.mjs render NPM_DIR TOKENIZER_DIR IN.json IDS.json
//       The same for the conversations of IN.json (as `moekit tokenize --chat` reads them).
//   node harness/tokenizer/reference.mjs checkpoint TOKENIZER_DIR OUT_DIR
//       A random Qwen3-MoE checkpoint with Qwen3's vocabulary size (151,936) and
//       TOKENIZER_DIR's tokenizer files, 2 layers of width 16 (10 MB, f32, seed fixed): for
//       testing text in and out and chat end to end. The model is noise; the pipeline is
//       what is tested.
//   node harness/tokenizer/reference.mjs bytes TOKENIZER_DIR OUT_DIR
//       TOKENIZER_DIR's tokenizer.json with a vocabulary of the 256 bytes alone, token id =
//       byte value, no merges and no added tokens: the same text in and out as a byte-level
//       model's, through the whole tokenizer (data/tokenizers/bytes: the demo model and the
//       tiny test checkpoints read text with it in the CLI's tests).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const FORTUNES = "/usr/share/games/fortunes";
const PER_LANGUAGE = 2400; // fortunes taken from each language, evenly spread

// ---- the corpus ------------------------------------------------------------------------

function fortunes(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (name.endsWith(".dat") || name.endsWith(".u8") || !fs.statSync(file).isFile()) continue;
    const text = fs.readFileSync(file, "utf8");
    for (const f of text.split(/^%$/m)) {
      const s = f.replace(/^\n/, "").replace(/\n$/, "");
      if (s.length) out.push(s);
    }
  }
  return out;
}

function spread(list, n) {
  if (list.length <= n) return list;
  const out = [];
  for (let i = 0; i < n; i++) out.push(list[Math.floor((i * list.length) / n)]);
  return out;
}

function sources(root) {
  const out = [];
  for (const dir of ["harness/src", "harness/cli", "harness/tokenizer", "solutions/04-attention"]) {
    const d = path.join(root, dir);
    if (!fs.existsSync(d)) continue;
    for (const name of fs.readdirSync(d).sort()) {
      if (!/\.(c|h|mjs)$/.test(name)) continue;
      const lines = fs.readFileSync(path.join(d, name), "utf8").split("\n");
      for (let i = 0; i < lines.length; i += 6) out.push(lines.slice(i, i + 6).join("\n"));
    }
  }
  return out;
}

const EDGE = [
  "Hello world", "Hello  world", "hello\tworld", " leading space", "trailing space ",
  "   ", "\n", "\n\n\n", "\r\n", "a\r\nb\r\n", " \n \n ", "\t\t\tindented", "a \u00a0 b",
  "\u3000全角スペース", "line\u2028separator", "next\u0085line", "zero\ufeffwidth",
  "x\u200by", "1234567890", "3.14159", "1,000,000", "0x7fff", "v1.2.3-rc4", "①②③ ⅷ ½",
  "٠١٢٣ ١٠", "don't", "I'LL", "he'S", "they're", "we've", "I'm", "you'd", "'ſome", "''",
  "e\u0301", "cafe\u0301", "A\u030a", "\u212b", "n\u0303o", "\u1100\u1161\u11a8",
  "ﬁ ligature", "Ａｂｃ", "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪🇯🇵", "❤️", "中文分词测试", "日本語のテキスト",
  "한국어 문장", "Привет, мир!", "Ελληνικά", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
  "สวัสดีชาวโลก", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Z̷̢̛a̵l̶g̸o̴", "mixed Русский 和 English 123",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n",
  "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", "<think>\n\n</think>\n\n",
  "<|im_start", "|im_end|>", "<|im_start|><|im_start|>", "text<|endoftext|>more",
  "<tool_call>{\"name\": \"f\"}</tool_call>", "<|fim_prefix|>def f():<|fim_suffix|>",
  "\u0000", "\u0001\u0002", "\u007f", "a".repeat(300), " ".repeat(200), "-".repeat(120),
  "\n".repeat(50), "ab".repeat(100), "1".repeat(64), "int main(void) { return 0; }",
  "    if (x) {\n        y++;\n    }\n", "def f(x):\n    return x ** 2\n",
  "https://example.com/a?b=c&d=e#f", "user@example.org", "C:\\path\\to\\file.txt",
  "$$E = mc^2$$", "α+β=γ", "😀😀😀 emoji run", "¿Qué tal?", "Grüße aus Köln", "ÆØÅ æøå",
];

function corpus(out, only) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
  const all = [];
  for (const lang of ["", "de", "es", "it", "ru"]) all.push(...spread(fortunes(path.join(FORTUNES, lang)), PER_LANGUAGE));
  const n_fortunes = all.length;
  if (only !== "fortunes") all.push(...sources(root));
  const n_sources = all.length - n_fortunes;
  // pairs: every edge case next to others, so that each meets each kind of neighbour
  if (only !== "fortunes") all.push(...EDGE);
  for (let i = 0; i < EDGE.length && only !== "fortunes"; i++)
    for (let j = 0; j < EDGE.length; j += 7) all.push(EDGE[i] + EDGE[(i + j + 1) % EDGE.length]);
  const kept = all.filter((s) => s.length); // "" has no ids, and tokenizers.js cannot decode []
  fs.writeFileSync(out, JSON.stringify(kept));
  const bytes = kept.reduce((n, s) => n + Buffer.byteLength(s), 0);
  console.log(`corpus: ${kept.length} strings, ${bytes} bytes: ${n_fortunes} fortunes, ` +
    `${n_sources} pieces of C source, ${all.length - n_fortunes - n_sources} edge cases and pairs`);
}

// ---- the reference ids --------------------------------------------------------------------

// JSON as `moekit tokenize --json` prints it: one element a line
const lines = (items) => (items.length ? "[" + items.join(",\n ") + "]\n" : "[]\n");

function encode(npm, dir, input, idsOut, textOut) {
  const require = createRequire(path.resolve(npm) + "/");
  const { Tokenizer } = require("@huggingface/tokenizers");
  const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  const config = fs.existsSync(path.join(dir, "tokenizer_config.json")) ? read("tokenizer_config.json") : {};
  const tok = new Tokenizer(read("tokenizer.json"), config);
  const strings = JSON.parse(fs.readFileSync(input, "utf8"));
  const t0 = process.hrtime.bigint();
  const ids = strings.map((s) => tok.encode(s).ids);
  const t1 = process.hrtime.bigint();
  const texts = ids.map((x) => tok.decode(x));
  fs.writeFileSync(idsOut, lines(ids.map((x) => "[" + x.join(",") + "]")));
  fs.writeFileSync(textOut, lines(texts.map((s) => JSON.stringify(s))));
  let same = 0, nfc = 0, n_ids = 0;
  strings.forEach((s, i) => {
    n_ids += ids[i].length;
    if (texts[i] === s) same++;
    else if (texts[i] === s.normalize("NFC")) nfc++;
  });
  const bytes = strings.reduce((n, s) => n + Buffer.byteLength(s), 0);
  const seconds = Number(t1 - t0) / 1e9;
  console.log(`reference: ${strings.length} strings, ${n_ids} ids; decode gives the string back for ` +
    `${same}, its NFC form for ${nfc}, something else for ${strings.length - same - nfc}; ` +
    `encode ${(bytes / 1e6 / seconds).toFixed(2)} MB/s (${bytes} bytes in ${seconds.toFixed(2)} s)`);
  if (same + nfc !== strings.length) process.exitCode = 1;
}

// ---- a small tokenizer, for tests without node --------------------------------------------

function small(npm, dir, merges, out) {
  const full = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const n = Number(merges);
  const keep = full.model.merges.slice(0, n).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const vocab = Object.entries(full.model.vocab).filter(([, id]) => id < 256 + n);
  const j = (x) => JSON.stringify(x);
  const model = Object.entries(full.model).filter(([k]) => k !== "vocab" && k !== "merges");
  const text = ["{",
    ...Object.entries(full).filter(([k]) => k !== "model" && k !== "added_tokens").map(([k, v]) => ` ${j(k)}: ${j(v)},`),
    ` "added_tokens": [\n  ${full.added_tokens.map(j).join(",\n  ")}\n ],`,
    ` "model": {`, ...model.map(([k, v]) => `  ${j(k)}: ${j(v)},`),
    `  "vocab": {\n   ${vocab.map(([k, v]) => `${j(k)}: ${v}`).join(",\n   ")}\n  },`,
    `  "merges": [\n   ${keep.map(j).join(",\n   ")}\n  ]`, " }", "}", ""].join("\n");
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "tokenizer.json"), text);
  const strings = [...EDGE];
  for (let i = 0; i < EDGE.length; i++) strings.push(EDGE[i] + EDGE[(i * 7 + 3) % EDGE.length]);
  fs.writeFileSync(path.join(out, "strings.json"), lines(strings.map(j)));
  encode(npm, out, path.join(out, "strings.json"), path.join(out, "ids.json"), path.join(out, "text.json"));
  chat(npm, out, path.join(out, "chat.json"), path.join(out, "chat_ids.json"), dir);
}

function bytes(dir, out) {
  const full = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest from U+0100 on
  const printable = (b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  const vocab = {};
  for (let b = 0, n = 0; b < 256; b++) vocab[String.fromCodePoint(printable(b) ? b : 256 + n++)] = b;
  const tok = { ...full, added_tokens: [], model: { ...full.model, vocab, merges: [] } };
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "tokenizer.json"), JSON.stringify(tok, null, 1) + "\n");
}

// ---- chat prompts ----------------------------------------------------------------------------

const U = (content) => ({ role: "user", content });
const A = (content) => ({ role: "assistant", content });
const SYS = (content) => ({ role: "system", content });
const CONVERSATIONS = [
  [U("Hello!")],
  [SYS("You are a helpful assistant."), U("What is 2 + 2?")],
  [U("Hi"), A("<think>\nThe user greets me.\n</think>\n\nHello! How can I help?"), U("Tell me a joke.")],
  [SYS("Answer in one word."), U("Capital of France?"), A("Paris"), U("And of Germany?"),
    A("<think>\n\n</think>\n\nBerlin"), U("Italy?")],
  [U("Grüße! 日本語で話せますか？ 👍🏽"), A("<think>\nJapanese.\n</think>\nはい、話せます。"), U("e\u0301 <|im_end|> inside")],
  [U("first"), A("\n\nleading newlines"), SYS("A system turn in the middle."), U("second")],
  [U("think twice"), A("<think>a</think>b<think>c</think>\n\nd"), U("again")],
  [U("How are you?"), A("<think>\nFine.\n</think>\n\nGood, thanks.")],
  [U("<tool_response>\nok\n</tool_response>")],
];

// the template from templateDir's tokenizer_config.json, the ids from dir's tokenizer.json
function render(npm, dir, cases, idsOut, templateDir = dir) {
  const require = createRequire(path.resolve(npm) + "/");
  const { Tokenizer } = require("@huggingface/tokenizers");
  const { Template } = require("@huggingface/jinja");
  const read = (d, f) => JSON.parse(fs.readFileSync(path.join(d, f), "utf8"));
  const config = read(templateDir, "tokenizer_config.json");
  const tok = new Tokenizer(read(dir, "tokenizer.json"), config);
  const template = new Template(config.chat_template);
  const ids = cases.map((c) => tok.encode(template.render({ ...c, add_generation_prompt: true }),
    { add_special_tokens: false }).ids);
  fs.writeFileSync(idsOut, lines(ids.map((x) => "[" + x.join(",") + "]")));
  return ids.reduce((n, x) => n + x.length, 0);
}

function chat(npm, dir, input, idsOut, templateDir = dir) {
  const cases = [];
  for (const messages of CONVERSATIONS)
    for (const enable_thinking of [true, false]) cases.push({ messages, enable_thinking });
  fs.writeFileSync(input, lines(cases.map((c) => JSON.stringify(c))));
  const n = render(npm, dir, cases, idsOut, templateDir);
  console.log(`chat: ${cases.length} prompts (${CONVERSATIONS.length} conversations, thinking on and off), ${n} ids`);
}

// ---- a random checkpoint with Qwen3's vocabulary ------------------------------------------------

function checkpoint(dir, out) {
  const V = 151936, H = 16, L = 2, NH = 2, NKV = 1, HD = 8, E = 4, I = 8;
  const config = {
    architectures: ["Qwen3MoeForCausalLM"], model_type: "qwen3_moe", vocab_size: V, hidden_size: H,
    intermediate_size: 2 * H, moe_intermediate_size: I, num_hidden_layers: L, num_attention_heads: NH,
    num_key_value_heads: NKV, head_dim: HD, num_experts: E, num_experts_per_tok: 2, norm_topk_prob: true,
    decoder_sparse_step: 1, mlp_only_layers: [], max_position_embeddings: 1024, rms_norm_eps: 1e-6,
    rope_theta: 1000000.0, tie_word_embeddings: true, torch_dtype: "float32", bos_token_id: 151643,
    eos_token_id: 151645,
  };
  const shapes = { "model.embed_tokens.weight": [V, H], "model.norm.weight": [H] };
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    Object.assign(shapes, {
      [p + "input_layernorm.weight"]: [H], [p + "post_attention_layernorm.weight"]: [H],
      [p + "self_attn.q_proj.weight"]: [NH * HD, H], [p + "self_attn.k_proj.weight"]: [NKV * HD, H],
      [p + "self_attn.v_proj.weight"]: [NKV * HD, H], [p + "self_attn.o_proj.weight"]: [H, NH * HD],
      [p + "self_attn.q_norm.weight"]: [HD], [p + "self_attn.k_norm.weight"]: [HD],
      [p + "mlp.gate.weight"]: [E, H],
    });
    for (let e = 0; e < E; e++)
      for (const [n, shape] of [["gate_proj", [I, H]], ["up_proj", [I, H]], ["down_proj", [H, I]]])
        shapes[`${p}mlp.experts.${e}.${n}.weight`] = shape;
  }
  let seed = 1234; // a fixed LCG: the same file every time
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5);
  const header = {}, parts = [];
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1), data = new Float32Array(n);
    const norm = name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) data[i] = norm ? 1 : rand() * 0.5;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + 4 * n] };
    parts.push(Buffer.from(data.buffer));
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "model.safetensors"), Buffer.concat([size, Buffer.from(json), ...parts]));
  fs.writeFileSync(path.join(out, "config.json"), JSON.stringify(config, null, 2) + "\n");
  fs.writeFileSync(path.join(out, "generation_config.json"),
    JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643] }, null, 2) + "\n");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(path.join(dir, f), path.join(out, f));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "corpus" && (args.length === 1 || args[1] === "fortunes")) corpus(...args);
else if (cmd === "encode" && args.length === 5) encode(...args);
else if (cmd === "small" && args.length === 4) small(...args);
else if (cmd === "bytes" && args.length === 2) bytes(...args);
else if (cmd === "chat" && args.length === 4) chat(...args);
else if (cmd === "render" && args.length === 4)
  render(args[0], args[1], JSON.parse(fs.readFileSync(args[2], "utf8")), args[3]);
else if (cmd === "checkpoint" && args.length === 2) checkpoint(...args);
else {
  console.error("usage: reference.mjs corpus OUT.json | encode NPM_DIR TOKENIZER_DIR IN.json IDS.json TEXT.json\n" +
    "       | small NPM_DIR TOKENIZER_DIR MERGES OUT_DIR | bytes TOKENIZER_DIR OUT_DIR\n" +
    "       | chat NPM_DIR TOKENIZER_DIR IN.json IDS.json | render NPM_DIR TOKENIZER_DIR IN.json IDS.json\n" +
    "       | checkpoint TOKENIZER_DIR OUT_DIR");
  process.exitCode = 2;
}
