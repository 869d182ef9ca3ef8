#!/usr/bin/env python3
"""Write tests/fixtures/tokenizer_golden.json: reference token ids from Hugging Face for the
SmolLM2 GGUF tokenizer, reference pre-tokenizer splits for the SmolLM2 and Llama 3 patterns, and
reference character classes for the Unicode blocks that examples/llama3/tokenizer.hpp covers;
with --qwen2, tests/fixtures/tokenizer_golden_qwen2.json for the Qwen2.5(-Coder) GGUF tokenizer.

  python3 -m venv /tmp/tokvenv
  /tmp/tokvenv/bin/pip install gguf "transformers<5" tokenizers jinja2 regex
  /tmp/tokvenv/bin/python tools/make_tokenizer_golden.py            # writes the SmolLM2 fixture
  /tmp/tokvenv/bin/python tools/make_tokenizer_golden.py --qwen2    # writes the Qwen2 fixture
  /tmp/tokvenv/bin/python tools/make_tokenizer_golden.py --print-unicode-tables   # C++ tables

Why "transformers<5": transformers 5 imports torch to read any GGUF file, and torch is not needed
for the tokenizer. transformers 4.x only asks whether torch is importable before reading the
metadata (return_tensors=False), so we tell it "yes" and it never touches torch.

What the Hugging Face GGUF loader does with SmolLM2 (recorded in the fixture):
  * it prepends tokenizer.ggml.bos_token_id (1, <|im_start|>) although the file says
    tokenizer.ggml.add_bos_token = false; the ids stored here are encoded with
    add_special_tokens=False, i.e. without it, which is also what llama.cpp does;
  * it uses the plain GPT-2 ByteLevel pre-tokenizer, while SmolLM2's own tokenizer (and
    llama.cpp's "smollm" pre type) first splits every numeric character apart
    (Digits(individual_digits=True)). SmolLM2 has no merge involving an ASCII digit, so the two
    agree on most texts, but not where a space precedes a non-ASCII number such as " ½": the
    loader keeps " ½" whole and BPE merges the space with the first byte. The fixture's "ids" are
    SmolLM2's own (the loader's tokenizer with SmolLM2's pre-tokenizer put back); where the
    loader's plain result differs it is kept as "ids_hf_gguf_loader" for the record.

What the Hugging Face GGUF loader does with Qwen2.5 (pre "qwen2"; GGUFQwen2Converter, recorded in
the Qwen2 fixture):
  * unlike SmolLM2 it does build Qwen2's real pipeline: the NFC normalizer and the split
    `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
    \s*[\r\n]+|\s+(?!\S)|\s+` (Llama 3's but with single digits; llama.cpp's "qwen2" pre type
    uses the same split, written with [sS]-style classes, but no NFC), then ByteLevel without
    its regex; it adds no BOS (Qwen has add_bos_token = false and no bos_token);
  * but it registers only <|endoftext|>, <|im_start|> and <|im_end|> as added tokens, so the
    other 19 control / user-defined tokens of the file (<|fim_prefix|>, <|repo_name|>,
    <|file_sep|>, <tool_call>, ...) are spelled out by BPE ("<|fim_prefix|>" -> 7 ids), while
    Qwen's own tokenizer.json has all 22 (ids 151643-151664) as added tokens. The fixture's "ids"
    are Qwen's own (the loader's tokenizer with every control / user-defined token of the GGUF
    added back); where the loader's plain result differs it is kept as "ids_hf_gguf_loader".
  * NFC means a text that is not in NFC (e.g. "e" + U+0301) is encoded as its NFC form and
    decodes to that; such cases carry "text_nfc". "nfc" holds extra normalization checks.
"""
import argparse
import json
import os
import unicodedata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "tokenizer_golden.json")
QWEN2_MODEL = os.path.join(REPO, ".cache", "models", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
QWEN2_OUT = os.path.join(REPO, "tests", "fixtures", "tokenizer_golden_qwen2.json")

# The split pattern of Llama 3's tokenizer (llama.cpp pre type "llama-bpe").
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# The split pattern of Qwen2's tokenizer.json (llama.cpp pre type "qwen2"): Llama 3's with \p{N}.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Unicode blocks whose letter/number classes tokenizer.hpp knows exactly (Unicode of this Python);
# every code point outside them counts as "other" there. Keep in sync with the C++ comment.
COVERED_BLOCKS = [
    (0x0000, 0x07FF),    # Latin, IPA, Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac, Thaana, NKo
    (0x0900, 0x097F),    # Devanagari
    (0x0E00, 0x0E7F),    # Thai
    (0x10A0, 0x10FF),    # Georgian
    (0x1100, 0x11FF),    # Hangul Jamo
    (0x1E00, 0x1FFF),    # Latin Extended Additional, Greek Extended
    (0x2000, 0x2BFF),    # punctuation, super/subscripts, letterlike, number forms, enclosed, dingbats
    (0x3000, 0x9FFF),    # CJK symbols, kana, Bopomofo, Hangul compatibility Jamo, CJK Ext A, CJK
    (0xAC00, 0xD7FF),    # Hangul syllables, Jamo Extended-B
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFB00, 0xFB4F),    # alphabetic presentation forms (ligatures, Hebrew)
    (0xFF00, 0xFFEF),    # halfwidth and fullwidth forms
    (0x1D400, 0x1D7FF),  # mathematical alphanumeric symbols
    (0x20000, 0x3134F),  # CJK Extensions B..G, compatibility supplement
]

