#!/usr/bin/env python3
"""Plots the JSON of examples/eval/ftp_longeval.cu (--json PATH) and prints its README tables.

Reads LONGEVAL_JSON, as write_json / task_json in ftp_longeval.cu write it:
  meta                      model, device, ftp {P, N, F, eta}, model_config {layers, ...}
  tasks.<name>              name: passkey, multikey, variable_tracking, code_completion
    configs                 config names run, e.g. dense, ftp_eta0.95, ftp_eta0.90, random_eta0.95
    lengths[]               {requested, used, skipped, note}: used < requested when capped to the context
    summary[]               per (length, config): samples, score_mean, kl_mean, top1_rate,
                            speedup_vs_dense, mean_kept_fraction_pruned, kept_fraction_per_layer[]
    samples[]               per prompt: length, requested_length, index, depth_percent (passkey),
                            runs.<config> {score, kl, top1_agree, ttft_ms, kept[]}
    not_run[]               prompts the time budget cut: {length, index, depth_percent}
    truncated, error        the budget cut the task / the task stopped on an error

Writes into OUT_DIR (each plot is skipped with a note on stderr when the JSON lacks its data):
  passkey_grid.png      one heatmap per config: needle depth (rows) x length (columns), exact match
  longeval_scores.png   grouped bars per task: score per length (and over all lengths), one bar per config
  longeval_kept.png     kept fraction per layer of each FTP config, mean over the prompts of each length
Prints to stdout Markdown tables (score per task and config with dense - config in points, the same
per length, first-token fidelity and kept fractions); notes go to stderr so stdout can be pasted as is.

Usage: python3 bench/plot_longeval.py LONGEVAL_JSON OUT_DIR
"""
import json
import math
import os
import sys

TASK_ORDER = ["passkey", "multikey", "variable_tracking", "code_completion"]
TASK_TITLE = {
    "passkey": ("passkey", "exact match"),
    "multikey": ("multi-key needles", "exact match"),
    "variable_tracking": ("variable tracking", "share of variables named"),
    "code_completion": ("code completion", "edit similarity"),
}
CONFIG_ORDER = ["dense", "ftp_eta0.95", "ftp_eta0.90", "random_eta0.95"]
CONFIG_LABEL = {
    "dense": "dense",
    "ftp_eta0.95": "FTP eta=0.95",
    "ftp_eta0.90": "FTP eta=0.90",
    "random_eta0.95": "random (eta=0.95 counts)",
}
# Short names for the delta columns of the tables (the full labels make them too wide).
CONFIG_SHORT = {"ftp_eta0.95": "FTP eta=0.95", "ftp_eta0.90": "FTP eta=0.90", "random_eta0.95": "random"}
CONFIG_COLOR = {"dense": "#4d4d4d", "ftp_eta0.95": "#2166ac", "ftp_eta0.90": "#67a9cf", "random_eta0.95": "#d6604d"}


def note(msg):
    print("plot_longeval: " + msg, file=sys.stderr)


