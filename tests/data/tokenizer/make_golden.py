#!/usr/bin/env python3
"""Golden tokenizer data for model/tokenizer/tokenizer_test.cpp.

Run from anywhere:  pip install tokenizers==0.23.3 && python3 tests/data/tokenizer/make_golden.py
It writes (next to this script):
  golden/<name>.jsonl        one line per (text, add_special_tokens): {"text", "add_special_tokens", "ids",
                             "decoded", "decoded_skip"}; decoded* come from HF decode of those ids.
  llama2-sp/, llama2-metaspace/, qwen2-bpe/, llama3-bpe/   small tokenizers trained here on CORPUS.
The DeepSeek-R1 tokenizer is read from deepseek-r1/ (copied from the published model, see PROVENANCE.md).

add_special_tokens=True follows what `transformers` does (that is what vLLM serves): when tokenizer_config.json
has add_bos_token / add_eos_token (LlamaTokenizerFast rebuilds its post-processor from them), those decide;
otherwise the tokenizer.json post_processor does. Everything is deterministic (fixed seeds, single thread).
"""
import json
import os
import random

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders, Regex  # noqa: E402
import tokenizers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

QWEN2_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
               r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
LLAMA3_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

HANDWRITTEN = [
    "", " ", "  ", "\n", "\t", "\r\n", "a", "A", "Hello", "Hello, world!", "hello world", " hello world",
    "The quick brown fox jumps over the lazy dog.",
    "It's a dog's life; they're sure we've seen 'em, I'm told you'll see what he'd do.",
    "DON'T SHOUT, IT'S RUDE. They'RE here. We'VE got it.",
    "I'd've thought so; y'all'd've known.",
    "    indented by four\n\tthen a tab\n\t\ttwo tabs", "trailing spaces   ", "   ", "\n\n\n", "\t\t\t",
    "a\r\nb\r\nc", "line1\nline2\r\nline3\rline4", "mixed \t \n whitespace \u00a0nbsp\u2003em-space",
    "multiple     spaces      between     words", "x\n\n\n\ny", " \n \n ", "end with newline\n",
    "0", "7", "42", "123", "1234", "12345", "123456789012345678901234567890", "3.14159265358979",
    "-0.000001", "1e-9", "1,000,000", "2024-01-15T12:34:56Z", "+1 (555) 123-4567", "v1.2.3-rc.4",
    "0x7fffffff", "100%", "$19.99", "€5,00", "¥1000", "٣٤٥ Arabic-Indic digits", "१२३ Devanagari digits",
    "中文测试，你好世界。", "我爱自然语言处理。机器学习是人工智能的一个分支。", "北京欢迎你！2008年奥运会",
    "日本語のひらがなとカタカナ", "東京は日本の首都です。カタカナ、ひらがな、漢字。",
    "한국어 문장입니다. 안녕하세요!", "繁體中文：臺灣的資訊", "中文English混合text测试123",
    "مرحبا بالعالم", "اللغة العربية جميلة جدا، أليس كذلك؟", "שלום עולם", "سلام دنیا",
    "नमस्ते दुनिया", "हिन्दी भाषा में यह एक वाक्य है।", "বাংলা ভাষা", "தமிழ் மொழி",
    "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "ສະບາຍດີ",
    "Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.", "Україна, Київ",
    "Γειά σου Κόσμε", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.", "Ελληνικά: αβγδεζηθ ΑΒΓΔ",
    "Ünïcödé àccents — dash", "naïve café résumé coöperate", "Zürich, Köln, Düsseldorf, Straße",
    "ñandú, pingüino, acción", "Łódź, Kraków, Gdańsk", "İstanbul ığdır ŞÇĞ", "Tiếng Việt có dấu",
    "e\u0301 combining acute, a\u0308 combining diaeresis", "ﬁ ligature, ① circled, Ｆｕｌｌｗｉｄｔｈ",
    "emoji 😀👍🏽 done", "👨‍👩‍👧‍👦 family", "👩🏾‍💻 coder", "🏳️‍🌈 flag", "🇺🇸🇯🇵🇩🇪 flags", "❤️🔥✨",
    "👍🏻👍🏼👍🏽👍🏾👍🏿", "🧑‍🤝‍🧑", "text🙂text", "😂😂😂😂😂", "™®©℠", "→←↑↓⇒⇔∀∃∈∉",
    "∑_{i=1}^{n} x_i^2 ≤ ∞", "√2 ≈ 1.41421", "½ ¼ ¾", "°C °F", "…‥", "«quotes» „German“ “curly” ‘single’",
    "<｜User｜>Hi<｜Assistant｜><think>\nok</think>answer<｜end▁of▁sentence｜>",
    "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜>",
    "<think>\nLet me think step by step.\n</think>\n\nThe answer is 4.",
    "before<think>inside</think>after", "<think></think>", "<thinking> is not a token", "</think",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "<｜fim▁begin｜>def add(a, b):\n<｜fim▁hole｜>\n<｜fim▁end｜>", "<s>not llama</s>", "<|endoftext|>",
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", "<|begin_of_text|>hi<|eot_id|>",
    "!!!", "???", "...", "---", "***", "!?!?", "@#$%^&*()", "a+b=c", "[[1,2],[3,4]]", "{}", "();",
    "foo_bar_baz", "camelCaseIdentifier", "SCREAMING_SNAKE", "kebab-case-name", "path/to/file.txt",
    "C:\\Windows\\System32", "https://example.com/path?query=1&x=y#frag", "user@example.com",
    "def f(x):\n    return x**2\n",
    "import numpy as np\n\nclass Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
    "#include <vector>\nstd::vector<int> v{1, 2, 3};\ntemplate <typename T> T max(T a, T b);",
    "fn main() {\n    println!(\"Hello, {}!\", name);\n}", "func main() {\n\tfmt.Println(\"hi\")\n}",
    "const x = async () => { await fetch(`/api/${id}`); };", "SELECT * FROM users WHERE id = 42;",
    "<div class=\"container\"><p>Hello &amp; welcome</p></div>", "#!/bin/bash\necho $HOME | grep -v '^#'",
    "public static void main(String[] args) { System.out.println(\"x\"); }",
    "let rec fact n = if n = 0 then 1 else n * fact (n - 1)", "x <- c(1, 2, 3); mean(x)",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}", "key: value\nlist:\n  - item1\n  - item2",
    "| col1 | col2 |\n|------|------|\n| a    | b    |", "# Heading\n\n* bullet\n* **bold** _italic_",
    "$$E = mc^2$$ and \\frac{a}{b}", "\\begin{equation} x \\end{equation}",
    "Ġ Ċ ĉ not real markers", "ĠÑĤÐ²ÑĬÑĢ", "▁ sentencepiece marker ▁▁", "<0x41> not a byte token",
    "Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ", "a\u200bzero\u200dwidth\ufeffbom", "soft\u00adhyphen",
    "tab\there", "ends with tab\t", "\ttabs\t\tand spaces  \t  mixed",
    "ALLCAPS lowercase MiXeD", "I", "I'm", "'s", "'", "''", "\"", "quote's", "rock'n'roll",
    "Mr. Smith went to Washington. He said: \"Yes!\"", "e.g., i.e., etc.", "U.S.A.",
    "The year 1999 and 2000-2024.", "Call 911 or 112.", "Room 101, Floor 3",
    "a" * 100, "ab" * 60, " " * 50, "\n" * 20, "-" * 80, "=" * 40, "😀" * 10, "中" * 50,
    "x" * 300 + " long word", "9" * 40,
]


