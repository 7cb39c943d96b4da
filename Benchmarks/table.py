#!/usr/bin/env python3
"""Turn the engine's benchmark JSON lines (stdin) into a markdown table.

    build/kernel_bench | python3 Benchmarks/table.py
"""
import json
import sys

rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
ceil = {r["kernel"]: r for r in rows if r["kernel"] in ("fma_peak", "bf16_peak", "stream_copy")}
for k, r in ceil.items():
    unit = "GFLOP/s" if "gflops" in r else "GB/s"
    print(f"- {k}: {r.get('gflops', r.get('gbps'))} {unit} ({r['threads']} threads)")
print()
print("| kernel | shape | ms (median) | rate | % of peak | × naive |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    if r["kernel"] in ceil:
        continue
    rate = f"{r['gflops']} GFLOP/s" if "gflops" in r else f"{r['gbps']} GB/s"
    sp = r.get("speedup_vs_naive")
    print(f"| {r['kernel']} | {r['shape']} | {r['ms_median']:.2f} | {rate} | {r['pct_of_peak']} | {sp if sp is not None else '—'} |")