CASES = [
    ("plain", "Hello world"),
    ("empty", ""),
    ("single_space", " "),
    ("python_code", "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n"),
    ("cpp_code_tabs", "int main() {\n\tstd::printf(\"%d\\n\", 42);\n\treturn 0;\n}\n"),
    ("latin_accents", "Café naïve résumé — déjà vu, Ångström, façade, Zürich, ½ price"),
    ("combining_marks", "e\u0301 vs \u00e9, n\u0303o, A\u030a"),
    ("cjk", "我爱自然语言处理。今日は良い天気ですね。한국어 텍스트입니다!"),
    ("emoji", "Emoji test: 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ done"),
    ("cyrillic", "Привет, мир! Съешь же ещё этих мягких французских булок."),
    ("other_scripts", "Ελληνικά, العربية, עברית, हिन्दी, ภาษาไทย, ქართული"),
    ("whitespace_runs", "a  b   c    d\n\n\n  e \t\t f   \n"),
    ("tabs_newlines", "line1\r\nline2\n\tindented\n\n\nend\r\r\n"),
    ("unicode_spaces", "a\u00a0b\u3000c\u2003d\u202fe \u00a0 f"),
    ("digits", "The year 2024, pi = 3.14159265358979, and 1234567890123456789. ４５６ and ²³"),
    ("contractions", "I'm sure you'll see they've said it's what we'd do. DON'T SHOUT, It'S fine, y'all"),
    ("special_tokens", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
    ("special_tokens_glued", "<|im_start|<|im_end|> <file_sep>x<|endoftext|><|endoftext|>y <reponame>"),
    ("leading_trailing_spaces", "   leading and trailing spaces   "),
    ("only_whitespace", " \n \n\t"),
    ("punctuation", "Wait... what?!?! (yes) [no] {maybe} <tag attr=\"v\"/> @user #hash $5.00 100% a&b"),
    ("url_path", "https://example.com/path?q=1&x=y#frag /usr/local/bin/python3 C:\\Windows\\sys32"),
    ("json", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true, \"c\": -0.5e10}}"),
    ("mixed_no_spaces", "abc123def４５６ＸＹＺ𝐀𝐁𝐂x𠀀𠀁"),
    ("markdown", "# Title\n\n- item 1\n- item 2\n\n**bold** _it_ `code`\n\n| a | b |\n|---|---|"),
    ("control_chars", "ctl\x04\x06 x\x1d\x07y"),  # bytes 0x04 0x06 0x1d have no token: unknown id
    ("prose", "The quick brown fox jumps over the lazy dog. " * 3
              + "Tokenizers split text into pieces; each piece becomes one or more ids. "
              + "Byte-level BPE never fails: every byte has a symbol.\n"),
]

CHAT_MESSAGES = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Germany? Answer in one word."},
]

