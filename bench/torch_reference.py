#!/usr/bin/env python3
"""PyTorch reference for FTP on one GPU: HF transformers Llama3-8B shape, random bf16 weights.

(a) dense prefill TTFT of LlamaForCausalLM (sdpa) at L in {4k, 8k, 16k, 32k}: model(input_ids) to
    the first token's argmax, CUDA events, warm-up 2, median of 5;
(b) the paper's Algorithm 1 in plain PyTorch on the same model: for layers >= F the post-RoPE q/k
    of the layer's attention are captured, the last N queries' softmax attention is recomputed and
    summed over heads and queries, the middle tokens are sorted and cut by the cumulative eta rule
    (or a fixed keep ratio), and the FFN (RMSNorm, MLP) runs only on the P + kept + N rows
    (index_select / index_add_ into the residual). TTFT and speedup vs dense per variant, plus the
    per-layer score+select time on captured q/k;
(c) FFN GEMMs alone (gate+up, down) for the Llama3-8B FFN at M = 256 ... 32768, and the PyTorch
    gather / index_add_ of half of 32k rows;
(d) causal prefill attention alone through SDPA (default backend and each one forced) at the
    shapes of bench/attention_kernel.cu, in TFLOP/s.

Every row is guarded: an error (OOM, API mismatch) is recorded as {"error": ...} and the run goes
on. A wall-clock budget (--budget-s) skips what is left once it is spent.

Usage: python3 bench/torch_reference.py --json torch_reference.json [--lengths 4096,8192,16384,32768]
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback

T0 = time.time()


def log(msg):
    print(msg, flush=True)


def short_error(e):
    text = "%s: %s" % (type(e).__name__, e)
    return text.replace("\n", " ")[:400]


class Report:
    """Rows plus metadata, written to JSON after every section so a crash keeps what was done."""

    def __init__(self, path):
        self.path = path
        self.meta = {"bench": "torch_reference"}
        self.rows = []

    def add(self, row):
        self.rows.append(row)
        self.write()

    def write(self):
        if not self.path:
            return
        doc = dict(self.meta)
        doc["rows"] = self.rows
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, self.path)


# ----------------------------------------------------------------------------------------------
# timing


def cuda_median_ms(torch, fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times), times


# ----------------------------------------------------------------------------------------------
# FTP (Algorithm 1) in PyTorch


class FtpState:
    def __init__(self, P=100, N=50, F=10):
        self.P, self.N, self.F = P, N, F
        self.prune = False  # FTP active in the wrapped FFNs
        self.capture = False  # the attention hook stores q/k
        self.rule = "eta"
        self.eta = 0.9
        self.ratio = 0.4
        self.q_last = None  # [B, Hq, N, d] post-RoPE queries of the last N positions
        self.k = None  # [B, Hkv, L, d] post-RoPE keys
        self.scale = None
        self.captured = 0
        self.kept_rows = 0
        self.pruned_layer_rows = 0
        self._mask_cache = {}
        self._arange_cache = {}

    def reset_counts(self):
        self.captured = 0
        self.kept_rows = 0
        self.pruned_layer_rows = 0

    def causal_mask(self, torch, n, groups, device):
        key = (n, groups, str(device))
        m = self._mask_cache.get(key)
        if m is None:
            tri = torch.ones(n, n, dtype=torch.bool, device=device).triu(1)  # key j > query i: masked
            m = tri.repeat(groups, 1)  # rows ordered (group, query)
            self._mask_cache[key] = m
        return m

    def ends(self, torch, L, device):
        key = (L, str(device))
        r = self._arange_cache.get(key)
        if r is None:
            r = (torch.arange(self.P, device=device), torch.arange(L - self.N, L, device=device))
            self._arange_cache[key] = r
        return r


def ftp_scores(torch, state, q_last, k, scale):
    """Importance of every key position: softmax(q k^T * scale) of the last n queries (causal),
    summed over heads and queries. q_last [1, Hq, n, d], k [1, Hkv, L, d] -> fp32 [L]."""
    _, hq, n, d = q_last.shape
    hkv, L = k.shape[1], k.shape[2]
    groups = hq // hkv
    qg = q_last[0].reshape(hkv, groups * n, d)  # query head h uses kv head h // groups
    logits = torch.matmul(qg, k[0].transpose(-1, -2)).float()  # [Hkv, G*n, L]
    logits.mul_(scale)
    tail = logits[:, :, L - n:]
    tail.masked_fill_(state.causal_mask(torch, n, groups, logits.device), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return probs.sum(dim=(0, 1))


def ftp_select(torch, state, scores, L):
    """Algorithm 1 lines 3-9: sort the middle scores, keep by the eta rule or a fixed ratio, add
    the first P and last N tokens. Returns ascending kept indices (int64) and the kept count."""
    P, N = state.P, state.N
    mid = scores[P:L - N]
    vals, order = torch.sort(mid, descending=True)
    if state.rule == "eta":
        cums = torch.cumsum(vals, 0)
        threshold = cums[-1:] * state.eta
        n = int(torch.searchsorted(cums, threshold, right=True).item()) + 1  # first cumsum > threshold, + 1
    else:
        n = int(round(state.ratio * mid.numel()))
    n = max(0, min(n, mid.numel()))
    head, tail = state.ends(torch, L, scores.device)
    rows = torch.cat([head, order[:n] + P, tail])
    rows, _ = torch.sort(rows)
    return rows, rows.numel()


def make_ftp_ffn_class(torch):
    class FtpFFN(torch.nn.Module):
        """Replaces a decoder layer's MLP while its post_attention_layernorm is an Identity, so it
        receives the residual stream h itself. Dense: returns MLP(norm(h)) (the layer adds h).
        Pruned: h[R] += MLP(norm(h[R])) in place and returns 0, so the layer's h + 0 is the result."""

        def __init__(self, mlp, norm, layer_idx, state):
            super().__init__()
            self.mlp = mlp
            self.norm = norm
            self.layer_idx = layer_idx
            self.state = state

        def forward(self, h):
            st = self.state
            L = h.shape[1]
            if (not st.prune or self.layer_idx < st.F or L <= st.P + st.N or st.q_last is None or h.shape[0] != 1):
                return self.mlp(self.norm(h))
            scores = ftp_scores(torch, st, st.q_last, st.k, st.scale)
            rows, kept = ftp_select(torch, st, scores, L)
            st.kept_rows += kept
            st.pruned_layer_rows += L
            x = h.index_select(1, rows)
            y = self.mlp(self.norm(x))
            h.index_add_(1, rows, y)
            return h.new_zeros(())

    return FtpFFN