def num(value):
    """A finite number, or None (the writer turns NaN into null; bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def dicts(value):
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def label(config):
    return CONFIG_LABEL.get(config, config)


def short_length(L):
    return "%dk" % (L // 1024) if L % 1024 == 0 else str(L)


def weighted_mean(pairs):
    """Mean of (value, weight) pairs, skipping missing values; None when nothing is left."""
    pairs = [(v, w) for v, w in pairs if v is not None and w]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


# ---- reading the JSON -----------------------------------------------------------------------------

class Task:
    """One task of the JSON, reduced to per-(length, config) groups like the writer's summary."""

    def __init__(self, name, doc, F=None):
        self.name = name
        self.F = F  # first pruned layer (meta.ftp.F); only the rebuild from samples needs it
        self.doc = doc
        self.samples = dicts(doc.get("samples"))
        self.not_run = dicts(doc.get("not_run"))
        # used length -> requested length: the 32k passkey row runs capped to the context (32756).
        self.requested = {}
        for c in dicts(doc.get("lengths")):
            if not c.get("skipped") and num(c.get("used")) and num(c.get("requested")):
                self.requested[int(c["used"])] = int(c["requested"])
        self.groups = self._groups()
        configs = [c for c in doc.get("configs", []) if isinstance(c, str)] if isinstance(doc.get("configs"), list) else []
        seen = {c for _, c in self.groups}
        configs += sorted(seen - set(configs))
        self.configs = sorted(configs, key=lambda c: (CONFIG_ORDER.index(c) if c in CONFIG_ORDER else 99, c))
        self.lengths = sorted({L for L, _ in self.groups})

    def _groups(self):
        groups = {}
        for s in dicts(self.doc.get("summary")):
            L, c, n = num(s.get("length")), s.get("config"), num(s.get("samples"))
            if L is None or not isinstance(c, str) or not n:
                continue
            per_layer = s.get("kept_fraction_per_layer")
            groups[(int(L), c)] = {
                "n": int(n),
                "score": num(s.get("score_mean")),
                "kl": num(s.get("kl_mean")),
                "top1": num(s.get("top1_rate")),
                "speedup": num(s.get("speedup_vs_dense")),
                "kept": num(s.get("mean_kept_fraction_pruned")),
                "kept_layers": [num(x) for x in per_layer] if isinstance(per_layer, list) else [],
            }
        if groups or not self.samples:
            return groups
        # No summary (an older or hand-cut file): rebuild the scores from the per-prompt records.
        acc = {}
        for s in self.samples:
            L, runs = num(s.get("length")), s.get("runs")
            if L is None or not isinstance(runs, dict):
                continue
            for c, r in runs.items():
                if isinstance(r, dict):
                    acc.setdefault((int(L), c), []).append(r)
        def median_ttft(runs):
            t = sorted(x for x in (num(r.get("ttft_ms")) for r in runs) if x is not None)
            return (t[len(t) // 2] + t[(len(t) - 1) // 2]) / 2 if t else None

        for key, runs in acc.items():
            scores = [num(r.get("score")) for r in runs]
            kls = [num(r.get("kl")) for r in runs]
            top1 = [r.get("top1_agree") for r in runs if isinstance(r.get("top1_agree"), bool)]
            layers = [[num(k) / key[0] if num(k) is not None else None for k in r.get("kept", [])]
                      for r in runs if isinstance(r.get("kept"), list)]
            width = min((len(x) for x in layers), default=0)
            # As ftp_longeval's summary: speedup = median dense TTFT / median TTFT at this length.
            dense_t, own_t = median_ttft(acc.get((key[0], "dense"), [])), median_ttft(runs)
            pruned = [weighted_mean((v, 1) for v in x[int(self.F):]) for x in layers] if self.F is not None else []
            groups[key] = {
                "n": len(runs),
                "score": weighted_mean((v, 1) for v in scores),
                "kl": weighted_mean((v, 1) for v in kls) if key[1] != "dense" else None,
                "top1": (sum(top1) / len(top1)) if top1 and key[1] != "dense" else None,
                "speedup": dense_t / own_t if dense_t and own_t else None,
                "kept": weighted_mean((v, 1) for v in pruned),
                "kept_layers": [weighted_mean((x[l], 1) for x in layers) for l in range(width)],
            }
        return groups

    def requested_of(self, L):
        return self.requested.get(L, L)

    def length_label(self, L):
        """'32k*' for a length capped below its grid value (footnoted where it is shown)."""
        R = self.requested_of(L)
        return short_length(R) + ("*" if R != L else "")

    def overall(self, config):
        """The config's group over all lengths run (weights: samples), as the writer's own summary."""
        gs = [g for (L, c), g in self.groups.items() if c == config]
        if not gs:
            return None
        out = {"n": sum(g["n"] for g in gs)}
        for k in ("score", "kl", "top1", "kept"):
            out[k] = weighted_mean((g[k], g["n"]) for g in gs)
        # ftp_longeval's summary averages the per-length speedups (each a ratio of medians) unweighted.
        out["speedup"] = weighted_mean((g["speedup"], 1) for g in gs)
        return out

    def status(self):
        """'' or a short remark: truncated by the time budget, stopped on an error."""
        parts = []
        planned, done = num(self.doc.get("planned_samples")), num(self.doc.get("samples_done"))
        if self.doc.get("truncated"):
            parts.append("truncated: %s of %s prompts run" % (
                int(done) if done is not None else "?", int(planned) if planned is not None else "?"))
        if self.doc.get("error"):
            parts.append("error: %s" % self.doc.get("error"))
        return "; ".join(parts)


def load_tasks(doc):
    tasks = doc.get("tasks") if isinstance(doc, dict) else None
    if not isinstance(tasks, dict):
        note("the JSON has no 'tasks' object")
        return [], []
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    F = num(meta["ftp"].get("F")) if isinstance(meta.get("ftp"), dict) else None
    names = [n for n in TASK_ORDER if n in tasks] + sorted(n for n in tasks if n not in TASK_ORDER)
    out, dropped = [], []  # dropped: tasks without results, named under the tables rather than lost
    for n in names:
        if not isinstance(tasks[n], dict):
            dropped.append("%s: not an object in the JSON" % n)
            continue
        t = Task(n, tasks[n], F)
        if t.status():
            note("%s: %s" % (n, t.status()))
        if not t.groups:
            dropped.append("%s: no results%s" % (n, " (%s)" % t.status() if t.status() else ""))
            continue
        out.append(t)
    for d in dropped:
        note(d)
    return out, dropped


# ---- Markdown tables ----------------------------------------------------------------------------------

def pct(x):
    return "n/a" if x is None else "%.1f" % (100 * x)


def points(dense, other):
    """dense - other in percentage points (positive: the config scores below dense)."""
    if dense is None or other is None:
        return "n/a"
    # From the rounded scores shown beside it, so that each row's arithmetic checks out as printed.
    d = round(round(100 * dense, 1) - round(100 * other, 1), 1)
    return "%+.1f" % (d if d != 0 else 0.0)  # no '-0.0'


def all_configs(tasks):
    seen = {c for t in tasks for c in t.configs}
    return [c for c in CONFIG_ORDER if c in seen] + sorted(seen - set(CONFIG_ORDER))


def md_row(cells):
    return "| " + " | ".join(cells) + " |"


def print_tables(doc, tasks, dropped):
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    ftp = meta.get("ftp") if isinstance(meta.get("ftp"), dict) else {}
    model = os.path.basename(str(meta.get("model", "?")))
    configs = all_configs(tasks)
    others = [c for c in configs if c != "dense"]
    header = ["task (metric)", "lengths", "n"] + [label(c) for c in configs]
    header += ["dense - %s (pts)" % CONFIG_SHORT.get(c, c) for c in others]
    print("### Long-context tasks: score (%%) per config\n\n%s on %s; FTP P=%s N=%s F=%s; n = prompts per config\n" % (
        model, meta.get("device", "?"), ftp.get("P", "?"), ftp.get("N", "?"), ftp.get("F", "?")))
    print(md_row(header))
    print(md_row(["---"] * 2 + ["---:"] * (len(header) - 2)))
    for t in tasks:
        title, metric = TASK_TITLE.get(t.name, (t.name, "score"))
        o = {c: t.overall(c) for c in configs}
        dense = (o.get("dense") or {}).get("score")
        span = "%s-%s" % (t.length_label(t.lengths[0]), t.length_label(t.lengths[-1])) if len(t.lengths) > 1 \
            else t.length_label(t.lengths[0])
        n = (o.get("dense") or next((g for g in o.values() if g), {})).get("n", 0)
        row = ["%s (%s)" % (title, metric), span, "%d%s" % (n, " (truncated)" if t.doc.get("truncated") else "")]
        row += [pct((o[c] or {}).get("score")) for c in configs]
        row += [points(dense, (o[c] or {}).get("score")) for c in others]
        print(md_row(row))

    capped = sorted({(t.length_label(L), L) for t in tasks for L in t.lengths if t.requested_of(L) != L})
    for lab, L in capped:
        print("\n%s: capped to %d tokens (the context must also hold the answer)" % (lab, L))

    print("\n### Score (%) per length\n")
    print(md_row(["task", "length", "n"] + [label(c) for c in configs] + ["dense - %s (pts)" % CONFIG_SHORT.get(c, c) for c in others]))
    print(md_row(["---"] * 2 + ["---:"] * (1 + len(configs) + len(others))))
    for t in tasks:
        for L in t.lengths:
            g = {c: t.groups.get((L, c)) for c in configs}
            dense = (g.get("dense") or {}).get("score")
            n = (g.get("dense") or next((x for x in g.values() if x), {})).get("n", 0)
            row = [TASK_TITLE.get(t.name, (t.name,))[0], t.length_label(L), str(n)]
            row += [pct((g[c] or {}).get("score")) for c in configs]
            row += [points(dense, (g[c] or {}).get("score")) for c in others]
            print(md_row(row))
    print("\n### First-token fidelity and kept rows (all lengths run)\n")
    # No '|' in cells: it would split the Markdown column (hence 'KL dense -> config', not KL(dense||config)).
    print(md_row(["task", "config", "first-token KL dense -> config (mean)", "top-1 agree (%)", "kept fraction, layers >= F",
                  "TTFT speedup"]))
    print(md_row(["---", "---", "---:", "---:", "---:", "---:"]))
    for t in tasks:
        for c in t.configs:
            if c == "dense":
                continue
            o = t.overall(c) or {}
            kl, kept, sp = o.get("kl"), o.get("kept"), o.get("speedup")
            print(md_row([TASK_TITLE.get(t.name, (t.name,))[0], label(c), "n/a" if kl is None else "%.4f" % kl,
                          pct(o.get("top1")), "n/a" if kept is None else "%.3f" % kept,
                          "n/a" if sp is None else "%.2fx" % sp]))
    for t in tasks:
        if t.status():
            print("\nnote: %s %s" % (t.name, t.status()))
    for d in dropped:
        print("\nnote: %s" % d)


# ---- plots ----------------------------------------------------------------------------------------------

def plot_passkey_grid(plt, tasks, path):
    t = next((t for t in tasks if t.name == "passkey"), None)
    if t is None or not t.samples:
        note("no passkey samples: passkey_grid.png skipped")
        return None
    import numpy as np

    # Columns by the grid's requested length, so the capped 32k row still reads '32k'.
    cells = {}  # (depth, requested length, config) -> scores
    for s in t.samples:
        d, L = num(s.get("depth_percent")), num(s.get("length"))
        runs = s.get("runs") if isinstance(s.get("runs"), dict) else {}
        if d is None or L is None:
            continue
        R = int(num(s.get("requested_length")) or t.requested_of(int(L)))
        for c, r in runs.items():
            if isinstance(r, dict) and num(r.get("score")) is not None:
                cells.setdefault((int(d), R, c), []).append(num(r["score"]))
    if not cells:
        note("passkey samples have no depth or score: passkey_grid.png skipped")
        return None
    not_run = {(int(num(s.get("depth_percent"))), t.requested_of(int(num(s.get("length")))))
               for s in t.not_run if num(s.get("depth_percent")) is not None and num(s.get("length")) is not None}
    depths = sorted({d for d, _, _ in cells} | {d for d, _ in not_run})
    lengths = sorted({R for _, R, _ in cells} | {R for _, R in not_run})
    configs = [c for c in t.configs if any(k[2] == c for k in cells)]
    used_of = {R: L for L, R in t.requested.items()}

    cmap = plt.get_cmap("RdYlGn").copy()
    cmap.set_bad("#d9d9d9")  # not run (time budget) or missing
    fig, axes = plt.subplots(1, len(configs), figsize=(0.55 * len(lengths) * len(configs) + 1.6 * len(configs), 5.2),
                             sharey=True, squeeze=False)
    for ax, c in zip(axes[0], configs):
        grid = np.full((len(depths), len(lengths)), np.nan)
        for (d, R, cc), v in cells.items():
            if cc == c:
                grid[depths.index(d), lengths.index(R)] = sum(v) / len(v)
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        # Hits over prompts, not cells: a cell may hold several samples (then it shows their mean).
        scores = [v for (_, _, cc), vs in cells.items() if cc == c for v in vs]
        hits = sum(scores)
        hit_text = "%d" % hits if float(hits).is_integer() else "%.1f" % hits
        missing = int(np.sum(np.isnan(grid)))
        ax.set_title("%s\n%s/%d hits%s" % (label(c), hit_text, len(scores),
                                           ", %d cells not run" % missing if missing else ""), fontsize=10)
        for i in range(len(depths)):
            for j in range(len(lengths)):
                v = grid[i, j]
                text = "." if np.isnan(v) else ("%d" % v if float(v).is_integer() else "%.2f" % v)
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="black" if np.isnan(v) or 0.25 < v < 0.75 else "white")
        ax.set_xticks(range(len(lengths)))
        ax.set_xticklabels([short_length(R) + ("*" if used_of.get(R, R) != R else "") for R in lengths])
        ax.set_yticks(range(len(depths)))
        ax.set_yticklabels(["%d%%" % d for d in depths])
        ax.set_xlabel("prompt length (tokens)")
    axes[0][0].set_ylabel("needle depth")
    caps = ["%s = %d tokens" % (short_length(R) + "*", L) for R, L in sorted(used_of.items()) if L != R]
    fig.suptitle("Passkey retrieval: exact match (green 1, red 0; '.' not run)%s" % (
        "   [%s, capped to the context]" % ", ".join(caps) if caps else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_scores(plt, tasks, path):
    tasks = [t for t in tasks if any(g["score"] is not None for g in t.groups.values())]
    if not tasks:
        note("no scores: longeval_scores.png skipped")
        return None
    configs = all_configs(tasks)
    cols = 2 if len(tasks) > 1 else 1
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7.2 * cols, 4.0 * rows + 0.6), squeeze=False)
    for k, t in enumerate(tasks):
        ax = axes[k // cols][k % cols]
        # One group per length, then the mean over all lengths run (the README number).
        groups = [(t.length_label(L), {c: (t.groups.get((L, c)) or {}).get("score") for c in t.configs})
                  for L in t.lengths]
        groups.append(("all", {c: (t.overall(c) or {}).get("score") for c in t.configs}))
        width = 0.8 / len(t.configs)
        for i, c in enumerate(t.configs):
            xs = [j + (i - (len(t.configs) - 1) / 2) * width for j in range(len(groups))]
            ys = [100 * g[1][c] if g[1].get(c) is not None else 0 for g in groups]
            bars = ax.bar(xs, ys, width * 0.95, color=CONFIG_COLOR.get(c), label=label(c))
            for b, (_, g) in zip(bars, groups):
                if g.get(c) is not None:
                    ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, "%.0f" % (100 * g[c]), ha="center",
                            va="bottom", fontsize=6.5)
        ax.axvline(len(groups) - 1.5, color="#999999", lw=0.8, ls=":")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups])
        ax.set_ylim(0, 112)
        ax.set_ylabel("score (%)")
        title, metric = TASK_TITLE.get(t.name, (t.name, "score"))
        n = (t.overall("dense") or {}).get("n")
        status = " [%s]" % t.status() if t.status() else ""
        ax.set_title("%s: %s (%s prompts)%s" % (title, metric, n if n else "?", status), fontsize=10)
        ax.set_xlabel("prompt length (tokens)")
    for k in range(len(tasks), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=CONFIG_COLOR.get(c, "#999999")) for c in configs]
    fig.legend(handles, [label(c) for c in configs], loc="upper center", ncol=len(configs), fontsize=9, frameon=False)
    caps = sorted({"%s = %d tokens" % (t.length_label(L), L) for t in tasks for L in t.lengths if t.requested_of(L) != L})
    if caps:
        fig.text(0.5, 0.005, "* capped to the context: " + ", ".join(caps), ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1 - 0.5 / fig.get_figheight()))  # ~0.5 inch on top for the legend
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_kept(plt, doc, tasks, path):
    # Random runs copy eta 0.95's kept counts, and dense keeps every row: only FTP configs say anything here.
    configs = [c for c in all_configs(tasks) if c.startswith("ftp")]
    per_config = {}
    for c in configs:
        by_length = {}  # requested length -> [(per-layer fractions, samples)] over tasks
        for t in tasks:
            for (L, cc), g in t.groups.items():
                if cc == c and g["kept_layers"] and None not in g["kept_layers"]:
                    by_length.setdefault(t.requested_of(L), []).append((g["kept_layers"], g["n"]))
        if by_length:
            per_config[c] = by_length
    if not per_config:
        note("no kept fractions per layer for an FTP config: longeval_kept.png skipped")
        return None
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    F = num((meta.get("ftp") or {}).get("F")) if isinstance(meta.get("ftp"), dict) else None

    def mean_curve(entries):
        width = min(len(x) for x, _ in entries)
        total = sum(n for _, n in entries)
        return [sum(x[l] * n for x, n in entries) / total for l in range(width)], total

    fig, axes = plt.subplots(1, len(per_config), figsize=(6.8 * len(per_config), 4.8), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (c, by_length) in zip(axes[0], per_config.items()):
        lengths = sorted(by_length)
        for i, R in enumerate(lengths):
            curve, n = mean_curve(by_length[R])
            ax.plot(range(len(curve)), curve, "o-", ms=2.5, lw=1.1, color=cmap(i / max(1, len(lengths) - 1) * 0.9),
                    label="%s (%d prompts)" % (short_length(R), n))
        curve, n = mean_curve([e for R in lengths for e in by_length[R]])
        ax.plot(range(len(curve)), curve, "k-", lw=2.2, label="all %d prompts" % n)
        if F:
            # Layers below F run dense by design (kept = 1); shading keeps them from reading as a result.
            ax.axvspan(-0.5, F - 0.5, color="#eeeeee", zorder=0)
            ax.text((F - 1) / 2, 0.93, "first F=%d layers dense" % F, ha="center", fontsize=8, color="#666666")
            pruned = curve[int(F):]
            if pruned:
                ax.set_title("%s: kept fraction per layer (mean of layers F.. = %.3f)" % (
                    label(c), sum(pruned) / len(pruned)), fontsize=10)
        else:
            ax.set_title("%s: kept fraction per layer" % label(c), fontsize=10)
        ax.set_xlim(-0.5, len(curve) - 0.5)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("layer")
        # Lower left: the dense layers' corner, the one place no curve runs.
        ax.legend(fontsize=7.5, loc="lower left")
    axes[0][0].set_ylabel("kept fraction (FFN rows / prompt tokens)")
    fig.suptitle("FFN rows kept per layer, mean over prompts of all tasks", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 and argv[1] in ("-h", "--help") else 1
    src, out = argv[1], argv[2]
    try:
        with open(src) as f:
            doc = json.load(f)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same failure to the caller
        note("cannot read %s: %s" % (src, e))
        return 1
    if not isinstance(doc, dict):
        note("%s is not a JSON object" % src)
        return 1
    tasks, dropped = load_tasks(doc)
    if not tasks:
        note("no task results in %s: nothing to print or plot" % src)
        return 0
    print_tables(doc, tasks, dropped)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note("matplotlib is not installed (python3 -m pip install matplotlib): tables only, no plots")
        return 0
    os.makedirs(out, exist_ok=True)
    plots = [("passkey_grid.png", lambda p: plot_passkey_grid(plt, tasks, p)),
             ("longeval_scores.png", lambda p: plot_scores(plt, tasks, p)),
             ("longeval_kept.png", lambda p: plot_kept(plt, doc, tasks, p))]
    for name, fn in plots:
        # A malformed corner of the JSON costs that one plot, never the others or the tables above.
        try:
            written = fn(os.path.join(out, name))
        except Exception as e:  # noqa: BLE001
            note("%s skipped: %s: %s" % (name, type(e).__name__, e))
            plt.close("all")
            continue
        if written:
            note("wrote %s" % written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
