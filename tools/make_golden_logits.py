#!/usr/bin/env python3
"""Writes tests/fixtures/golden_logits.json: logits of SmolLM2-135M-Instruct (Q4_1 GGUF) computed by
HF transformers, an implementation independent of ours, for the C++ CPU reference to match; with
--model another GGUF (e.g. Qwen2.5-Coder-0.5B) into tests/fixtures/golden_logits_<file stem>.json.

transformers dequantizes the GGUF to float32 (undoing llama.cpp's Q/K row permutation) and runs its
own Llama code, so agreement checks our GGUF reading, dequantization, RoPE pairing and the forward
pass together. For every prompt and position the fixture keeps the top-5 token ids and logits and
the full-vocabulary logit max and min (the whole [T, V] matrix would be megabytes).

It also keeps `top_logits_bf16w`: the logits of the same ids after rounding every HF weight to bf16
(round to nearest even, as our loader stores them) while still computing in float32. Our CPU
reference should match those far more tightly than the float-weight logits, since the weight
rounding is then the same on both sides and only the arithmetic order differs.

Needs torch, transformers, accelerate, gguf and numpy, e.g.:
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers accelerate gguf numpy
  /tmp/venv/bin/python tools/make_golden_logits.py [--model PATH] [--out PATH] [--device cuda]

The GPU machine has torch and transformers but no `gguf`: carry its (pure-Python) wheel and
`pip install --no-deps` it there. On CUDA the float32 matmuls run without TF32 (torch's default),
so the logits are float32 results on either device.
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "golden_logits.json")

# Short prompts of different kinds: prose, a chat turn with special tokens, code, and a longer
# passage (to exercise RoPE and attention over ~40 positions).
PROMPTS = [
    "The capital of France is Paris. The capital of Germany is",
    "<|im_start|>user\nWhat is two plus two?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) +",
    "Once upon a time, in a small village at the edge of a dark forest, there lived an old "
    "woodcutter and his three children. Every morning he walked into the forest to",
]
TOP_K = 5


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("FTP_MODEL_PATH", DEFAULT_MODEL))
    ap.add_argument("--out", default="")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()
    if not args.out:
        stem = os.path.splitext(os.path.basename(args.model))[0]
        args.out = DEFAULT_OUT if args.model == DEFAULT_MODEL else os.path.join(
            os.path.dirname(DEFAULT_OUT), "golden_logits_%s.json" % stem)

    import copy

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isfile(args.model):
        sys.exit(f"model not found: {args.model} (run scripts/fetch_model.sh)")
    model_dir, model_name = os.path.split(os.path.abspath(args.model))

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_name)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_name, dtype=torch.float32)
    model = model.to(args.device).eval()
    # The same model with every weight rounded to bf16 (torch rounds to nearest even).
    model_bf16w = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p in model_bf16w.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))

    out = {
        "model_file": model_name,
        "model_bytes": os.path.getsize(args.model),
        "generator": f"tools/make_golden_logits.py, torch {torch.__version__}, "
                     f"transformers {transformers.__version__}, float32 weights and activations on {args.device}",
        "top_k": TOP_K,
        "prompts": [],
    }
    for text in PROMPTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert 8 <= len(ids) <= 40, (text, len(ids))
        with torch.no_grad():
            x = torch.tensor([ids], device=args.device)
            logits = model(x).logits[0].float().cpu()  # [T, V]
            logits_bf16w = model_bf16w(x).logits[0].float().cpu()
        top = torch.topk(logits, TOP_K, dim=-1)
        positions = []
        for t in range(len(ids)):
            positions.append({
                "top_ids": top.indices[t].tolist(),
                "top_logits": [round(float(x), 5) for x in top.values[t]],
                "top_logits_bf16w": [round(float(logits_bf16w[t, i]), 5) for i in top.indices[t]],
                "max": round(float(logits[t].max()), 5),
                "min": round(float(logits[t].min()), 5),
            })
        out["prompts"].append({"text": text, "tokens": ids, "positions": positions})
        print(f"{len(ids):3d} tokens, next: {tok.decode([top.indices[-1][0].item()])!r}  <- {text[:50]!r}")

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