class Capture:
    """Post-RoPE q/k of each layer's attention: wraps the 'sdpa' entry of transformers'
    attention-function registry; if that cannot be done (or captures nothing), a forward pre-hook
    on every self_attn recomputes k and the last N queries from the layer input instead."""

    def __init__(self, torch, model, state):
        self.torch, self.model, self.state = torch, model, state
        self.method = None
        self.iface = None
        self.orig = None
        self.hooks = []

    def _registry(self):
        try:
            from transformers.models.llama import modeling_llama as ml
            iface = getattr(ml, "ALL_ATTENTION_FUNCTIONS", None)
            if iface is not None:
                return iface
        except Exception:
            pass
        from transformers import modeling_utils as mu
        return getattr(mu, "ALL_ATTENTION_FUNCTIONS")

    def install_registry(self):
        iface = self._registry()
        impl = getattr(self.model.config, "_attn_implementation", "sdpa") or "sdpa"
        orig = iface[impl]
        state = self.state

        def capturing(module, query, key, value, attention_mask, *args, **kwargs):
            if state.capture:
                state.q_last = query[:, :, -state.N:, :]
                state.k = key
                scale = kwargs.get("scaling", None)
                if scale is None:
                    scale = getattr(module, "scaling", None) or query.shape[-1] ** -0.5
                state.scale = scale
                state.captured += 1
            return orig(module, query, key, value, attention_mask, *args, **kwargs)

        iface[impl] = capturing
        self.iface, self.orig, self.impl = iface, orig, impl
        self.method = "attention_registry[%s]" % impl

    def install_prehook(self):
        torch, state = self.torch, self.state

        def rotate_half(x):
            h = x.shape[-1] // 2
            return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

        def rope(x, cos, sin):
            return x * cos.unsqueeze(1) + rotate_half(x) * sin.unsqueeze(1)

        def pre_hook(module, args, kwargs):
            if not state.capture:
                return None
            hs = kwargs.get("hidden_states", args[0] if len(args) > 0 else None)
            pe = kwargs.get("position_embeddings", args[1] if len(args) > 1 else None)
            if hs is None or pe is None:
                return None
            cos, sin = pe
            B, L, _ = hs.shape
            d = getattr(module, "head_dim", None) or module.q_proj.weight.shape[0] // module.config.num_attention_heads
            n = state.N
            q = module.q_proj(hs[:, -n:]).view(B, n, -1, d).transpose(1, 2)
            k = module.k_proj(hs).view(B, L, -1, d).transpose(1, 2)
            state.q_last = rope(q, cos[:, -n:], sin[:, -n:])
            state.k = rope(k, cos, sin)
            state.scale = getattr(module, "scaling", None) or d ** -0.5
            state.captured += 1
            return None

        for layer in self.model.model.layers:
            self.hooks.append(layer.self_attn.register_forward_pre_hook(pre_hook, with_kwargs=True))
        self.method = "pre_hook_recompute"

    def uninstall(self):
        if self.iface is not None:
            try:
                self.iface[self.impl] = self.orig
            except Exception:
                pass
            self.iface = None
        for h in self.hooks:
            h.remove()
        self.hooks = []


