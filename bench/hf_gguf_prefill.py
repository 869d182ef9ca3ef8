#!/usr/bin/env python3
"""HF transformers' dense prefill of a GGUF model, the baseline of bench/model_ttft.cu.

Loads the GGUF with transformers (which dequantizes it with the `gguf` package) in bf16 with SDPA
attention, then times prefill (a forward pass over L tokens that returns the last position's
logits, no KV cache kept) at each length: median of --repeats CUDA-event timings after --warmup
runs. The token ids are the model's own tokens of real text (the same files model_ttft.cu reads by
default), cut to L: dense compute does not depend on which ids they are, only on L.

  python3 bench/hf_gguf_prefill.py --model .cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
      --json out.json [--lengths 4096,8192,16384,32768]

Needs torch with CUDA, transformers and gguf. Prints one line per length and writes JSON
{"bench": "hf_gguf_prefill", ..., "rows": [{"tokens", "ttft_ms", "times_ms"}, ...]}.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def document_text(want_chars):
    files = sorted(glob.glob("/usr/share/common-licenses/*"))
    files += sorted(glob.glob("/usr/lib/python3*/*.py"))
    text, used = [], 0
    for f in files:
        if used >= want_chars:
            break
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                t = fh.read()
        except OSError:
            continue
        text.append(t)
        used += len(t)
    return "\n\n".join(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--json", default="")
    ap.add_argument("--lengths", default="4096,8192,16384,32768")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",") if x]

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, model_name = os.path.split(os.path.abspath(args.model))
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_name)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_name, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa")
    model = model.to("cuda").eval()
    load_s = time.time() - t0
    impl = str(getattr(model.config, "_attn_implementation", None))
    log("loaded %s in %.1f s (transformers %s, torch %s, attention %s)" %
        (model_name, load_s, transformers.__version__, torch.__version__, impl))

    ids_all = tok(document_text(max(lengths) * 6), add_special_tokens=False)["input_ids"]
    if len(ids_all) < max(lengths):
        sys.exit("document too short: %d tokens" % len(ids_all))
    keep = {}
    for kw in ({"logits_to_keep": 1}, {"num_logits_to_keep": 1}):
        try:
            with torch.inference_mode():
                out = model(input_ids=torch.tensor([ids_all[:64]], device="cuda"), use_cache=False, **kw)
            if out.logits.shape[1] == 1:
                keep = kw
                break
        except TypeError:
            continue

    rows = []
    for L in lengths:
        ids = torch.tensor([ids_all[:L]], device="cuda")

        def run():
            with torch.inference_mode():
                model(input_ids=ids, use_cache=False, **keep)

        try:
            for _ in range(args.warmup):
                run()
            torch.cuda.synchronize()
            times = []
            for _ in range(args.repeats):
                start = torch.cuda.Event(enable_timing=True)
                stop = torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
        except torch.cuda.OutOfMemoryError as e:
            log("L=%d: out of memory (%s)" % (L, str(e).splitlines()[0]))
            rows.append({"tokens": L, "error": "out of memory"})
            torch.cuda.empty_cache()
            continue
        med = statistics.median(times)
        print("hf dense %6d tokens: TTFT %.2f ms (median of %d)" % (L, med, len(times)), flush=True)
        rows.append({"tokens": L, "ttft_ms": round(med, 3), "times_ms": [round(t, 3) for t in times]})

    if args.json:
        doc = {"bench": "hf_gguf_prefill", "model": model_name, "device": torch.cuda.get_device_name(0),
               "transformers": transformers.__version__, "torch": torch.__version__, "attention": impl,
               "dtype": "bfloat16", "load_s": round(load_s, 1), "logits_kwargs": list(keep), "rows": rows}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