# Extra strings only for the pre-tokenizer splits: edge cases of the patterns.
PRETOKENIZE_ONLY = [
    "x\u0085y\u001cz\u000bw\u000cv",
    "'S 'LL 'Re 've 'd'm 'x ''s",
    "\r\n\r\n  \n x  \n\n",
    "  \t\n",
    "a\n\n\nb",
    "  ...\n\n  !!",
    "123456789 12 1 ab1cd23",
    "नमस्ते दुनिया",
    "¿Qué? ¡Sí! «quote» ‹x›",
    "tab\tsep\ttext",
    "ends with spaces   ",
    "🙂🙂 🙂x",
]

# More pattern edge cases for the Qwen2 splits.
QWEN2_PRETOKENIZE_ONLY = [
    "12 345 6789 ١٢٣ ½¾ x2y3",
    " 1 \n2\n 3",
    "'s'S'\u017f'K'\u212a'lL'rE",
    "a\r\n\r\n\tb \r c\n\u00a0\nd",
    "   \n\n   x",
    " !!\n\n\n?? \r\n",
    "\u3000\u3000字\u00a0word",
    "x'\u017ft x'\u017f\u017f 'St 'Ke x'\u212a 'LLx",  # (?i) folds U+017F to s (and U+212A to k)
]


# Code-heavy and Qwen-specific texts, on top of CASES, for the Qwen2 fixture.
CPP_HEADER = "/usr/include/c++/12/bits/stl_algo.h"  # its first 6000 characters (stored in the fixture)
QWEN2_EXTRA_CASES = [
    ("python_class",
     "import numpy as np\nfrom typing import List, Optional\n\n\nclass Matrix:\n"
     "    \"\"\"A 2-D matrix.\"\"\"\n\n    def __init__(self, rows: int, cols: int) -> None:\n"
     "        self.data = [[0.0] * cols for _ in range(rows)]\n\n"
     "    def __repr__(self):\n        return f\"Matrix({len(self.data)}x{len(self.data[0])})\"\n\n"
     "    @staticmethod\n    def eye(n):  # identity\n        m = Matrix(n, n)\n"
     "        for i in range(n):\n            m.data[i][i] = 1.0\n        return m\n\n\n"
     "if __name__ == '__main__':\n\tprint(Matrix.eye(3), 0x1F, 1e-9, 3_000_000, r'\\d+')\n"),
    ("cpp_template",
     "template <typename T, size_t N>\nconstexpr std::array<T, N> iota() noexcept {\n"
     "  std::array<T, N> a{};\n  for (size_t i = 0; i < N; ++i) a[i] = static_cast<T>(i);\n"
     "  return a;\n}\n// TODO(qwen): a->b, a::b, x<<=2, y>>=3, p != q && r || !s, ~0u\n"
     "#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"),
    ("cuda_kernel",
     "__global__ void saxpy(int n, float a, const float* __restrict__ x, float* y) {\n"
     "    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) y[i] = a * x[i] + y[i];\n}\n"
     "saxpy<<<(n + 255) / 256, 256>>>(n, 2.0f, d_x, d_y);\n"),
    ("javascript_rust",
     "const f = async (x) => { await fetch(`/api/${x}`); };\nlet v: Vec<u8> = vec![1, 2, 3];\n"
     "fn main() -> Result<(), Box<dyn Error>> { println!(\"{:?}\", v); Ok(()) }\n"),
    ("long_digits", "31415926535897932384626433832795028841971693993751 and 000000000000 and 1,234,567.890"),
    ("digit_mix", "v1.2.3-rc4 0xDEADBEEF 1e10 2024-12-05T21:06:00Z 127.0.0.1:8080 ①②③ ٣٤٥ ४५६"),
    ("cjk_emoji_mix", "这是一个测试🙂。コードを書く😀 and 코드 작성👨‍💻!「引用」（括号）、句号。"),
    ("whitespace_deep", "x" + " " * 17 + "y\n\n\n\n" + "\t" * 6 + "z" + " \n" * 3 + "    \r\n\r\n   end   "),
    ("indent_blocks", "def f():\n    if x:\n        return 1\n    \n    return 2\n\n\n\n        \n"),
    ("qwen_specials",
     "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|endoftext|>"),
    ("fim_prompt",
     "<|repo_name|>ftp\n<|file_sep|>main.py\n<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n"
     "print(add(1, 2))<|fim_middle|>"),
    ("all_specials",
     "<|object_ref_start|><|object_ref_end|><|box_start|><|box_end|><|quad_start|><|quad_end|>"
     "<|vision_start|><|vision_end|><|vision_pad|><|image_pad|><|video_pad|><tool_call></tool_call>"
     "<|fim_pad|>x<|im_end|><|im_end|> <|im_start|"),
    ("tool_call", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
    ("nfc_needed", "Cafe\u0301 A\u030a o\u0308\u0304 \u1e0b\u0323 q\u0307\u0323 \u212b \u2126 \uf900 \u1100\u1161\u11a8 \u0915\u093c"),
    ("contractions_unicode", "'\u017f 'S '\u212a 'LL 'Ve it'\u017f don'T"),
]


def byte_to_unicode():
    """GPT-2's reversible map from bytes to printable characters."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def char_class(cp):
    cat = unicodedata.category(chr(cp))[0]
    return "L" if cat == "L" else "N" if cat == "N" else "O"


def class_ranges(klass):
    ranges = []
    for lo, hi in COVERED_BLOCKS:
        start = None
        for cp in range(lo, hi + 2):
            inside = cp <= hi and char_class(cp) == klass
            if inside and start is None:
                start = cp
            elif not inside and start is not None:
                if ranges and ranges[-1][1] + 1 == start:
                    ranges[-1] = (ranges[-1][0], cp - 1)
                else:
                    ranges.append((start, cp - 1))
                start = None
    return ranges


def print_unicode_tables():
    print(f"// Generated by tools/make_tokenizer_golden.py --print-unicode-tables "
          f"(Unicode {unicodedata.unidata_version}).")
    for name, klass in (("kLetterRanges", "L"), ("kNumberRanges", "N")):
        ranges = class_ranges(klass)
        print(f"constexpr CodeRange {name}[] = {{")
        line = "   "
        for lo, hi in ranges:
            item = f" {{0x{lo:X}, 0x{hi:X}}},"
            if len(line) + len(item) > 100:
                print(line)
                line = "   "
            line += item
        print(line)
        print("};")


def canonical_decompositions():
    """(cp, first, second or 0, composes) for every code point with a canonical decomposition
    (Hangul syllables excepted: they are algorithmic). `composes` is 1 for a primary composite,
    i.e. NFC puts first+second back together into cp (no composition exclusion)."""
    out = []
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        composes = int(len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(cp)
                       and unicodedata.combining(chr(parts[0])) == 0)
        out.append((cp, parts[0], parts[1] if len(parts) == 2 else 0, composes))
    return out


def combining_class_ranges():
    """(lo, hi, ccc) runs of equal non-zero Canonical_Combining_Class."""
    out = []
    for cp in range(0x110000):
        c = unicodedata.combining(chr(cp))
        if not c:
            continue
        if out and out[-1][1] + 1 == cp and out[-1][2] == c:
            out[-1] = (out[-1][0], cp, c)
        else:
            out.append((cp, cp, c))
    return out


def print_items(name, ctype, items):
    print(f"inline constexpr {ctype} {name}[] = {{")
    line = "   "
    for item in items:
        item = " " + item + ","
        if len(line) + len(item) > 100:  # 100 columns, as the rest of the C++
            print(line)
            line = "   "
        line += item
    print(line)
    print("};")


def print_nfc_tables():
    print(f"// Generated by tools/make_tokenizer_golden.py --print-unicode-tables "
          f"(Unicode {unicodedata.unidata_version}).")
    print_items("kCanonicalDecompositions", "Decomposition",
                [f"{{0x{cp:X},0x{a:X},0x{b:X},{c}}}" for cp, a, b, c in canonical_decompositions()])
    print_items("kCombiningClasses", "CombiningClassRange",
                [f"{{0x{lo:X},0x{hi:X},{c}}}" for lo, hi, c in combining_class_ranges()])


def class_samples():
    """Every code point at a class boundary inside the covered blocks, and the one before it:
    checking these is as strong as checking every code point of the blocks against the ranges."""
    samples = {"L": [], "N": [], "O": []}
    for lo, hi in COVERED_BLOCKS:
        prev = None
        for cp in range(lo, hi + 1):
            k = char_class(cp)
            if cp == lo or k != prev:
                if cp > lo:
                    samples[prev].append(cp - 1)
                samples[k].append(cp)
            prev = k
        samples[prev].append(hi)
    return {k: sorted(set(v)) for k, v in samples.items()}


def load_hf_tokenizer(model_path):
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    gguf_utils.is_torch_available = lambda: True  # metadata only: torch is never imported
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.dirname(model_path),
                                         gguf_file=os.path.basename(model_path))


def nfc_checks():
    """Texts for the C++ NFC normalizer and their NFC: every canonically decomposable character
    given decomposed, marks in the wrong order, blocked and excluded compositions, Hangul."""
    import random
    decomposed = " ".join(unicodedata.normalize("NFD", chr(cp)) for cp, _, _, _ in canonical_decompositions())
    hangul = "".join(unicodedata.normalize("NFD", chr(cp)) for cp in range(0xAC00, 0xD7A4, 97))
    edge = [
        "a\u0323\u0307 a\u0307\u0323 \u1e0b\u0323 d\u0307\u0323 q\u0323\u0307",  # reordering
        "a\u0301\u0301 e\u0327\u0301 o\u031b\u0301 u\u0308\u0301 \u0301\u0301x \u0301",  # blocked / leading marks
        "\u0958 \u0915\u093c \u2adc \u0344 \u0f73 \u212b \u2126 \u00c5 \uf900 \u2f800",  # exclusions, singletons
        "\u1100\u1161 \u1100\u1161\u11a8 \uac00\u11a8 \u1100\u1100\u1161 \u1161\u11a8 \uac01\u11a8",  # Hangul
        "\u0b47\u0b3e \u0b47\u0300\u0b3e \u09c7\u09be \u1025\u102e \u0cc6\u0cc2\u0cd5",  # starter+starter
        "x\u05b0\u05b1\u0591 \u0e38\u0e48 \u302a\u302b \U0001d15e\U0001d165",
    ]
    rng = random.Random(1234)
    bases = "aeiouAEIOUcnsyzCNSYZ\u03b1\u03b5\u0391\u0438\u0418\u0435 "
    marks = [0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x30a, 0x30b, 0x30c, 0x31b,
             0x323, 0x324, 0x327, 0x328, 0x331, 0x342, 0x345, 0x313, 0x314]
    fuzz = "".join(rng.choice(bases) + "".join(chr(rng.choice(marks)) for _ in range(rng.randrange(4)))
                   for _ in range(600))
    texts = [("decomposed_all", decomposed), ("hangul_jamo", hangul), ("fuzz_marks", fuzz)]
    texts += [(f"edge_{i}", t) for i, t in enumerate(edge)]
    return [{"name": n, "text": t, "nfc": unicodedata.normalize("NFC", t)} for n, t in texts]


def qwen2_main(model_path, out_path):
    import regex
    import tokenizers
    import transformers
    from gguf import GGUFReader
    from tokenizers import AddedToken, Regex, pre_tokenizers
    from tokenizers import Tokenizer as HfTokenizer

    hf = load_hf_tokenizer(model_path)
    backend = hf.backend_tokenizer
    config = json.loads(backend.to_str())
    # The loader's pipeline must be Qwen2's own: NFC, then the split, then ByteLevel without regex.
    assert config["normalizer"] == {"type": "NFC"}, config["normalizer"]
    split = config["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split" and split["pattern"]["Regex"] == QWEN2_PATTERN, split
    assert split["behavior"] == "Isolated" and not split["invert"], split
    assert config["pre_tokenizer"]["pretokenizers"][1]["use_regex"] is False

    # Qwen's own added tokens: every control (special) and user-defined (not special) token.
    reader = GGUFReader(model_path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    real = HfTokenizer.from_str(backend.to_str())
    loader_added = {t["content"] for t in config["added_tokens"]}
    added = []
    for i, (text, ty) in enumerate(zip(tokens, types)):
        if ty in (3, 4):
            added.append(text)
            real.add_tokens([AddedToken(text, special=(ty == 3), normalized=False)])
            assert real.token_to_id(text) == i, (text, i)
    print(f"GGUF control/user-defined tokens: {len(added)}; the HF loader added {sorted(loader_added)}")

    with open(CPP_HEADER, encoding="utf-8") as f:
        header = f.read()[:6000]
    all_cases = CASES + QWEN2_EXTRA_CASES + [("cpp_header_stl_algo", header)]
    cases = []
    for name, text in all_cases:
        ids = real.encode(text, add_special_tokens=False).ids
        loader_ids = hf(text, add_special_tokens=False)["input_ids"]
        case = {"name": name, "text": text, "ids": ids}
        nfc = unicodedata.normalize("NFC", text)
        decoded = real.decode(ids, skip_special_tokens=False)
        assert decoded == nfc, (name, decoded, nfc)
        if nfc != text:
            case["text_nfc"] = nfc
        if loader_ids != ids:
            case["ids_hf_gguf_loader"] = loader_ids
            print(f"note: case {name}: the GGUF loader gives other ids ({len(loader_ids)} vs {len(ids)})")
        cases.append(case)
    assert hf("Hello world")["input_ids"] == hf("Hello world", add_special_tokens=False)["input_ids"]

    conversations = [
        ("user", [{"role": "user", "content": "Write a Python function that reverses a string."}]),
        ("system_user", [{"role": "system", "content": "You are a terse C++ expert."},
                         {"role": "user", "content": "What does std::move do?"}]),
        ("multi_turn", CHAT_MESSAGES),
    ]
    chats = []
    for name, messages in conversations:
        for gen in (True, False):
            rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            chats.append({"name": name, "messages": messages, "add_generation_prompt": gen,
                          "rendered": rendered, "ids": real.encode(rendered, add_special_tokens=False).ids})

    # Splits of the exact pattern by the Python regex module, checked against HF's Split.
    hf_split = pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False)
    compiled = regex.compile(QWEN2_PATTERN)
    special_names = {"special_tokens", "special_tokens_glued", "qwen_specials", "fim_prompt",
                     "all_specials", "tool_call"}
    pre_texts = [t for n, t in all_cases if n not in special_names]
    pre_texts += PRETOKENIZE_ONLY + QWEN2_PRETOKENIZE_ONLY
    pretok = []
    for t in pre_texts:
        pieces = compiled.findall(t)
        assert "".join(pieces) == t, t
        hf_pieces = [p for p, _ in hf_split.pre_tokenize_str(t)]
        if hf_pieces != pieces:
            raise SystemExit(f"regex and HF Split disagree on {t!r}:\n{pieces}\n{hf_pieces}")
        pretok.append({"text": t, "pieces": pieces})

    golden = {
        "model": os.path.basename(model_path),
        "generator": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "regex": regex.__version__,
            "unicode": unicodedata.unidata_version,
        },
        "pattern": QWEN2_PATTERN,
        "chat_template": reader.fields["tokenizer.chat_template"].contents(),
        "hf_gguf_loader_added_tokens": sorted(loader_added),
        "added_tokens": added,
        "note": ("ids: add_special_tokens=False, Qwen's own tokenizer (the HF GGUF loader's NFC + "
                 "split + ByteLevel, with every control/user-defined token of the GGUF added back; "
                 "the loader adds only hf_gguf_loader_added_tokens, ids_hf_gguf_loader records where "
                 "that changes ids). text_nfc: what the ids decode to when the text is not NFC. "
                 "pretokenize: the Python regex module on the exact pattern (equal to HF's Split)."),
        "cases": cases,
        "chats": chats,
        "pretokenize": {"qwen2": pretok},
        "nfc": nfc_checks(),
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path}: {len(cases)} cases, {len(chats)} chats, {len(pretok)} splits, "
          f"{os.path.getsize(out_path)} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help=f"GGUF file (default {DEFAULT_MODEL}, with --qwen2 {QWEN2_MODEL})")
    parser.add_argument("--out", help=f"fixture to write (default {DEFAULT_OUT}, with --qwen2 {QWEN2_OUT})")
    parser.add_argument("--qwen2", action="store_true", help="write the Qwen2 fixture instead")
    parser.add_argument("--print-unicode-tables", action="store_true")
    args = parser.parse_args()
    if args.print_unicode_tables:
        print_unicode_tables()
        print_nfc_tables()
        return
    if args.qwen2:
        qwen2_main(args.model or QWEN2_MODEL, args.out or QWEN2_OUT)
        return
    args.model = args.model or DEFAULT_MODEL
    args.out = args.out or DEFAULT_OUT

    import tokenizers
    import transformers
    from tokenizers import Regex, pre_tokenizers

    hf = load_hf_tokenizer(args.model)
    backend = hf.backend_tokenizer

    # SmolLM2's own pre-tokenizer, to check that the GGUF loader's plain ByteLevel agrees.
    smollm_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    llama3_pre = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False)
    from tokenizers import Tokenizer as HfTokenizer
    smollm_tok = HfTokenizer.from_str(backend.to_str())
    smollm_tok.pre_tokenizer = smollm_pre

    default_ids = hf("Hello world")["input_ids"]
    plain_ids = hf("Hello world", add_special_tokens=False)["input_ids"]
    adds_bos = len(default_ids) == len(plain_ids) + 1

    cases = []
    for name, text in CASES:
        ids = hf(text, add_special_tokens=False)["input_ids"]
        ref = smollm_tok.encode(text, add_special_tokens=False).ids
        case = {"name": name, "text": text, "ids": ref}
        if ids != ref:
            case["ids_hf_gguf_loader"] = ids
            print(f"note: case {name}: the GGUF loader's plain ByteLevel gives other ids")
        cases.append(case)

    rendered = hf.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    chat = {
        "messages": CHAT_MESSAGES,
        "add_generation_prompt": True,
        "rendered": rendered,
        "ids": smollm_tok.encode(rendered, add_special_tokens=False).ids,
    }

    unbyte = {v: k for k, v in byte_to_unicode().items()}

    def smollm_pieces(text):
        out = []
        for piece, _ in smollm_pre.pre_tokenize_str(text):
            out.append(bytes(unbyte[c] for c in piece).decode("utf-8"))
        return out

    def llama3_pieces(text):
        return [piece for piece, _ in llama3_pre.pre_tokenize_str(text)]

    # Special tokens are cut out before pre-tokenization, so they are not pre-tokenizer input.
    pre_texts = [t for n, t in CASES if not n.startswith("special")] + PRETOKENIZE_ONLY
    pretokenize = {
        "smollm": [{"text": t, "pieces": smollm_pieces(t)} for t in pre_texts],
        "llama-bpe": [{"text": t, "pieces": llama3_pieces(t)} for t in pre_texts],
    }

    golden = {
        "model": os.path.basename(args.model),
        "generator": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "unicode": unicodedata.unidata_version,
        },
        "hf_default_adds_bos": adds_bos,
        "hf_bos_id": hf.bos_token_id,
        "note": ("ids are encoded with add_special_tokens=False (no BOS) and SmolLM2's own "
                 "pre-tokenizer (Digits(individual_digits=True) + ByteLevel). By default the HF "
                 "GGUF loader prepends hf_bos_id although the file has add_bos_token=false, and "
                 "it drops the digit split; ids_hf_gguf_loader records where that changes ids."),
        "cases": cases,
        "chat": chat,
        "pretokenize": pretokenize,
        "char_classes": class_samples(),
        "covered_blocks": [[lo, hi] for lo, hi in COVERED_BLOCKS],
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases, hf adds bos by default: {adds_bos}")


if __name__ == "__main__":
    main()
