#!/usr/bin/env python3
"""kill -9 a training run at random moments, resume it each time, and
require the result to be exactly the uninterrupted run's.

    tools/fuzz/kill_resume.py PRORL RUN SCRATCH [--steps N] [--kills K] [--seed S]

RUN is a finished RL run (e.g. `prorl demo --quick`'s prorl/). Two copies
get N more steps with a checkpoint after every step: one trains straight
through, the other is killed (SIGKILL) K times at random moments and resumed
after each kill. After every kill the run must resume from a whole
checkpoint — the state's step is one the run wrote, and metrics.jsonl holds
each step at most once up to it — and at the end the two runs' latest
policies, states and metrics must be identical byte for byte (one kernel
thread each, so the arithmetic is the same). Python standard library only.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time


def state_step(run):
    with open(os.path.join(run, "state.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return int(json.loads(f.read(n))["__metadata__"]["step"])


def metric_steps(run):
    steps = []
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                steps.append(json.loads(line)["step"])
    return steps


def train(prorl, run, log, wait=True):
    cmd = [prorl, "train", "--run", run, "--resume", "--threads", "1"]
    p = subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT)
    if wait:
        p.wait()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prorl")
    ap.add_argument("run")
    ap.add_argument("scratch")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    prorl = os.path.abspath(a.prorl)
    shutil.rmtree(a.scratch, ignore_errors=True)
    os.makedirs(a.scratch)
    runs = {}
    for name in ("straight", "killed"):
        d = os.path.join(a.scratch, name)
        shutil.copytree(a.run, d)
        cfg_path = os.path.join(d, "config.json")
        cfg = json.load(open(cfg_path))
        start = state_step(d)
        cfg["settings"]["steps"] = start + a.steps
        cfg["settings"]["checkpointEvery"] = 1
        cfg["settings"]["evaluateEvery"] = 0
        json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
        runs[name] = d
    start = state_step(runs["straight"])
    end = start + a.steps
    failures = []
    t0 = time.time()
    p = train(prorl, runs["straight"], os.path.join(a.scratch, "straight.log"))
    if p.returncode != 0:
        print("kill_resume: the uninterrupted run failed; see", os.path.join(a.scratch, "straight.log"))
        return 1
    per_step = (time.time() - t0) / (a.steps + 2)  # the start-up counts about two steps
    killed, log = runs["killed"], os.path.join(a.scratch, "killed.log")
    written = {start}
    for k in range(a.kills):
        # kill after the resumed run has written a step of its own, at a random moment of a later one
        # (every step ends with its checkpoint, so this lands anywhere in step, metrics and checkpoint writes)
        before = len(metric_steps(killed))
        p = train(prorl, killed, log, wait=False)
        deadline = time.time() + 120
        while p.poll() is None and len(metric_steps(killed)) <= before and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 1.5 * per_step))
        if p.poll() is None:
            p.kill()
        p.wait()
        step = state_step(killed)
        if not start <= step <= end:
            failures.append(f"kill {k + 1}: the state names step {step}, outside {start}...{end}")
        written.add(step)
        steps = metric_steps(killed)
        if len(set(steps)) != len(steps):
            dup = sorted({s for s in steps if steps.count(s) > 1})
            # a resume drops the lines after its checkpoint; duplicates would mean it did not
            failures.append(f"kill {k + 1}: metrics.jsonl holds steps {dup} twice")
        leftovers = [f for f in os.listdir(killed) if ".tmp-" in f]
        print(f"kill {k + 1}: signal {-p.returncode if p.returncode < 0 else 'none (finished)'}, checkpoint at step {step}"
              + (f", temporary files {leftovers} (removed on resume)" if leftovers else ""))
    p = train(prorl, killed, log)
    if p.returncode != 0:
        failures.append(f"the last resume failed (exit {p.returncode}); see {log}")
    for name in ("policy-last.safetensors", "state.safetensors", "metrics.jsonl"):
        a_bytes = open(os.path.join(runs["straight"], name), "rb").read()
        b_bytes = open(os.path.join(killed, name), "rb").read()
        if name == "metrics.jsonl":  # timings differ between runs; everything else must not
            strip = lambda b: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "rollouts_per_second", "phases_ms")}
                               for l in b.decode().splitlines() if l.strip()]
            same = strip(a_bytes) == strip(b_bytes)
        else:
            same = a_bytes == b_bytes
        if not same:
            failures.append(f"{name} differs from the uninterrupted run's")
    if os.path.exists(killed) and any(".tmp-" in f for f in os.listdir(killed)):
        failures.append("temporary files remain after the last resume")
    for f in failures:
        print("FAIL", f)
    print(f"kill -9 and resume: {a.kills} kills over {a.steps} steps, checkpoints resumed at steps {sorted(written)}; "
          + ("identical to the uninterrupted run" if not failures else f"{len(failures)} failures"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
