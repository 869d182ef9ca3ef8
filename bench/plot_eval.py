#!/usr/bin/env python3
"""Plots the JSON of examples/eval/ftp_eval.cu into at most three PNGs.

Reads EVAL_JSON (each section optional; a missing or failed section is skipped with a note):
  needle      -> needle.png:     hit/miss heatmaps, dense and FTP side by side (paper Fig. 8 style)
  cumulative  -> cumulative.png: cumulative score share vs share of middle tokens, one curve per
                                 pruned layer and their mean (paper Fig. 6 style)
  fidelity    -> kept.png:       kept fraction per layer per context length (mean, min-max band);
  ablations                      with ablations, a second panel: first-token KL vs kept fraction

Usage: python3 bench/plot_eval.py EVAL_JSON [OUT_DIR]   (OUT_DIR defaults to the JSON's folder)
"""
import json
import os
import sys


def num(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def section(doc, name):
    sec = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(sec, dict):
        print("plot_eval: no '%s' section, skipped" % name)
        return None
    if "error" in sec:
        print("plot_eval: section '%s' failed (%s), skipped" % (name, sec.get("error")))
        return None
    return sec


def plot_needle(plt, sec, path):
    rows = [r for r in sec.get("rows", []) if isinstance(r, dict)]
    lengths = sorted({int(r["length"]) for r in rows if num(r.get("length")) is not None})
    depths = sorted({int(r["depth_percent"]) for r in rows if num(r.get("depth_percent")) is not None})
    if not lengths or not depths:
        print("plot_eval: needle section has no rows, skipped")
        return None
    import numpy as np
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["#d73027", "#1a9850"])
    cmap.set_bad("#dddddd")  # cells not run (time budget)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, key, title in ((axes[0], "dense_hit", "dense"), (axes[1], "ftp_hit", "FTP")):
        grid = np.full((len(depths), len(lengths)), np.nan)
        for r in rows:
            if r.get(key) is None:
                continue
            grid[depths.index(int(r["depth_percent"])), lengths.index(int(r["length"]))] = 1.0 if r[key] else 0.0
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto", origin="upper")
        hits = int(np.nansum(grid))
        cells = int(np.sum(~np.isnan(grid)))
        ax.set_title("%s: %d/%d retrieved" % (title, hits, cells), fontsize=10)
        ax.set_xticks(range(len(lengths)))
        ax.set_xticklabels([str(L) for L in lengths])
        ax.set_yticks(range(len(depths)))
        ax.set_yticklabels(["%d%%" % d for d in depths])
        ax.set_xlabel("context length (tokens)")
        for i in range(len(depths)):
            for j in range(len(lengths)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, "1" if grid[i, j] else "0", ha="center", va="center", fontsize=7, color="white")
    axes[0].set_ylabel("needle depth")
    fig.suptitle("Needle in a haystack: answer contains %s (green) or not (red)" % sec.get("answer", "?"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cumulative(plt, sec, path):
    fractions = [num(x) for x in sec.get("fractions", [])]
    layers = [l for l in sec.get("layers", []) if isinstance(l, dict) and l.get("valid_scores")
              and len(l.get("curve", [])) == len(fractions)]
    if not fractions or not layers:
        print("plot_eval: cumulative section has no usable curves, skipped")
        return None
    fig, ax = plt.subplots(figsize=(6.5, 5))
    cmap = plt.get_cmap("viridis")
    for i, l in enumerate(layers):
        ax.plot([0.0] + fractions, [0.0] + [num(v) or 0.0 for v in l["curve"]], lw=0.9,
                color=cmap(i / max(1, len(layers) - 1)), label="layer %d" % l["layer"] if i in (0, len(layers) - 1) else None)
    mean_curve = sec.get("mean_curve", [])
    if len(mean_curve) == len(fractions) and all(num(v) is not None for v in mean_curve):
        ax.plot([0.0] + fractions, [0.0] + [num(v) for v in mean_curve], "k-", lw=2.2, label="mean over layers")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="uniform scores")
    ax.axhline(0.9, color="gray", lw=0.6, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("share of middle tokens, sorted by score (descending)")
    ax.set_ylabel("cumulative share of attention score")
    ax.set_title("Cumulative attention score per pruned layer (%s tokens)" % sec.get("length", "?"), fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_kept(plt, fidelity, ablations, cumulative, path):
    summary = [s for s in (fidelity or {}).get("summary", []) if isinstance(s, dict) and s.get("kept_fraction_mean")]
    abl_rows = [r for r in (ablations or {}).get("rows", []) if isinstance(r, dict)
                and num(r.get("mean_kept_fraction_pruned")) is not None and num(r.get("kl_mean")) is not None]
    cum_layers = [l for l in (cumulative or {}).get("layers", []) if isinstance(l, dict)
                  and num(l.get("kept_fraction")) is not None]
    if not summary and not abl_rows and not cum_layers:
        print("plot_eval: no kept fractions to plot, skipped")
        return None
    panels = 2 if abl_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.8), squeeze=False)
    ax = axes[0][0]
    if summary:
        for s in summary:
            mean = [num(v) for v in s["kept_fraction_mean"]]
            lo = [num(v) for v in s.get("kept_fraction_min", mean)]
            hi = [num(v) for v in s.get("kept_fraction_max", mean)]
            x = list(range(len(mean)))
            line, = ax.plot(x, mean, "o-", ms=3, label="%s tokens (%s texts)" % (s.get("length"), s.get("texts")))
            if None not in lo and None not in hi:
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title("Kept fraction per layer, paper defaults (band: min-max over texts)", fontsize=10)
    else:
        ax.plot([l["layer"] for l in cum_layers], [num(l["kept_fraction"]) for l in cum_layers], "o-", ms=3,
                label="%s tokens" % cumulative.get("length", "?"))
        ax.set_title("Kept fraction per pruned layer", fontsize=10)
    ax.set_xlabel("layer")
    ax.set_ylabel("kept fraction (FFN rows / tokens)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    if abl_rows:
        ax = axes[0][1]
        markers = {"paper": "*", "scorer": "s", "eta": "o", "F": "^", "PxN": "D", "reserve": "v"}
        seen, labelled = set(), set()
        for r in abl_rows:
            group = str(r.get("group", "?"))
            # the paper's setting recurs in several groups with the same numbers: plot it once
            key = (round(num(r["mean_kept_fraction_pruned"]), 6), round(num(r["kl_mean"]), 9))
            if key in seen:
                continue
            seen.add(key)
            kl = max(num(r["kl_mean"]), 1e-6)  # log axis: an exact match (KL 0) sits at the floor
            ax.scatter(num(r["mean_kept_fraction_pruned"]), kl, marker=markers.get(group, "x"), s=30,
                       label=None if group in labelled else group)
            labelled.add(group)
            ax.annotate(str(r.get("label", "")).replace(" (paper)", ""), (num(r["mean_kept_fraction_pruned"]), kl),
                        fontsize=5.5, xytext=(3, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("mean kept fraction over pruned layers")
        ax.set_ylabel("mean first-token KL(dense || pruned)")
        ax.set_title("Ablations at %s tokens (lower is closer to dense)" % ablations.get("length", "?"), fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 1
    src = argv[1]
    out = argv[2] if len(argv) > 2 else (os.path.dirname(os.path.abspath(src)) or ".")
    try:
        with open(src) as f:
            doc = json.load(f)
    except Exception as e:  # noqa: BLE001
        print("plot_eval: cannot read %s: %s" % (src, e))
        return 1
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_eval: matplotlib is not installed (python3 -m pip install matplotlib); no plots")
        return 0
    os.makedirs(out, exist_ok=True)
    written = []
    needle = section(doc, "needle")
    if needle:
        written.append(plot_needle(plt, needle, os.path.join(out, "needle.png")))
    cumulative = section(doc, "cumulative")
    if cumulative:
        written.append(plot_cumulative(plt, cumulative, os.path.join(out, "cumulative.png")))
    fidelity, ablations = section(doc, "fidelity"), section(doc, "ablations")
    written.append(plot_kept(plt, fidelity, ablations, cumulative, os.path.join(out, "kept.png")))
    for p in written:
        if p:
            print("plot_eval: wrote %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
