#!/usr/bin/env python3
"""Score paths on a synthetic world by the world itself, beside a simulator.

    python3 tools/experiments/world_scores.py WORLD PATHS [PATHS ...]

WORLD is a directory `prorl data synth` wrote (world.json, synthetic.inter).
Each PATHS file is JSON lines: task files (the logged path is `proc_path`
minus its last entry, the target) or `prorl generate --tasks … --out` output
(`path`, `target`, and the simulator's `ioi`). For every path it computes,
from the user's true taste at the end of the history:

- world IoI: the change of log p(next item = target) under the process that
  wrote the log (half the proposals from a genre drawn from the taste, half
  uniform; acceptance a(p, i); consumed items never again) — the quantity a
  simulator's IoI estimates, computed exactly;
- true gain: the change of the target's acceptance after walking the path
  with expected drift (SyntheticWorld.guidance's truth).

It prints their means, those of the path's first item alone, and, where
the file has the simulator's IoI, its Spearman correlation with both.
"""
import collections
import json
import math
import sys


class World:
    def __init__(self, directory):
        w = json.load(open(f"{directory}/world.json"))
        s = w["settings"]
        self.K, self.N = s["genres"], s["items"]
        self.alpha, self.kappa, self.eta = s["sharpness"], s["threshold"], s["drift"]
        self.genres, self.appeal, self.initial = w["itemGenres"], w["itemAppeal"], w["initialTaste"]
        # proposals draw an item uniformly among those whose largest weight is the genre
        self.top = [None] + [max(range(self.K), key=lambda g: self.genres[i][g]) for i in range(1, self.N + 1)]
        self.pool = collections.Counter(self.top[1:])
        self.logs = collections.defaultdict(list)
        with open(f"{directory}/synthetic.inter") as f:
            next(f)
            for line in f:
                user, item, *_ = line.split("\t")
                self.logs[user].append(int(item))

    def acceptance(self, p, i):
        x = self.alpha * (sum(p[g] * self.genres[i][g] for g in range(self.K)) - self.kappa) + self.appeal[i]
        return 1 / (1 + math.exp(-x))

    def drift(self, p, i, weight=1.0):
        e = self.eta * weight
        return [(1 - e) * p[g] + e * self.genres[i][g] for g in range(self.K)]

    def next_log_prob(self, p, seen, target):
        total = 0.0
        for i in range(1, self.N + 1):
            if i not in seen:
                total += (0.5 * p[self.top[i]] / self.pool[self.top[i]] + 0.5 / self.N) * self.acceptance(p, i)
        q = 0.5 * p[self.top[target]] / self.pool[self.top[target]] + 0.5 / self.N
        return math.log(q * self.acceptance(p, target) / total)

    def score(self, user, history, path, target):
        """[(world IoI, true gain)] after each prefix of the path."""
        log = self.logs[user]
        end = next(s + len(history) for s in range(len(log) - len(history) + 1) if log[s:s + len(history)] == history)
        p = self.initial[int(user[1:]) - 1]
        for i in log[:end]:
            p = self.drift(p, i)
        seen = set(log[:end])
        lp0, a0 = self.next_log_prob(p, seen, target), self.acceptance(p, target)
        out = []
        for i in path:
            p = self.drift(p, i, self.acceptance(p, i))
            seen.add(i)
            out.append((self.next_log_prob(p, seen, target) - lp0, self.acceptance(p, target) - a0))
        return out


def spearman(x, y):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda k: v[k])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    world = World(sys.argv[1])
    print("| paths | n | length | world IoI | true gain | first item: world IoI | true gain | simulator IoI | "
          "Spearman(sim, world IoI) | Spearman(sim, true gain) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in sys.argv[2:]:
        rows = []
        for n, line in enumerate(open(name), 1):
            t = json.loads(line)
            if "proc_path" in t:
                path, target, sim = [int(x) for x in t["proc_path"][:-1]], int(t["proc_path"][-1]), None
            else:
                path, target, sim = [int(x) for x in t["path"]], int(t["target"]), t.get("ioi")
            if not path:
                continue
            rows.append((world.score(t["user"], [int(x) for x in (t.get("inters") or t["history"])], path, target), sim))
        mean = lambda v: sum(v) / max(len(v), 1)
        full = [r[-1] for r, _ in rows]
        first = [r[0] for r, _ in rows]
        sims = [s for _, s in rows]
        line = (f"| {name} | {len(rows)} | {mean([len(r) for r, _ in rows]):.2f} | {mean([a for a, _ in full]):+.4f} | "
                f"{mean([b for _, b in full]):.4f} | {mean([a for a, _ in first]):+.4f} | {mean([b for _, b in first]):.4f} |")
        if all(s is not None for s in sims) and len(sims) > 2:
            line += (f" {mean(sims):+.4f} | {spearman(sims, [a for a, _ in full]):.2f} | "
                     f"{spearman(sims, [b for _, b in full]):.2f} |")
        else:
            line += " | | |"
        print(line)


if __name__ == "__main__":
    main()
