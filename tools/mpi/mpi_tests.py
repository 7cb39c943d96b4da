#!/usr/bin/env python3
"""Data-parallel training under Open MPI on localhost, against one process.

    tools/mpi/mpi_tests.py PRORL DEMO SCRATCH

DEMO is a `prorl demo --quick` output (tasks/, simulator/, pretrain/). Every
multi-process run is `mpirun -np 2` with one kernel thread per rank; every
single-process run has one thread too, so the arithmetic is the same and
only the order in which the gradient arena is summed differs:

  rl           K RL steps: the parameters equal one process's running the same
               global batch (5 prompts: uneven shards, micro-batches that do not
               line up), to TOLERANCE; step 1's metrics line is identical
               (every value but the timings), later lines agree to 1e-4
  pretrain     K pretraining steps (dropout 0: the masks are each rank's own),
               parameters to TOLERANCE, the epoch line's losses to 1e-6
  simulator    K simulator steps (dropout 0), parameters to TOLERANCE
  resume       a run stopped half-way and resumed under mpirun is byte for byte
               the uninterrupted mpirun run (the same reduction order)
  kill         kill -9 one rank mid-run: mpirun exits non-zero with a message
               naming the lost rank, no rank is left running, and the last
               checkpoint is whole: the run resumes from it under mpirun
  errors       a command that does not run data-parallel, too few prompts for
               the ranks, an input missing, a missing MPI plugin: each a one-line
               error, non-zero exit, no hang, nothing left behind

Python standard library only.
"""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