def generated_texts():
    """Deterministic extra texts: mixtures of scripts, numbers and whitespace the hand list may miss."""
    rng = random.Random(1234)
    words = ["the", "of", "token", "DeepSeek", "模型", "推理", "сервер", "λόγος", "مرحبا", "नमस्ते", "ไทย",
             "123", "4567", "3.5", "😀", "👍🏽", "<think>", "</think>", "<｜User｜>", "it's", "we're", "can't",
             "foo()", "a[i]", "x+=1;", "\t", "\n", "  ", "\r\n", "!!", "?", "—", "é", "ß", "日本"]
    seps = ["", " ", " ", " ", "  ", "\n", "\t", ", ", ". "]
    out = []
    for _ in range(90):
        n = rng.randint(1, 14)
        out.append("".join(rng.choice(words) + rng.choice(seps) for _ in range(n)))
    for _ in range(10):
        out.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 30))))
    return out


CORPUS = HANDWRITTEN + generated_texts()


def write_golden(name, tok, bos=None, eos=None, use_config_flags=False):
    """Encode CORPUS with and without special tokens; decode back for the decode tests."""
    path = os.path.join(HERE, "golden", name + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for text in CORPUS:
            for add in (False, True):
                if use_config_flags:
                    ids = tok.encode(text, add_special_tokens=False).ids
                    if add:
                        ids = ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])
                else:
                    ids = tok.encode(text, add_special_tokens=add).ids
                rec = {"text": text, "add_special_tokens": add, "ids": ids,
                       "decoded": tok.decode(ids, skip_special_tokens=False),
                       "decoded_skip": tok.decode(ids, skip_special_tokens=True)}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{path}: {2 * len(CORPUS)} cases")


