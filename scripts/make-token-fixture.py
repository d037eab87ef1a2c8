#!/usr/bin/env python3
"""Generate worker/tests/fixtures/smollm2_tokens.json: llama.cpp's tokenization of a varied
corpus with the SmolLM2-135M-Instruct Q4_1 GGUF, the reference for our tokenizer parity tests.

Run (from the repository root):
    "$(scripts/setup-bench.sh llamacpp)" scripts/make-token-fixture.py [--model PATH] [--out PATH]

--model defaults to the path printed by scripts/fetch-models.sh
($ARENA_MODELS or ~/.cache/arena/models, SmolLM2-135M-Instruct.Q4_1.gguf).

Needs llama-cpp-python==0.3.36 built WITHOUT AMX (see DESIGN.md section 12):
scripts/setup-bench.sh llamacpp builds it with the CPU's own AVX/AVX-512 flags and AMX off.

Each case records llm.tokenize(text.encode(), add_bos=False, special=True) (special tokens such
as <|im_start|> written in the text are parsed as special tokens) and
llm.detokenize(ids) decoded as UTF-8 with errors="replace" (text_round_trip; special=False, so
control tokens like <|im_start|> decode to nothing) and the same with special=True
(text_round_trip_special).
"""
import argparse
import hashlib
import json
import os
import sys

MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

CHATML = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n"
    "<|im_start|>assistant\n"
)

PY_CODE = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print([fib(i) for i in range(10)])  # [0, 1, 1, 2, ...]
'''

RUST_CODE = '''use std::collections::HashMap;

fn main() {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in "a b a c".split_whitespace() {
        *counts.entry(w).or_insert(0) += 1;
    }
    println!("{:?}", counts);
}
'''

JSON_CODE = '''{
  "model": "smollm2-135m",
  "messages": [
    {"role": "user", "content": "Hi!"}
  ],
  "temperature": 0.7,
  "max_tokens": 128,
  "stream": true
}'''

CORPUS = [
    # ASCII prose and punctuation
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "In 1492, Columbus sailed the ocean blue; he found... something?!",
    "What is the capital of France? Answer in one word.",
    "!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
    "\"quoted\" 'single' `backtick` <angle> (paren) [bracket] {brace}",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&x=y#frag",
    # digits and numbers
    "0",
    "42",
    "12345678901234567890",
    "3.14159",
    "1,000,000",
    "-273.15°C and 1e-9 and 0xFF and 2^32 = 4294967296",
    "Call 555-0123 on 2024-06-01 at 12:30:45.",
    # contractions and casing
    "I'm, you're, it's, we'll, they'd, Don't",
    "I'M YOU'RE IT'S WE'LL THEY'D DON'T",
    "she's 'quoted' rock'n'roll o'clock",
    "camelCaseIdentifier snake_case_name SCREAMING_CASE kebab-case",
    # code
    PY_CODE,
    RUST_CODE,
    JSON_CODE,
    "if (x != 0 && y >= 1) { return x << 2 | y >> 1; } // done",
    "\tindented with tab\n\t\tdouble tab\n    four spaces\n        eight spaces",
    # CJK, Korean
    "你好，世界！今天天气很好。",
    "機械学習は人工知能の一分野です。ひらがな、カタカナ、漢字。",
    "안녕하세요, 세계! 한국어 토큰화 테스트입니다.",
    # emoji
    "I love pizza 🍕 and 🚀 rockets 😀😂🤣",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩‍💻 coder",
    "👍🏻👍🏼👍🏽👍🏾👍🏿 skin tones",
    "❤️ ☺️ ✔️ 1️⃣ #️⃣ 🇫🇷🇯🇵",
    # accented Latin and other scripts
    "français, Ñandú, Zürich, São Paulo, Ærøskøbing, Kraków, İstanbul",
    "naïve café résumé coöperate façade jalapeño",
    "مرحبا بالعالم، هذا اختبار.",
    "שלום עולם, זו בדיקה.",
    "Привет, мир! Это проверка токенизатора.",
    "Γειά σου Κόσμε",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    # whitespace
    "",
    " ",
    "  ",
    "   leading spaces",
    "trailing spaces   ",
    "multiple    spaces   between     words",
    "\t",
    "tab\tseparated\tvalues",
    "\n",
    "\n\n\n",
    "a\r\nb",
    "line one\nline two\n\nline four\n",
    " \n \t \r\n  mixed whitespace  \n",
    "\u00a0non-breaking\u00a0space and\u200bzero\u200bwidth",
    # special tokens
    "<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|><|im_end|><|endoftext|>",
    "text before <|im_end|> text after",
    "<|im_start|> not at start, <|im_start |> broken, <im_start> fake",
    CHATML,
    CHATML + "Paris<|im_end|>\n",
    # mixed everything
    "Mixed: Hello 世界 🌍! Price: $1,234.56 (≈ €1.100) — “smart quotes” ‘too’ … naïve\tTAB\n"
    "<|im_start|>user\nПривет 👋🏽<|im_end|>\nx = [1, 2, 3]; // コード",
    "a" * 100,
    "ab " * 40,
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\u0000\u0001 control \u007f chars",
]


def default_model():
    base = os.environ.get("ARENA_MODELS", os.path.expanduser("~/.cache/arena/models"))
    return os.path.join(base, "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=default_model())
    ap.add_argument(
        "--out",
        default=os.path.join(here, "..", "worker", "tests", "fixtures", "smollm2_tokens.json"),
    )
    args = ap.parse_args()

    with open(args.model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if sha != MODEL_SHA256:
        sys.exit(f"model sha256 {sha} != expected {MODEL_SHA256}")

    import llama_cpp

    llm = llama_cpp.Llama(model_path=args.model, vocab_only=True, verbose=False)
    cases = []
    for text in CORPUS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        ids = [int(i) for i in ids]
        round_trip = llm.detokenize(ids).decode("utf-8", errors="replace")
        round_trip_special = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        cases.append(
            {
                "text": text,
                "ids": ids,
                "text_round_trip": round_trip,
                "text_round_trip_special": round_trip_special,
            }
        )

    doc = {
        "model_sha256": MODEL_SHA256,
        "generator": (
            f"llama-cpp-python {llama_cpp.__version__} (llama.cpp vendored), "
            "Llama(vocab_only=True).tokenize(text.encode(), add_bos=False, special=True); "
            "text_round_trip = detokenize(ids).decode('utf-8', errors='replace') "
            "(special=False: control tokens such as <|im_start|> render as nothing); "
            "text_round_trip_special = the same with detokenize(ids, special=True); "
            "scripts/make-token-fixture.py"
        ),
        "cases": cases,
    }
    out = os.path.normpath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