# ‖θ_mpi − θ_one‖ / ‖θ_one‖: float sums in another order, then Adam, which
# turns a near-zero gradient's rounding into up to ±lr (a ReLU at its kink,
# an item seen once): measured 2.6e-6 after 9 pretraining steps at lr 3e-3,
# 6e-7 after a simulator epoch, < 1e-7 after 4 RL steps
TOLERANCE = 1e-5
TIMINGS = ("seconds", "rollouts_per_second", "phases_ms")
MPIRUN = ["mpirun", "--oversubscribe", "-np", "2"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def tensors(path):
    """name -> tuple of floats (F32 safetensors)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        start, end = t["data_offsets"]
        out[name] = struct.unpack("<%df" % ((end - start) // 4), data[8 + n + start:8 + n + end])
    return out


def difference(a, b):
    """(‖a − b‖ / ‖a‖, max |a − b|) over every tensor of two checkpoints."""
    pa, pb = tensors(a), tensors(b)
    if pa.keys() != pb.keys():
        return float("inf"), float("inf")
    d2 = n2 = worst = 0.0
    for k in pa:
        for x, y in zip(pa[k], pb[k]):
            d2 += (x - y) ** 2
            n2 += x * x
            worst = max(worst, abs(x - y))
    return (d2 / max(n2, 1e-30)) ** 0.5, worst


def agree(what, a, b):
    rel, worst = difference(a, b)
    check(rel <= TOLERANCE, f"{what}: ‖Δθ‖/‖θ‖ = {rel:.2g} ≤ {TOLERANCE} (max |Δθ| {worst:.2g})")


def lines(path):
    with open(path) as f:
        return [{k: v for k, v in json.loads(l).items() if k not in TIMINGS} for l in f if l.strip()]


def close(a, b, rel):
    if isinstance(a, dict) or isinstance(b, dict) or isinstance(a, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= rel * max(abs(a), abs(b), 1e-3)
    return a == b


def run(cmd, log, mpi=False, env=None, timeout=600):
    full = (MPIRUN if mpi else []) + cmd
    with open(log, "w") as out:
        p = subprocess.run(full, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return p.returncode


def main():
    prorl, demo, scratch = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    S = lambda *p: os.path.join(scratch, *p)
    inputs = ["--tasks", f"{demo}/tasks", "--simulator", f"{demo}/simulator/simulator.safetensors",
              "--policy", f"{demo}/pretrain/policy-sft.safetensors"]
    rl = [prorl, "train", *inputs, "--prompts-per-step", "5", "--rollouts", "4", "--micro-batch", "2",
          "--evaluate-every", "2", "--threads", "1"]

    # rl: one process and two ranks, the same global batch
    t0 = time.time()
    one = run(rl + ["--run", S("rl-one"), "--steps", "4"], S("rl-one.log"))
    two = run(rl + ["--run", S("rl-two"), "--steps", "4"], S("rl-two.log"), mpi=True)
    check(one == 0 and two == 0, f"rl: one process and mpirun -np 2 both train 4 steps (exit {one}, {two})")
    if one == 0 and two == 0:
        agree("rl: parameters after 4 steps", S("rl-one", "policy-last.safetensors"), S("rl-two", "policy-last.safetensors"))
        a, b = lines(S("rl-one", "metrics.jsonl")), lines(S("rl-two", "metrics.jsonl"))
        check(len(a) == len(b) == 4 and a[0] == b[0], "rl: step 1's metrics line is identical (rollouts, rewards, "
              "advantages, loss and gradient norm of the whole step)")
        bad = [(x["step"], k, x[k], y[k]) for x, y in zip(a, b) for k in x if not close(x[k], y.get(k), 1e-4)]
        check(len(a) == len(b) and not bad, f"rl: every metric of every step agrees to 1e-4 {bad[:3] if bad else ''}")
        va, vb = lines(S("rl-one", "validation.jsonl")), lines(S("rl-two", "validation.jsonl"))
        check(len(va) == len(vb) == 3 and all(close(x[k], y[k], 1e-4) for x, y in zip(va, vb) for k in x),
              "rl: the validation lines (steps 0, 2, 4) agree")
        names = lambda d: sorted(f for f in os.listdir(d) if not f.startswith("."))
        check(names(S("rl-one")) == names(S("rl-two")), f"rl: rank 0 wrote the run's files {names(S('rl-two'))}")
    print(f"      ({time.time() - t0:.1f} s)")

    # pretrain: 9 steps of a 96-task batch (the last one 32 tasks), dropout 0
    pre = [prorl, "pretrain", "--tasks", f"{demo}/tasks", "--epochs", "1", "--batch-size", "96", "--dropout", "0",
           "--threads", "1"]
    one = run(pre + ["--out", S("pre-one")], S("pre-one.log"))
    two = run(pre + ["--out", S("pre-two")], S("pre-two.log"), mpi=True)
    check(one == 0 and two == 0, f"pretrain: one process and mpirun -np 2 (exit {one}, {two})")
    if one == 0 and two == 0:
        agree("pretrain: parameters after 9 steps", S("pre-one", "policy-sft.safetensors"), S("pre-two", "policy-sft.safetensors"))
        a, b = lines(S("pre-one", "pretrain.jsonl")), lines(S("pre-two", "pretrain.jsonl"))
        check(all(close(x[k], y[k], 1e-6) for x, y in zip(a, b) for k in ("train_loss", "validation_loss")),
              "pretrain: train and validation loss agree to 1e-6")
    two = run(pre[:-4] + ["--threads", "1", "--out", S("pre-dropout")], S("pre-dropout.log"), mpi=True)
    check(two == 0 and os.path.exists(S("pre-dropout", "policy-sft.safetensors")),
          "pretrain: with dropout (each rank's own masks) it trains too")

    # simulator: one epoch, dropout 0
    inter = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Data", "synthetic", "synthetic.inter")
    sim = [prorl, "simulator", "train", "--inter", os.path.abspath(inter),
           "--epochs", "1", "--dropout", "0", "--batch-size", "100", "--threads", "1"]
    one = run(sim + ["--out", S("sim-one")], S("sim-one.log"))
    two = run(sim + ["--out", S("sim-two")], S("sim-two.log"), mpi=True)
    check(one == 0 and two == 0, f"simulator: one process and mpirun -np 2 (exit {one}, {two})")
    if one == 0 and two == 0:
        agree("simulator: parameters after one epoch", S("sim-one", "simulator.safetensors"), S("sim-two", "simulator.safetensors"))

    # resume: 2 steps, then 2 more, under mpirun; against 4 straight
    straight = run(rl + ["--run", S("straight"), "--steps", "4", "--checkpoint-every", "1"], S("straight.log"), mpi=True)
    half = run(rl + ["--run", S("halves"), "--steps", "2", "--checkpoint-every", "1"], S("halves.log"), mpi=True)
    cfg_path = S("halves", "config.json")
    cfg = json.load(open(cfg_path))
    cfg["settings"]["steps"] = 4
    json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    rest = run([prorl, "train", "--run", S("halves"), "--resume", "--threads", "1"], S("halves-resume.log"), mpi=True)
    check(straight == half == rest == 0, f"resume: mpirun runs (exit {straight}, {half}, {rest})")
    if straight == half == rest == 0:
        same = all(open(S("straight", f), "rb").read() == open(S("halves", f), "rb").read()
                   for f in ("policy-last.safetensors", "state.safetensors"))
        check(same and lines(S("straight", "metrics.jsonl")) == lines(S("halves", "metrics.jsonl")),
              "resume: 2 + 2 steps under mpirun equal 4 straight, byte for byte (policy, state; metrics but timings)")

    # kill one rank mid-run
    run_dir = S("killed")
    cmd = MPIRUN + rl + ["--run", run_dir, "--steps", "400", "--checkpoint-every", "1", "--evaluate-every", "0"]
    p = subprocess.Popen(cmd, stdout=open(S("killed.log"), "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    metrics = os.path.join(run_dir, "metrics.jsonl")
    while time.time() < deadline and p.poll() is None and (not os.path.exists(metrics) or len(open(metrics).readlines()) < 3):
        time.sleep(0.05)

    def ranks():
        found = {}
        for proc in glob.glob("/proc/[0-9]*"):
            try:
                env = open(f"{proc}/environ", "rb").read().split(b"\0")
                argv = open(f"{proc}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if run_dir.encode() in argv:
                for e in env:
                    if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                        found[int(e.split(b"=")[1])] = int(proc.rsplit("/", 1)[1])
        return found

    found = ranks()
    check(sorted(found) == [0, 1], f"kill: both ranks running ({found})")
    if 1 in found:
        os.kill(found[1], signal.SIGKILL)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log = open(S("killed.log"), errors="replace").read()
        check(p.returncode != 0, f"kill: mpirun exits non-zero ({p.returncode}) within 60 s")
        time.sleep(0.5)
        check(not ranks(), "kill: no rank is left running")
        check("rank 1" in log and ("signal 9" in log or "Killed" in log), "kill: the message names rank 1 and its signal")
        tmp = [f for f in os.listdir(run_dir) if ".tmp-" in f]
        cfg_path = os.path.join(run_dir, "config.json")
        cfg = json.load(open(cfg_path))
        with open(os.path.join(run_dir, "state.safetensors"), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            step = int(json.loads(f.read(n))["__metadata__"]["step"])
        cfg["settings"]["steps"] = step + 2
        json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
        rc = run([prorl, "train", "--run", run_dir, "--resume", "--threads", "1"], S("killed-resume.log"), mpi=True)
        check(rc == 0 and len(lines(metrics)) == step + 2,
              f"kill: the checkpoint (step {step}) is whole: resumed under mpirun for 2 more steps (exit {rc}; "
              f"temporary files left by the kill: {tmp or 'none'})")

    # errors
    def error(cmd, expect, what, env=None):
        t = time.time()
        try:
            rc = run(cmd, S("error.log"), mpi=True, env=env, timeout=60)
        except subprocess.TimeoutExpired:
            check(False, f"errors: {what}: hung")
            return
        text = open(S("error.log"), errors="replace").read()
        check(rc != 0 and expect in text, f"errors: {what}: exit {rc} in {time.time() - t:.1f} s, '{expect}'")

    error([prorl, "eval", "--simulator", f"{demo}/simulator/simulator.safetensors", "--tasks", f"{demo}/tasks",
           "--split", "test", "--out", S("eval")], "runs in one process", "prorl eval under mpirun")
    error(rl[:rl.index("--prompts-per-step") + 1] + ["1"] + rl[rl.index("--prompts-per-step") + 2:] + ["--run", S("few")],
          "cannot be shared by 2 ranks", "1 prompt per step for 2 ranks")
    missing = [a if a != f"{demo}/simulator/simulator.safetensors" else S("nonexistent.safetensors") for a in rl]
    error(missing + ["--run", S("missing")], "nonexistent.safetensors", "a missing simulator (found once the run is created)")
    env = dict(os.environ, PRORL_MPI_PLUGIN="/nonexistent/libprorl_mpi.so")
    error(rl + ["--run", S("noplugin")], "did not open", "no MPI plugin", env=env)
    check(not any(os.path.exists(S(d)) for d in ("eval", "few", "missing", "noplugin")),
          "errors: nothing written by the refused commands")

    print(f"mpi: {len(failures)} failures" if failures else "mpi: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
