#!/usr/bin/env python3
"""Plots the benchmark JSON files of one directory into at most three PNGs there.

Reads (each optional; a missing file or key is skipped):
  ffn.json              (bench/ffn.cu)             -> ffn_vs_kept.png: FFN ms vs kept fraction per L, ideal line
  overhead.json         (bench/overhead.cu)        -> overhead.png: score+select ms per layer vs tokens, per batch
  torch_reference.json  (bench/torch_reference.py) -> ttft.png: TTFT bars, HF dense / HF+FTP vs ours
  e2e.json              (our end-to-end runner, if present) -> ours in ttft.png

Usage: python3 bench/plot.py DIR
"""
import json
import os
import sys


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
    except Exception as e:  # noqa: BLE001
        print("plot: cannot read %s: %s" % (path, e))
        return None
    if isinstance(doc, list):
        return doc
    # most benchmarks write {"rows": [...]}; bench/attention_kernel.cu writes {"results": [...]}
    rows = (doc.get("rows") or doc.get("results")) if isinstance(doc, dict) else None
    return rows if isinstance(rows, list) else []


def num(row, *keys):
    for k in keys:
        v = row.get(k) if isinstance(row, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def plot_ffn(plt, rows, out):
    rows = [r for r in rows if isinstance(r, dict) and "stage" not in r and num(r, "gathered_ms") is not None
            and num(r, "dense_ms") and num(r, "kept_fraction", "kept_fraction_target") is not None
            and num(r, "L") is not None]
    if not rows:
        return None
    models = sorted({str(r.get("model", "?")) for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        mrows = [r for r in rows if str(r.get("model", "?")) == model]
        for L in sorted({int(num(r, "L")) for r in mrows}):
            pts = sorted((num(r, "kept_fraction", "kept_fraction_target"), num(r, "gathered_ms"), num(r, "dense_ms"))
                         for r in mrows if int(num(r, "L")) == L)
            ax.plot([p[0] for p in pts], [p[1] / p[2] for p in pts], "o-", ms=3,
                    label="L=%d (dense %.2f ms)" % (L, pts[-1][2]))
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="ideal: f x dense")
        ax.set_title("%s FFN: gathered time / dense time vs kept fraction" % model, fontsize=9)
        ax.set_xlabel("kept fraction f")
        ax.set_ylabel("gathered ms / dense ms")
        ax.set_xlim(0, 1.05)
        ax.set_ylim(0, None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "ffn_vs_kept.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# SelectionPath::kAuto's thresholds on the longest middle segment (L - P - N, P + N = 150 by
# default), as in include/ftp/selection/dispatch.cuh: the one-CTA select up to
# kLongestMiddleForFusedOverCluster and the cluster select up to kLongestMiddleForClusterSelection
# where clusters exist, else up to kLongestMiddleForFusedSelection; the multi-CTA select above.
FUSED_OVER_CLUSTER_MAX_MIDDLE = 2048
CLUSTER_SELECTION_MAX_MIDDLE = 24576
FUSED_SELECTION_MAX_MIDDLE = 6144
RESERVED_TOKENS = 150


def auto_select_ms(r):
    """Pipelined selection time of the path the pruner takes at this row's length, if measured."""
    middle = num(r, "seq_len") - RESERVED_TOKENS
    fused, cluster = num(r, "pipelined_select_ms"), num(r, "pipelined_select_cluster_ms")
    wide = num(r, "pipelined_select_multi_cta_ms")
    if cluster is not None and fused is not None and wide is not None:
        if middle <= FUSED_OVER_CLUSTER_MAX_MIDDLE:
            return fused
        return cluster if middle <= CLUSTER_SELECTION_MAX_MIDDLE else wide
    if wide is None:
        wide = num(r, "pipelined_select_sorted_ms")  # runs from before the multi-CTA select
    if fused is None or wide is None:
        return None
    return fused if middle <= FUSED_SELECTION_MAX_MIDDLE else wide


def plot_overhead(plt, rows, out):
    # rows without "shape" come from runs that timed the Llama3-8B shape only
    rows = [r for r in rows if isinstance(r, dict) and num(r, "seq_len") is not None
            and num(r, "score_select_ms") is not None and r.get("shape", "llama3-8b") == "llama3-8b"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for B in sorted({int(num(r, "batch") or 1) for r in rows}):
        mine = [r for r in rows if int(num(r, "batch") or 1) == B]
        # isolated two-pass (the older measurement); when present, the pipelined one-pass (engine
        # lse) cost that a prefill actually pays; selection alone dotted
        series = [(lambda r: num(r, "score_select_ms"), "o-", "isolated, two-pass"),
                  (lambda r: num(r, "pipelined_score_select_lse_ms"), "s--", "pipelined, engine lse")]
        if any(auto_select_ms(r) is not None for r in mine):
            series.append((auto_select_ms, "x:", "pipelined, select only"))
        else:
            series.append((lambda r: num(r, "select_ms"), "x:", "isolated, select only"))
        color = None
        for value, style, label in series:
            pts = sorted((B * num(r, "seq_len"), value(r)) for r in mine if value(r) is not None)
            if not pts:
                continue
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, ms=3, color=color,
                            label="B=%d %s" % (B, label))
            color = line.get_color()
    ax.axhline(0.1, color="gray", lw=0.8, ls="--", label="0.1 ms goal")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens per batch (B x L)")
    ax.set_ylabel("ms per layer")
    ax.set_title("FTP overhead per layer (Llama3-8B attention shape)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "overhead.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ttft_series(torch_rows, e2e_rows):
    """{series name: {L: ms}} from the torch reference and (loosely) from e2e.json."""
    series = {}
    for r in torch_rows or []:
        if not isinstance(r, dict) or r.get("section") != "ttft":
            continue
        L, ms = num(r, "L"), num(r, "ttft_ms")
        if L is None or ms is None:
            continue
        variant = str(r.get("variant", "?"))
        label = "HF dense" if variant == "hf_dense" else "HF + PyTorch " + variant.replace("ftp_", "FTP ")
        series.setdefault(label, {})[int(L)] = ms
    for r in e2e_rows or []:
        if not isinstance(r, dict) or "error" in r:
            continue
        L = num(r, "L", "seq_len", "tokens", "prompt_tokens", "num_tokens")
        if L is None:
            continue
        name = str(r.get("variant", r.get("mode", r.get("name", "ours"))))
        ms = num(r, "ttft_ms", "total_ms", "ms", "prefill_ms")
        if ms is not None:
            series.setdefault("ours " + name, {})[int(L)] = ms
        for key, label in (("dense_ms", "dense"), ("dense_ttft_ms", "dense"), ("ftp_ms", "ftp"),
                           ("ftp_ttft_ms", "ftp"), ("pruned_ms", "ftp")):
            v = num(r, key)
            if v is not None:
                series.setdefault("ours " + label, {})[int(L)] = v
    return series


def plot_ttft(plt, torch_rows, e2e_rows, out):
    series = ttft_series(torch_rows, e2e_rows)
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    lengths = sorted({L for v in series.values() for L in v})
    names = sorted(series, key=lambda n: (not n.startswith("HF"), "dense" not in n, n))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(lengths) + 2), 4.5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j, L in enumerate(lengths) if L in series[name]]
        ys = [series[name][L] for L in lengths if L in series[name]]
        ax.bar(xs, ys, width=width, label=name)
    ax.set_xticks(range(len(lengths)))
    ax.set_xticklabels([str(L) for L in lengths])
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("TTFT ms")
    ax.set_yscale("log")
    ax.set_title("Prefill TTFT, Llama3-8B shape, random bf16 weights", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "ttft.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001
        print("plot: matplotlib unavailable (%s); no plots" % e)
        return 0
    ffn = load(directory, "ffn.json")
    overhead = load(directory, "overhead.json")
    torch_ref = load(directory, "torch_reference.json")
    e2e = load(directory, "e2e.json")
    made = []
    for name, fn, rows in (("ffn", plot_ffn, (ffn,)), ("overhead", plot_overhead, (overhead,)),
                           ("ttft", plot_ttft, (torch_ref, e2e))):
        if all(r is None for r in rows):
            continue
        try:
            path = fn(plt, *rows, directory) if name == "ttft" else fn(plt, rows[0], directory)
            if path:
                made.append(path)
        except Exception as e:  # noqa: BLE001
            print("plot: %s failed: %s" % (name, e))
    print("plot: wrote %s" % (", ".join(made) if made else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