class FtpPatch:
    """Swaps (post_attention_layernorm, mlp) of every decoder layer for (Identity, FtpFFN)."""

    def __init__(self, torch, model, state):
        self.torch, self.model, self.state = torch, model, state
        self.saved = []
        self.cls = make_ftp_ffn_class(torch)

    def install(self):
        for i, layer in enumerate(self.model.model.layers):
            self.saved.append((layer.post_attention_layernorm, layer.mlp))
            layer.mlp = self.cls(layer.mlp, layer.post_attention_layernorm, i, self.state)
            layer.post_attention_layernorm = self.torch.nn.Identity()

    def uninstall(self):
        for layer, (norm, mlp) in zip(self.model.model.layers, self.saved):
            layer.post_attention_layernorm = norm
            layer.mlp = mlp
        self.saved = []


# ----------------------------------------------------------------------------------------------
# model


LLAMA3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                 num_key_value_heads=8)


def build_model(torch, args, shape=None, device="cuda"):
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    max_pos = max(32768, max(args.lengths)) + 1024
    kwargs = dict(shape or LLAMA3_8B)
    kwargs.update(num_hidden_layers=args.layers, max_position_embeddings=max_pos, rms_norm_eps=1e-5,
                  hidden_act="silu", tie_word_embeddings=False, use_cache=False, bos_token_id=128000,
                  eos_token_id=128001)
    config = None
    for extra in ({"rope_theta": 500000.0, "attn_implementation": "sdpa"}, {"rope_theta": 500000.0}, {}):
        try:
            config = LlamaConfig(**kwargs, **extra)
            break
        except Exception as e:  # noqa: BLE001 - try the next spelling
            log("LlamaConfig(%s) failed: %s" % (sorted(extra), short_error(e)))
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict):
        if "rope_theta" in rp or "rope_type" in rp or not rp:
            rp["rope_theta"] = 500000.0
            rp.setdefault("rope_type", "default")
        else:  # per layer type
            for v in rp.values():
                if isinstance(v, dict):
                    v["rope_theta"] = 500000.0
    else:
        try:
            config.rope_theta = 500000.0
        except Exception:
            pass
    try:
        config._attn_implementation = "sdpa"
    except Exception:
        pass

    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    t = time.time()
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(prev)
    model = model.to(device=device).eval()
    with torch.no_grad():  # parameters in bf16; buffers (RoPE inv_freq) keep their fp32
        for p in model.parameters():
            if p.dtype != torch.bfloat16:
                p.data = p.data.to(torch.bfloat16)
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("sdpa")
        except Exception as e:  # noqa: BLE001
            log("set_attn_implementation: %s" % short_error(e))
    # weights: make sure they are finite small noise (refill whatever init left non-finite or zero)
    refilled = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            sample = p.reshape(-1)[:65536].float()
            finite = bool(torch.isfinite(sample).all())
            peak = float(sample.abs().max()) if finite else float("inf")
            if p.dim() >= 2:
                if not finite or peak == 0.0 or peak > 1.0:  # init std 0.02: |w| stays far below 1
                    p.normal_(0.0, 0.02)
                    refilled += 1
            elif not finite or peak == 0.0 or peak > 10.0:  # RMSNorm weights: ones
                p.fill_(1.0)
                refilled += 1
        for name, b in model.named_buffers():
            if b.is_floating_point() and not bool(torch.isfinite(b).all()):
                log("WARNING: non-finite buffer %s" % name)
    if device != "cpu":
        torch.cuda.synchronize()
    info = {
        "transformers": transformers.__version__,
        "layers": args.layers,
        "attn_implementation": str(getattr(model.config, "_attn_implementation", None)),
        "rope": str(getattr(model.config, "rope_parameters", getattr(model.config, "rope_theta", None))),
        "params_b": sum(p.numel() for p in model.parameters()) / 1e9,
        "build_s": round(time.time() - t, 2),
        "refilled_params": refilled,
    }
    return model, info


