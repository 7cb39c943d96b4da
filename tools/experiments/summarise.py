#!/usr/bin/env python3
"""Summarise an experiment directory written by tools/experiments/ml100k.sh
(or demo.sh): per split and evaluator, mean ± std over seeds of the top path
(K = 1) and the best of K = 10, and paired bootstrap intervals of each RL run
against the pretrained policy of the same seed.

    python3 tools/experiments/summarise.py runs/ml100k > runs/ml100k/summary.md

Reads EXP/eval-SPLIT-SIM/results.json (as `prorl eval --out` writes them)
and EXP/eval-SPLIT-cross/results*.json (tools/experiments/cross_eval.sh);
methods are named NAME-sSEED (pretrained-s1, prorl-s1, …). Standard library
only.
"""
import json
import os
import random
import re
import statistics
import sys


def bootstrap(a, b, resamples=2000, seed=2026):
    """Mean of a[i] - b[i] and its 95 % percentile interval over tasks."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    rng = random.Random(seed)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return sum(d) / n, means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def fmt(values, digits):
    if not values:
        return "—"
    m = statistics.fmean(values)
    if len(values) == 1:
        return f"{m:+.{digits}f}"
    return f"{m:+.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def summarise(path, title):
    table = json.load(open(path))
    rows = table["rows"]
    by = {}
    for r in rows:
        by.setdefault((r["method"], r["beams"]), r)
    # group NAME-sSEED
    groups = {}
    for (method, k) in by:
        m = re.fullmatch(r"(.*)-s(\d+)", method)
        name, seed = (m.group(1), int(m.group(2))) if m else (method, 0)
        groups.setdefault(name, {}).setdefault(seed, {})[k] = by[(method, k)]
    out = [f"### {title} ({table['split']}, {rows[0]['tasks']} tasks)", ""]
    truth = any(r["top"].get("truth_gain") is not None for r in rows)
    head = "| method | seeds | IoI@1 | IoR@1 | CTR@1 | length@1 | repeats@1 | IoI, best of 10 | CTR, best of 10 |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    if truth:
        head += " true gain@1 | true acceptance@1 |"
        rule += "---:|---:|"
    out += [head, rule]
    order = sorted(groups, key=lambda g: (g not in ("pretrained", "prorl", "reference"), g))
    for g in order:
        seeds = groups[g]
        one = [s[1] for s in seeds.values() if 1 in s]
        ten = [s[10] for s in seeds.values() if 10 in s]
        line = (f"| {g} | {len(one) or len(ten)} | {fmt([r['top']['ioi'] for r in one], 4)} | "
                f"{fmt([r['top']['ior'] for r in one], 1)} | {fmt([r['top']['ctr'] for r in one], 4)} | "
                f"{fmt([r['top']['length'] for r in one], 2)} | {fmt([r['top'].get('repeats') or 0 for r in one], 3)} | "
                f"{fmt([r['reference']['ioi'] for r in ten], 4)} | {fmt([r['reference']['ctr'] for r in ten], 4)} |")
        if truth:
            line += (f" {fmt([r['top'].get('truth_gain') or 0 for r in one], 5)} |"
                     f" {fmt([r['top'].get('truth_acceptance') or 0 for r in one], 4)} |")
        out.append(line)
    out.append("")
    # paired intervals against the same seed's pretrained policy
    base = groups.get("pretrained", {})
    pairs = []
    for g in order:
        if g == "pretrained":
            continue
        for seed, ks in sorted(groups[g].items()):
            b = base.get(seed, base.get(1, {})).get(1)
            r = ks.get(1)
            if not b or not r or not b.get("perTask") or not r.get("perTask"):
                continue
            pairs.append((f"{g}-s{seed}" if seed else g, r["perTask"], b["perTask"], f"pretrained-s{seed if seed in base else 1}"))
    if pairs:
        out += ["Top path (K = 1) minus the pretrained policy of the same seed, paired over tasks, 95 % bootstrap "
                "interval; * where it excludes 0:", "",
                "| run | vs | ΔIoI | ΔIoR | ΔCTR |" + (" Δtrue gain |" if truth else ""),
                "|---|---|---:|---:|---:|" + ("---:|" if truth else "")]
        for name, r, b, vs in pairs:
            cells = []
            for key, d in (("ioi", 4), ("ior", 1), ("ctr", 4)) + ((("truthGain", 5),) if truth else ()):
                if r.get(key) is None or b.get(key) is None:
                    cells.append("—")
                    continue
                m, lo, hi = bootstrap(r[key], b[key])
                star = " *" if lo > 0 or hi < 0 else ""
                cells.append(f"{m:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}]{star}")
            out.append(f"| {name} | {vs} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main():
    exp = sys.argv[1] if len(sys.argv) > 1 else "runs/ml100k"
    found = False
    for split in ("validation", "test"):
        for sim, what in (("simulator", "the training simulator"), ("simulator-b", "the held-out simulator"),
                          ("world", "the training simulator, with the world's ground truth")):
            path = os.path.join(exp, f"eval-{split}-{sim}", "results.json")
            if os.path.exists(path):
                found = True
                print(summarise(path, f"{split.capitalize()}, scored by {what}"))
        # cross-evaluation (tools/experiments/cross_eval.sh): one table per evaluator
        cross = os.path.join(exp, f"eval-{split}-cross")
        if os.path.isdir(cross):
            for name in sorted(os.listdir(cross), key=lambda n: (n != "results.json", n)):
                if name.startswith("results") and name.endswith(".json"):
                    found = True
                    evaluator = json.load(open(os.path.join(cross, name))).get("evaluator") or "simulator"
                    print(summarise(os.path.join(cross, name),
                                    f"{split.capitalize()}, cross-evaluation, scored by {evaluator}"))
    if not found:
        sys.exit(f"{exp}: no eval-*/results.json found")


if __name__ == "__main__":
    main()