def save(tok_json, folder, config):
    d = os.path.join(HERE, folder)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok_json, f, ensure_ascii=False, indent=None, separators=(",", ":"))
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    return Tokenizer.from_str(json.dumps(tok_json))


def added(id_, content, special=True, normalized=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


def training_corpus():
    return CORPUS * 3


def deepseek():
    d = os.path.join(HERE, "deepseek-r1")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
    bos = tok.token_to_id(cfg["bos_token"]["content"]) if cfg.get("add_bos_token") else None
    write_golden("deepseek_r1", tok, bos=bos, use_config_flags=True)


def llama2_family():
    """SentencePiece-style BPE: chars (not bytes) are the alphabet, unknown chars fall back to <0xNN>."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    # limit_alphabet keeps rare chars (much CJK, emoji) out of the vocab so byte fallback is exercised.
    trainer = trainers.BpeTrainer(vocab_size=3000, limit_alphabet=200, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    tok.train_from_iterator(training_corpus(), trainer)
    trained = json.loads(tok.to_str())["model"]
    # Llama-2 layout: <unk> <s> </s>, then the 256 byte tokens, then the learned pieces.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": trained["merges"]}
    decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    base = {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
            "post_processor": post, "decoder": decoder, "model": model}
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizerFast"}
    # Llama-2 as converted by transformers: Prepend + Replace normalizer, no pre-tokenizer.
    sp = dict(base, normalizer={"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        pre_tokenizer=None)
    write_golden("llama2_sp", save(sp, "llama2-sp", config), bos=1, use_config_flags=True)
    # Later conversions: Metaspace pre-tokenizer (prepend only to the first piece), no normalizer.
    ms = dict(base, normalizer=None, pre_tokenizer={"type": "Metaspace", "replacement": "▁",
                                                    "prepend_scheme": "first", "split": False})
    write_golden("llama2_metaspace", save(ms, "llama2-metaspace", config), bos=1, use_config_flags=True)


def byte_level_family():
    """Qwen2 layout (NFC, one Split regex + ByteLevel without its own regex) and a Llama-3 variant."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=4000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_corpus(), trainer)
    tj = json.loads(tok.to_str())
    model = tj["model"]
    n = len(model["vocab"])

    def split_seq(regex):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    qwen = {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>")],
            "normalizer": {"type": "NFC"}, "pre_tokenizer": split_seq(QWEN2_REGEX), "post_processor": bl,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": dict(model, ignore_merges=False)}
    qcfg = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
            "tokenizer_class": "Qwen2Tokenizer"}
    write_golden("qwen2_bpe", save(qwen, "qwen2-bpe", qcfg), use_config_flags=False)
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [n],
                                                     "tokens": ["<|begin_of_text|>"]}}}
    llama3 = dict(qwen, normalizer=None, pre_tokenizer=split_seq(LLAMA3_REGEX), post_processor={
        "type": "Sequence", "processors": [bl, post]},
        added_tokens=[added(n, "<|begin_of_text|>"), added(n + 1, "<|end_of_text|>"), added(n + 2, "<|eot_id|>")],
        model=dict(model, ignore_merges=True))
    lcfg = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "tokenizer_class": "PreTrainedTokenizerFast"}
    write_golden("llama3_bpe", save(llama3, "llama3-bpe", lcfg), use_config_flags=False)


if __name__ == "__main__":
    print("tokenizers", tokenizers.__version__, "corpus", len(CORPUS), "texts")
    assert len(CORPUS) >= 200
    deepseek()
    llama2_family()
    byte_level_family()