def logits_kwargs(torch, model):
    ids = torch.randint(0, 1000, (1, 256), device="cuda")
    for kw in ({"logits_to_keep": 1}, {"num_logits_to_keep": 1}, {}):
        try:
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=False, **kw)
            logits = out.logits if hasattr(out, "logits") else out[0]
            if kw and logits.shape[1] != 1:
                continue
            return kw
        except TypeError:
            continue
    return {}


# ----------------------------------------------------------------------------------------------
# sections


def section_gemm(torch, report, args):
    import torch.nn.functional as Fn

    C, I = 4096, 14336
    Ms = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
    log("\n== (c) FFN GEMMs alone, Llama3-8B FFN (C=4096, I=14336), torch -> cuBLAS")
    log("%7s %10s %10s %10s %9s" % ("M", "gate_up", "down", "both_ms", "TFLOP/s"))
    try:
        g = torch.Generator(device="cuda").manual_seed(1)
        w_gu = torch.randn(2 * I, C, device="cuda", dtype=torch.bfloat16, generator=g) * C ** -0.5
        w_d = torch.randn(C, I, device="cuda", dtype=torch.bfloat16, generator=g) * I ** -0.5
        x = torch.randn(max(Ms), C, device="cuda", dtype=torch.bfloat16, generator=g)
        act = torch.randn(max(Ms), I, device="cuda", dtype=torch.bfloat16, generator=g)
    except Exception as e:  # noqa: BLE001
        report.add({"section": "ffn_gemm", "error": short_error(e)})
        return
    for M in Ms:
        try:
            xm, am = x[:M], act[:M]
            t_gu, _ = cuda_median_ms(torch, lambda: Fn.linear(xm, w_gu), 5, 20)
            t_d, _ = cuda_median_ms(torch, lambda: Fn.linear(am, w_d), 5, 20)
            t_both, _ = cuda_median_ms(torch, lambda: (Fn.linear(xm, w_gu), Fn.linear(am, w_d)), 5, 20)
            tf = 6.0 * M * C * I / (t_both * 1e-3) / 1e12
            log("%7d %10.4f %10.4f %10.4f %9.1f" % (M, t_gu, t_d, t_both, tf))
            report.add({"section": "ffn_gemm", "M": M, "gate_up_ms": t_gu, "down_ms": t_d, "total_ms": t_both,
                        "tflops": tf})
        except Exception as e:  # noqa: BLE001
            report.add({"section": "ffn_gemm", "M": M, "error": short_error(e)})
    # gather and scatter-add of half of 32k rows (C = 4096), as the PyTorch FTP does per layer
    try:
        L = 32768
        h = torch.randn(1, L, C, device="cuda", dtype=torch.bfloat16)
        rows = torch.arange(0, L, 2, device="cuda")
        y = torch.randn(1, rows.numel(), C, device="cuda", dtype=torch.bfloat16)
        t_g, _ = cuda_median_ms(torch, lambda: h.index_select(1, rows), 5, 20)
        t_a, _ = cuda_median_ms(torch, lambda: h.index_add_(1, rows, y), 5, 20)
        moved_g = 2.0 * rows.numel() * C * 2
        moved_a = 3.0 * rows.numel() * C * 2
        log("index_select 16k of 32k rows: %.4f ms (%.0f GB/s); index_add_: %.4f ms (%.0f GB/s)" %
            (t_g, moved_g / t_g / 1e6, t_a, moved_a / t_a / 1e6))
        report.add({"section": "gather_scatter", "L": L, "rows": rows.numel(), "index_select_ms": t_g,
                    "index_add_ms": t_a})
    except Exception as e:  # noqa: BLE001
        report.add({"section": "gather_scatter", "error": short_error(e)})


