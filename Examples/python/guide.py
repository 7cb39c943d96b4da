#!/usr/bin/env python3
"""Guide one MovieLens-100K user toward a film, with the Python bindings.

    make lib && pip install ./python
    export PRORL_LIBRARY=$PWD/build/lib/libprorl.so
    python3 Examples/python/guide.py runs/ml100k/prorl-s1 ../shared/data/ml-100k/ml-100k.inter 196 258

RUN is an RL run trained on ML-100K (tools/experiments/rl.sh ml100k makes
them; `prorl demo` makes one on the synthetic world, with its .inter); the
user's last 10 films form the history. Prints the three best paths with
titles, and the simulator's view of the first one step by step.
"""
import math
import sys

import prorl


def last_items(inter_path, user, n=10):
    """The user's last n items in a RecBole .inter file (by timestamp)."""
    events = []
    with open(inter_path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = {name.split(":")[0]: i for i, name in enumerate(header)}
        for line in f:
            row = line.rstrip("\n").split("\t")
            if row[col["user_id"]] == user:
                events.append((float(row[col["timestamp"]]) if "timestamp" in col else 0.0, row[col["item_id"]]))
    if not events:
        sys.exit(f"{inter_path}: no user {user!r}")
    return [item for _, item in sorted(events)][-n:]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    run, inter, user, target = sys.argv[1:]
    history = last_items(inter, user)
    with prorl.Model.load_run(run) as model:
        print(f"user {user}: ... " + " · ".join(model.title(i) for i in history[-3:]))
        print(f"target: {model.title(target)}\n")
        paths = model.generate(history, target, beams=3, max_items=5)
        for k, path in enumerate(paths, 1):
            print(f"path {k} (score {path.score:.3f}): " + " → ".join(model.title(i) for i in path.items))
        s = model.score_path(history, target, paths[0].items)
        print(f"\npath 1 step by step (IoI {s.ioi:+.3f}, IoR {s.ior:+.0f}, CTR {s.ctr:.3f}):")
        print(f"  history                               p(target) {math.exp(s.log_p_target[0]):.2e}  rank {s.rank_target[0]}")
        for j, item in enumerate(paths[0].items, 1):
            print(f"  {j}. {model.title(item)[:34]:34s}  CTR {s.step_ctr[j]:.3f}  p(target) "
                  f"{math.exp(s.log_p_target[j]):.2e}  rank {s.rank_target[j]}")


if __name__ == "__main__":
    try:
        main()
    except prorl.ProRLError as e:
        sys.exit(f"guide.py: {e}")