def section_sdpa(torch, report, args):
    """Causal prefill attention through torch SDPA at the shapes of bench/attention_kernel.cu (one
    sequence, [1, H, L, d] bf16, GQA by enable_gqa), for each backend PyTorch lets us force, and
    the default choice: TFLOP/s counted as 4 * L^2 * d * Hq / 2, as our benchmark counts them."""
    import torch.nn.functional as Fn

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception:  # noqa: BLE001
        SDPBackend, sdpa_kernel = None, None
    shapes = [("llama3-8b", 32, 8, 128), ("smollm2-135m", 9, 3, 64)]
    log("\n== (d) causal attention, torch SDPA (one sequence, bf16)")
    log("%14s %7s %10s %10s %10s" % ("shape", "L", "backend", "ms", "TFLOP/s"))
    backends = [("default", None)]
    if SDPBackend is not None:
        backends += [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                     ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    for name, Hq, Hkv, d in shapes:
        for L in [1024, 4096, 8192, 16384, 32768]:
            try:
                g = torch.Generator(device="cuda").manual_seed(L)
                q = torch.randn(1, Hq, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
                k = torch.randn(1, Hkv, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
                v = torch.randn(1, Hkv, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
            except Exception as e:  # noqa: BLE001
                report.add({"section": "sdpa", "shape": name, "L": L, "error": short_error(e)})
                continue
            flops = 4.0 * L * L * d * Hq / 2
            for backend, enum in backends:
                def run():
                    return Fn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                try:
                    if enum is None:
                        t, _ = cuda_median_ms(torch, run, 3, 10)
                    else:
                        with sdpa_kernel([enum]):
                            t, _ = cuda_median_ms(torch, run, 3, 10)
                except Exception as e:  # noqa: BLE001 - a backend may not support a shape
                    report.add({"section": "sdpa", "shape": name, "L": L, "backend": backend,
                                "error": short_error(e)})
                    continue
                tf = flops / (t * 1e-3) / 1e12
                log("%14s %7d %10s %10.4f %10.1f" % (name, L, backend, t, tf))
                report.add({"section": "sdpa", "shape": name, "Hq": Hq, "Hkv": Hkv, "d": d, "L": L,
                            "backend": backend, "median_ms": t, "tflops": tf})
            del q, k, v


VARIANTS = [("hf_dense", None, None), ("ftp_eta0.9", "eta", 0.9), ("ftp_keep0.6", "ratio", 0.6),
            ("ftp_keep0.4", "ratio", 0.4)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="")
    ap.add_argument("--lengths", default="4096,8192,16384,32768")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--first-pruned", type=int, default=10, help="F: layers >= F are pruned")
    ap.add_argument("--budget-s", type=float, default=225.0, help="skip remaining rows after this many seconds")
    ap.add_argument("--skip-gemm", action="store_true")
    ap.add_argument("--skip-sdpa", action="store_true")
    ap.add_argument("--variants", default=",".join(v[0] for v in VARIANTS),
                    help="comma list of the TTFT variants to run (default: all)")
    args = ap.parse_args()
    args.lengths = [int(x) for x in args.lengths.split(",") if x]
    args.variants = [x for x in args.variants.split(",") if x]
    report = Report(args.json)

    try:
        import torch
    except Exception as e:  # noqa: BLE001
        report.meta["error"] = "import torch: " + short_error(e)
        report.write()
        log(report.meta["error"])
        return 1
    if not torch.cuda.is_available():
        report.meta["error"] = "no CUDA device"
        report.write()
        log("torch_reference.py needs a CUDA GPU")
        return 2
    report.meta.update({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                        "P": 100, "N": 50, "F": args.first_pruned, "warmup": args.warmup, "repeats": args.repeats})
    report.write()

    def over_budget():
        return time.time() - T0 > args.budget_s

    if not args.skip_gemm:
        section_gemm(torch, report, args)
        gc.collect()
        torch.cuda.empty_cache()
    if not args.skip_sdpa:
        section_sdpa(torch, report, args)
        gc.collect()
        torch.cuda.empty_cache()

    log("\n== building LlamaForCausalLM (Llama3-8B shape, random bf16) ...")
    try:
        model, info = build_model(torch, args)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        report.meta["error"] = "model build: " + short_error(e)
        report.write()
        summarize(report)
        return 1
    report.meta["model"] = info
    log("model: %s" % json.dumps(info))
    lkw = logits_kwargs(torch, model)
    report.meta["logits_kwargs"] = lkw
    log("logits kwargs: %s" % lkw)

    state = FtpState(F=args.first_pruned)
    capture = Capture(torch, model, state)
    patch = FtpPatch(torch, model, state)

    def forward(ids):
        out = model(input_ids=ids, use_cache=False, **lkw)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits[:, -1, :].argmax(-1)

    def last_logits(ids):
        out = model(input_ids=ids, use_cache=False, **lkw)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits[0, -1].float()

    def set_ftp(on, rule=None, value=None):
        if on:
            state.rule = rule
            if rule == "eta":
                state.eta = value
            else:
                state.ratio = value
        state.prune = on
        state.capture = on

    # install FTP once; dense runs with it switched off use the original modules' math.
    use_prehook = [False]

    def install_all():
        patch.install()
        if use_prehook[0]:
            capture.install_prehook()
            return
        try:
            capture.install_registry()
        except Exception as e:  # noqa: BLE001
            log("attention registry hook failed (%s); using a pre-hook" % short_error(e))
            use_prehook[0] = True
            capture.install_prehook()

    # self-check at a short length: FTP path keeping every row equals dense; capture works
    check = {}
    try:
        with torch.inference_mode():
            ids = torch.randint(0, 128256, (1, 1024), device="cuda")
            ref = last_logits(ids)
            install_all()
            set_ftp(True, "ratio", 1.0)
            state.reset_counts()
            got = last_logits(ids)
            if state.captured == 0 and capture.method.startswith("attention_registry"):
                log("registry hook captured nothing; switching to the pre-hook")
                capture.uninstall()
                use_prehook[0] = True
                capture.install_prehook()
                state.reset_counts()
                got = last_logits(ids)
            check["captured_layers"] = state.captured
            check["logits_finite"] = bool(torch.isfinite(ref).all())
            check["keep_all_rel_err"] = float((got - ref).norm() / ref.norm().clamp_min(1e-30))
            set_ftp(True, "ratio", 0.4)
            state.reset_counts()
            got04 = last_logits(ids)
            check["keep0.4_rel_diff"] = float((got04 - ref).norm() / ref.norm().clamp_min(1e-30))
            check["keep0.4_kept_fraction"] = state.kept_rows / max(1, state.pruned_layer_rows)
            set_ftp(False)
            got_dense = last_logits(ids)
            check["dense_through_wrappers_rel_err"] = float((got_dense - ref).norm() / ref.norm().clamp_min(1e-30))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        check["error"] = short_error(e)
    check["capture"] = capture.method
    report.meta["self_check"] = check
    report.write()
    log("self-check (L=1024): %s" % json.dumps(check))
    if "error" not in check and check.get("keep_all_rel_err", 1.0) > 1e-2:
        log("WARNING: FTP path keeping all rows differs from dense (rel err %.3g): results are suspect" %
            check["keep_all_rel_err"])
    if "error" in check:
        set_ftp(False)
        capture.uninstall()
        patch.uninstall()

    dense_ms = {}
    for L in args.lengths:
        ids = torch.randint(0, 128256, (1, L), device="cuda", generator=torch.Generator(device="cuda").manual_seed(L))
        for name, rule, value in VARIANTS:
            if name not in args.variants:
                continue
            row = {"section": "ttft", "variant": name, "L": L}
            if over_budget():
                row["error"] = "skipped: time budget"
                report.add(row)
                continue
            if rule is not None and "error" in check:
                row["error"] = "skipped: FTP self-check failed"
                report.add(row)
                continue
            try:
                with torch.inference_mode():
                    if rule is None:
                        # the plain HF model: original modules, no hooks
                        set_ftp(False)
                        capture.uninstall()
                        patch.uninstall()
                    else:
                        if not patch.saved:
                            install_all()
                        set_ftp(True, rule, value)
                    state.reset_counts()
                    torch.cuda.reset_peak_memory_stats()
                    ms, times = cuda_median_ms(torch, lambda: forward(ids), args.warmup, args.repeats)
                    runs = args.warmup + args.repeats
                row["ttft_ms"] = ms
                row["times_ms"] = [round(t, 3) for t in times]
                if rule is None:
                    dense_ms[L] = ms
                else:
                    row["kept_fraction_pruned_layers"] = state.kept_rows / max(1, state.pruned_layer_rows)
                    row["captured_per_run"] = state.captured / runs
                if L in dense_ms:
                    row["speedup_vs_dense"] = dense_ms[L] / ms
                row["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
                log("ttft %-12s L=%6d %9.2f ms  x%.3f  kept %s" %
                    (name, L, ms, row.get("speedup_vs_dense", float("nan")),
                     "%.3f" % row["kept_fraction_pruned_layers"] if "kept_fraction_pruned_layers" in row else "-"))
            except Exception as e:  # noqa: BLE001
                row["error"] = short_error(e)
                log("ttft %-12s L=%6d ERROR %s" % (name, L, row["error"]))
            report.add(row)
            gc.collect()
            torch.cuda.empty_cache()

        # per-layer score + select on the q/k captured from the last layer of the last FTP run
        row = {"section": "score_select", "L": L}
        try:
            if over_budget():
                raise RuntimeError("skipped: time budget")
            if state.q_last is None or state.k is None or state.k.shape[2] != L:
                raise RuntimeError("no captured q/k at this length")
            q_last, k, scale = state.q_last, state.k, state.scale
            with torch.inference_mode():
                score_ms, _ = cuda_median_ms(torch, lambda: ftp_scores(torch, state, q_last, k, scale), 3, 20)
                scores = ftp_scores(torch, state, q_last, k, scale)
                for label, rule, value in (("eta0.9", "eta", 0.9), ("keep0.4", "ratio", 0.4)):
                    set_ftp(True, rule, value)
                    sel_ms, _ = cuda_median_ms(torch, lambda: ftp_select(torch, state, scores, L), 3, 20)
                    tot_ms, _ = cuda_median_ms(
                        torch, lambda: ftp_select(torch, state, ftp_scores(torch, state, q_last, k, scale), L), 3, 20)
                    _, kept = ftp_select(torch, state, scores, L)
                    row[label] = {"score_ms": score_ms, "select_ms": sel_ms, "score_select_ms": tot_ms,
                                  "kept_fraction": kept / L}
                set_ftp(False)
                scores = None
            log("score+select L=%6d: score %.3f ms, eta0.9 total %.3f ms (kept %.3f), keep0.4 total %.3f ms" %
                (L, score_ms, row["eta0.9"]["score_select_ms"], row["eta0.9"]["kept_fraction"],
                 row["keep0.4"]["score_select_ms"]))
        except Exception as e:  # noqa: BLE001
            row["error"] = short_error(e)
            log("score+select L=%6d ERROR %s" % (L, row["error"]))
        report.add(row)
        state.q_last = state.k = None
        ids = None
        gc.collect()
        torch.cuda.empty_cache()

    set_ftp(False)
    capture.uninstall()
    patch.uninstall()
    report.meta["wall_s"] = round(time.time() - T0, 1)
    report.write()
    summarize(report)
    return 0


def summarize(report):
    rows = report.rows
    log("\n== torch_reference summary (%s; HF transformers %s, Llama3-8B shape, random bf16, sdpa)" %
        (report.meta.get("device", "?"), report.meta.get("model", {}).get("transformers", "?")))
    log("self-check: %s" % json.dumps(report.meta.get("self_check", {})))
    gemm = [r for r in rows if r.get("section") == "ffn_gemm" and "total_ms" in r]
    if gemm:
        log("FFN GEMMs (gate_up + down), M: ms (TFLOP/s): " +
            " | ".join("%d: %.3f (%.0f)" % (r["M"], r["total_ms"], r["tflops"]) for r in gemm))
    lengths = sorted({r["L"] for r in rows if r.get("section") == "ttft"})
    if lengths:
        names = [v[0] for v in VARIANTS]
        log("%7s " % "L" + " ".join("%20s" % n for n in names) + " %14s %14s" % ("eta kept", "sc+sel eta/0.4"))
        for L in lengths:
            cells = []
            kept = "-"
            for n in names:
                r = next((x for x in rows if x.get("section") == "ttft" and x.get("L") == L and x.get("variant") == n),
                         None)
                if r is None or "ttft_ms" not in r:
                    cells.append("%20s" % ("err" if r is not None else "-"))
                    continue
                sp = r.get("speedup_vs_dense")
                cells.append("%20s" % ("%.1f ms x%.2f" % (r["ttft_ms"], sp) if sp else "%.1f ms" % r["ttft_ms"]))
                if n == "ftp_eta0.9" and "kept_fraction_pruned_layers" in r:
                    kept = "%.3f" % r["kept_fraction_pruned_layers"]
            s = next((x for x in rows if x.get("section") == "score_select" and x.get("L") == L), {})
            ss = "-"
            if "eta0.9" in s and "keep0.4" in s:
                ss = "%.2f/%.2f ms" % (s["eta0.9"]["score_select_ms"], s["keep0.4"]["score_select_ms"])
            log("%7d " % L + " ".join(cells) + " %14s %14s" % (kept, ss))
    sdpa = [r for r in rows if r.get("section") == "sdpa" and "tflops" in r]
    if sdpa:
        log("SDPA causal attention TFLOP/s (shape L backend): " +
            " | ".join("%s %d %s %.0f" % (r["shape"], r["L"], r["backend"], r["tflops"]) for r in sdpa))
    errors = [r for r in rows if "error" in r]
    if errors or report.meta.get("error"):
        log("errors: %d row(s)%s" % (len(errors), "; " + report.meta["error"] if report.meta.get("error") else ""))
        for r in errors[:6]:
            log("  %s" % json.dumps(r)[:300])


if __name__ == "__main__":
    sys.exit(main())
