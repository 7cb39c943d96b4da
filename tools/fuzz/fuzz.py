#!/usr/bin/env python3
"""The hostile-input corpus of `make test`: malformed files of every format
the engine reads and out-of-range values of every subcommand's flags, each
run through the real `prorl` binary.

    tools/fuzz/fuzz.py PRORL DEMO SCRATCH [--seed N] [--only SUBSTRING] [--list]

DEMO is a directory made by `prorl demo --quick` (tasks/, simulator/,
pretrain/, prorl/): the valid files every case starts from. Each case copies
what it needs into its own directory under SCRATCH, breaks one thing, runs
one command there and checks:

- no signal (a trap, a segfault, an abort) and no hang (60 s);
- a case with a detectable defect exits non-zero, and the first line of
  stderr starts with "Error:" and names the file or the field/flag;
  a settings or file error is that one line (argument-parser errors may add
  their usage lines after it);
- nothing is left behind: a failing command creates no output (the case's
  output path does not exist afterwards, no temporary files);
- cases without a detectable defect (a flipped bit inside the weights) may
  pass or fail, but never crash.

Prints one line per failing case and a summary with the counts; exits 1 when
any case fails. Python standard library only.
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys


# ---------------------------------------------------------------- safetensors

def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_write(path, header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def tensor_names(header):
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])


def safetensors_cases(kind, path, rng):
    """(name, defect, mutate(path)) for one safetensors file."""
    header, data = st_read(path)
    names = tensor_names(header)
    first, middle = names[0], names[len(names) // 2]
    raw = open(path, "rb").read()
    hlen = struct.unpack("<Q", raw[:8])[0]
    cases = []

    def bytes_case(name, content, defect=True):
        def f(p):
            open(p, "wb").write(content)
        cases.append((f"{kind}: {name}", defect, f))

    for cut in [0, 1, 7, 8, 9, 8 + hlen // 2, 8 + hlen, 8 + hlen + 1, 8 + hlen + len(data) // 2, len(raw) - 1]:
        bytes_case(f"truncated at {cut} of {len(raw)} bytes", raw[:cut])
    for n in [0, 1, 2, hlen - 1, hlen + 1, len(raw), 2**31, 2**32 + 5, 2**62, 2**63 - 1, 2**63, 2**64 - 1]:
        bytes_case(f"header length {n}", struct.pack("<Q", n) + raw[8:])
    bytes_case("header not JSON", struct.pack("<Q", hlen) + b"{" * hlen + data)
    bytes_case("header a JSON array", struct.pack("<Q", 2) + b"[]" + data)
    bytes_case("header with a NUL", struct.pack("<Q", hlen) + raw[8:8 + hlen - 1] + b"\0" + data)

    def header_case(name, edit, defect=True):
        def f(p):
            h = json.loads(json.dumps(header))
            d = edit(h)
            st_write(p, h, data if d is None else d)
        cases.append((f"{kind}: {name}", defect, f))

    def set_shape(t, shape):
        def e(h):
            h[t]["shape"] = shape
        return e
    shape = header[middle]["shape"]
    for s in [[-1], [0], [2**62, 2**62], [2**31, 2**31, 4], shape[:-1] or [1, 1], list(reversed(shape)) + [1],
              [shape[0] * 2] + shape[1:], []]:
        header_case(f"{middle} shape {s}", set_shape(middle, s))
    if len(shape) == 2 and shape[0] != shape[1]:
        header_case(f"{middle} shape swapped {shape[::-1]}", set_shape(middle, shape[::-1]))
    for dt in ["BF16", "F16", "F64", "I64", "I8", "BOOL", "Q4", ""]:
        def e(h, dt=dt):
            h[middle]["dtype"] = dt
        header_case(f"{middle} dtype {dt!r}", e)
    lo, hi = header[middle]["data_offsets"]
    for offs in [[0, 0], [lo, lo], [-4, hi - lo - 4], [hi, lo], [len(data), len(data) + hi - lo],
                 [2**63 - 8, 2**63 - 8 + hi - lo], [2**64 - 4, 2**64 - 4 + hi - lo], [lo, hi + 4], [lo + 4, hi + 4]]:
        def e(h, offs=offs):
            h[middle]["data_offsets"] = offs
        header_case(f"{middle} data_offsets {offs}", e)
    if len(names) > 1:
        def overlap(h):
            a, b = header[names[1]]["data_offsets"]
            h[names[1]]["data_offsets"] = [a - 4, b - 4]
        header_case(f"{names[1]} overlaps {names[0]}", overlap)
    def drop(h):
        del h[middle]
    header_case(f"{middle} missing", drop)
    def unknown(h):
        h["bogus.weight"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        return data + b"\0\0\0\0"
    header_case("an unknown tensor", unknown)
    def renamed(h):
        h["x." + middle] = h.pop(middle)
    header_case(f"{middle} renamed", renamed)
    def no_meta(h):
        h.pop("__metadata__", None)
    header_case("no metadata", no_meta)
    def meta_not_strings(h):
        h["__metadata__"]["format"] = 7
    header_case("metadata value not a string", meta_not_strings)
    for value in [float("nan"), float("inf"), float("-inf"), 1e39]:
        def poison(h, value=value):
            a, _ = h[middle]["data_offsets"]
            # 1e39 is not a float32; write the nearest bit pattern of +inf for it
            bits = struct.pack("<f", value) if math.isfinite(value) and abs(value) < 3.4e38 else (
                struct.pack("<f", float("inf")) if value > 0 else struct.pack("<f", value))
            return data[:a] + bits + data[a + 4:]
        header_case(f"{middle} holds {value}", poison)
    for k in range(4):
        def flip(h, k=k):
            i = rng.randrange(len(data))
            b = bytearray(data)
            b[i] ^= 1 << rng.randrange(7)  # never the top exponent bit pattern only: finite flips are possible
            return bytes(b)
        header_case(f"a flipped bit in the weights #{k}", flip, defect=False)
    for k in range(4):
        i = 8 + rng.randrange(hlen)
        b = bytearray(raw)
        b[i] ^= 1 << rng.randrange(8)
        bytes_case(f"a flipped bit in the header at {i}", bytes(b), defect=False)

    meta = header.get("__metadata__", {})
    def meta_case(name, key, value, defect=True):
        def e(h):
            if value is None:
                h["__metadata__"].pop(key, None)
            else:
                h["__metadata__"][key] = value
        header_case(f"metadata {key} {name}", e, defect)
    for key in meta:
        meta_case("missing", key, None, defect=key != "architecture")
        meta_case("not JSON", key, "{", defect=key not in ("format", "architecture", "step", "adam_step"))
    if "format" in meta:
        meta_case("'prorl-other'", "format", "prorl-other")
    if "config" in meta:
        config = json.loads(meta["config"])
        edits = {}
        for field, v in config.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            for bad in ([-1, 0, 10**9, 2**62] if isinstance(v, int) else [-1.0, 1e30, "nan", 0.0]):
                if bad == v:
                    continue
                edits[f"{field}={bad}"] = (field, bad)
        for name, (field, bad) in edits.items():
            c = dict(config)
            c[field] = float("nan") if bad == "nan" else bad
            # fields that may legitimately take some of these values
            harmless = (field in ("dropout", "hiddenDropout", "attentionDropout") and bad == 0.0) or \
                       (field == "decoderStartToken" and bad == 0) or (field == "initializerRange")
            meta_case(name, "config", json.dumps(c).replace("NaN", "nan"), defect=not harmless)
        c = dict(config)
        c.pop(next(iter(c)))
        meta_case("a field missing", "config", json.dumps(c))
    if "item_ids" in meta:
        ids = json.loads(meta["item_ids"])
        meta_case("one short", "item_ids", json.dumps(ids[:-1]))
        meta_case("a duplicate", "item_ids", json.dumps(ids[:-1] + [ids[1]]))
        meta_case("[]", "item_ids", "[]")
        meta_case("not strings", "item_ids", json.dumps(list(range(len(ids)))))
    if "tokenizer" in meta:
        tok = json.loads(meta["tokenizer"])
        for edit in [{"codebook_sizes": []}, {"codebook_sizes": [0]}, {"codebook_sizes": [-5]}, {"codebook_sizes": [2**40]},
                     {"tokens_per_item": 0}, {"tokens_per_item": 7}, {"kind": "bogus"}]:
            t = dict(tok)
            t.update(edit)
            meta_case(json.dumps(edit), "tokenizer", json.dumps(t))
    if "architecture" in meta:
        meta_case("'transformer9'", "architecture", "transformer9")
        meta_case("'gru4rec' on SASRec tensors", "architecture", "gru4rec")
    for key in ("step", "adam_step"):
        if key in meta:
            for v in ["-5", "2", "4611686018427387904", "x", "99999999999999999999999"]:
                if v != meta[key]:
                    meta_case(repr(v), key, v, defect=not (key == "adam_step" and v == "2") and not (key == "step" and v == "2"))
    if "centering" in meta:
        c = json.loads(meta["centering"])
        c2 = json.loads(meta["centering"])
        c2["moments"] = c2["moments"][:1]
        meta_case("a short moments list", "centering", json.dumps(c2))
        c3 = json.loads(meta["centering"])
        c3["mode"] = "bogus"
        meta_case("mode bogus", "centering", json.dumps(c3))
        c4 = json.loads(meta["centering"])
        c4["lastBatch"]["mean"] = [1e400, 0, 0]
        meta_case("an infinite mean", "centering", json.dumps(c4).replace("Infinity", "1e400"))
    return cases


# ------------------------------------------------------------------ text files

def text_cases(kind, path, rng, lines_expected=True):
    raw = open(path, "rb").read()
    text = raw.decode("utf-8")
    lines = text.splitlines(True)
    cases = []

    def case(name, content, defect=True):
        def f(p):
            open(p, "wb").write(content if isinstance(content, bytes) else content.encode("utf-8"))
        cases.append((f"{kind}: {name}", defect, f))
    case("empty", b"")
    case("truncated mid-way", raw[: len(raw) // 2 + 3])
    case("invalid UTF-8", raw[:40] + b"\xff\xfe" + raw[40:])
    case("NUL bytes", raw[:20] + b"\0\0" + raw[20:])
    case("a UTF-8 BOM", b"\xef\xbb\xbf" + raw, defect=False)
    case("CRLF line ends", text.replace("\n", "\r\n"), defect=False)
    case("one line repeated 3 times", "".join(lines[:1] * 3 + lines[1:]), defect=False)
    for k in range(3):
        i = rng.randrange(min(len(raw), 400))
        b = bytearray(raw)
        b[i] = rng.choice(b'{}[]",:\t\n0a\\')
        case(f"a changed byte at {i}", bytes(b), defect=False)
    return cases


def jsonl_task_cases(kind, path, rng):
    cases = text_cases(kind, path, rng)
    lines = open(path).read().splitlines()
    first = json.loads(lines[0])

    def case(name, edit, defect=True):
        def f(p):
            t = json.loads(json.dumps(first))
            new = edit(t)
            out = [new if isinstance(new, str) else json.dumps(t)] + lines[1:]
            open(p, "w").write("\n".join(out) + "\n")
        cases.append((f"{kind}: first task {name}", defect, f))
    case("not JSON", lambda t: '{"user": "u1", "inters": [')
    case("a JSON array", lambda t: "[1, 2]")
    case("a number", lambda t: "7")
    for key in list(first):
        case(f"without {key}", lambda t, key=key: t.pop(key), defect=key != "user")
    case("inters not a list", lambda t: t.update(inters="1 2 3"))
    case("inters empty", lambda t: t.update(inters=[]))
    case("proc_path empty", lambda t: t.update(proc_path=[]))
    case("an unknown item in inters", lambda t: t["inters"].__setitem__(0, "no-such-item"))
    case("an unknown target", lambda t: t["proc_path"].__setitem__(-1, "no-such-item"))
    case("an item id 1e400", lambda t: '{"inters": [1e400], "proc_path": ["1"]}')
    case("an item id null", lambda t: t["inters"].__setitem__(0, None))
    case("an item id an object", lambda t: t["inters"].__setitem__(0, {"id": 1}))
    case("a history of 40,000 items", lambda t: t.update(inters=t["inters"] * 4000), defect=False)
    case("a path of 5,000 items", lambda t: t.update(proc_path=t["inters"] * 500 + t["proc_path"][-1:]), defect=False)
    case("user a number", lambda t: t.update(user=5), defect=False)
    return cases


def json_edit_cases(kind, path, rng, edits):
    """The text cases of a JSON file, then one case per (name, edit of the parsed
    object) in `edits`, every one a defect."""
    cases = text_cases(kind, path, rng)
    original = json.load(open(path))
    for name, edit in edits:
        def f(p, edit=edit):
            o = json.loads(json.dumps(original))
            edit(o)
            open(p, "w").write(json.dumps(o))
        cases.append((f"{kind}: {name}", True, f))
    return cases


def catalog_cases(path, rng):
    return json_edit_cases("catalog.json", path, rng, [
        ("attribute index 99", lambda c: c["items"][0].update(attributes=[99])),
        ("attribute index -1", lambda c: c["items"][0].update(attributes=[-1])),
        ("attribute index 2^63", lambda c: c["items"][0].update(attributes=[2**63])),
        ("items not a list", lambda c: c.update(items={})),
        ("an item without id", lambda c: c["items"][0].pop("id")),
        ("a duplicate id", lambda c: c["items"][1].update(id=c["items"][0]["id"])),
        ("no attribute_names", lambda c: c.pop("attribute_names")),
        ("one item fewer", lambda c: c["items"].pop()),
    ])


def recbole_cases(kind, path, rng):
    cases = text_cases(kind, path, rng)
    lines = open(path).read().splitlines()

    def case(name, content, defect=True):
        def f(p):
            open(p, "w").write(content)
        cases.append((f"{kind}: {name}", defect, f))
    case("header only", lines[0] + "\n")
    case("no header types", lines[0].replace(":token", "").replace(":float", "") + "\n" + "\n".join(lines[1:]) + "\n")
    # the last column (timestamps, genres) is optional
    case("a missing column", "\n".join("\t".join(l.split("\t")[:-1]) for l in lines) + "\n", defect=False)
    case("a short row", "\n".join(lines[:3] + [lines[3].split("\t")[0]] + lines[4:]) + "\n")
    case("a long row", "\n".join(lines[:3] + [lines[3] + "\textra"] + lines[4:]) + "\n")
    if kind.endswith(".inter"):
        case("no user column", "\n".join("\t".join(l.split("\t")[1:]) for l in lines) + "\n")
        case("timestamp not a number", "\n".join(lines[:2] + ["\t".join(lines[2].split("\t")[:-1] + ["yesterday"])] + lines[3:]) + "\n")
        case("timestamp inf", "\n".join(lines[:2] + ["\t".join(lines[2].split("\t")[:-1] + ["inf"])] + lines[3:]) + "\n")
        case("timestamp nan", "\n".join(lines[:2] + ["\t".join(lines[2].split("\t")[:-1] + ["nan"])] + lines[3:]) + "\n")
        case("rating 1e400", "\n".join(lines[:2] + ["\t".join(lines[2].split("\t")[:2] + ["1e400"] + lines[2].split("\t")[3:])] + lines[3:]) + "\n")
        case("an empty item id", "\n".join(lines[:2] + ["\t".join(lines[2].split("\t")[:1] + [""] + lines[2].split("\t")[2:])] + lines[3:]) + "\n")
    return cases


def world_cases(path, rng):
    return json_edit_cases("world.json", path, rng, [
        ("itemGenres one short", lambda w: w["itemGenres"].pop()),
        ("itemAppeal one short", lambda w: w["itemAppeal"].pop()),
        ("a genre mix too short", lambda w: w["itemGenres"][5].pop()),
        ("a taste too short", lambda w: w["initialTaste"][0].pop()),
        ("no users", lambda w: w.update(initialTaste=[])),
        ("settings genres 0", lambda w: w["settings"].update(genres=0)),
        ("settings genres 1000", lambda w: w["settings"].update(genres=1000)),
        ("settings drift 5", lambda w: w["settings"].update(drift=5)),
        ("an appeal of 1e400", lambda w: w["itemAppeal"].__setitem__(3, "1e400")),
        ("no settings", lambda w: w.pop("settings")),
    ])


# ------------------------------------------------------------------- commands

class Corpus:
    def __init__(self, prorl, demo, scratch, rng):
        self.prorl, self.demo, self.scratch, self.rng = prorl, demo, scratch, rng
        self.cases = []  # (name, defect, setup(dir) -> (argv, outputs, needle))

    def add(self, name, defect, setup):
        self.cases.append((name, defect, setup))

    # the valid inputs, copied into a case directory on demand
    def copy(self, d, rel, to=None):
        src = os.path.join(self.demo, rel)
        dst = os.path.join(d, to or rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        return dst

    def history(self):
        t = json.loads(open(os.path.join(self.demo, "tasks/test.jsonl")).readline())
        return ",".join(t["inters"]), t["proc_path"][-1]


def build(corpus, world_dir):
    c, rng, P = corpus, corpus.rng, corpus.prorl
    hist, target = c.history()

    def generate(d, policy="policy.safetensors", simulator="simulator.safetensors"):
        return [P, "generate", "--policy", policy, "--simulator", simulator, "--history", hist, "--target", target,
                "--beams", "1", "--max-items", "3"]

    # model files, read by generate (and the RL state by train --resume)
    def model_setup(mutate, broken):
        def setup(d):
            c.copy(d, "pretrain/policy-sft.safetensors", "policy.safetensors")
            c.copy(d, "simulator/simulator.safetensors", "simulator.safetensors")
            mutate(os.path.join(d, broken))
            return generate(d), [], broken
        return setup
    for name, defect, mutate in safetensors_cases("policy", os.path.join(c.demo, "pretrain/policy-sft.safetensors"), rng):
        c.add(name, defect, model_setup(mutate, "policy.safetensors"))
    for name, defect, mutate in safetensors_cases("simulator", os.path.join(c.demo, "simulator/simulator.safetensors"), rng):
        if name in ("simulator: metadata config missing", "simulator: metadata format missing"):
            defect = False  # a bare state_dict: the architecture is inferred from the tensors (documented)
        c.add(name, defect, model_setup(mutate, "simulator.safetensors"))

    def resume_setup(mutate, target_file, needle=None):
        def setup(d):
            run = c.copy(d, "prorl", "run")
            for f in os.listdir(run):
                if f == "config.json":
                    cfg = json.load(open(os.path.join(run, f)))
                    cfg["settings"]["steps"] = cfg["settings"].get("steps", 4) + 1
                    cfg["settings"]["evaluateEvery"] = 0
                    json.dump(cfg, open(os.path.join(run, f), "w"))
            mutate(os.path.join(run, target_file))
            return [P, "train", "--run", "run", "--resume", "--threads", "1"], [], needle or target_file
        return setup
    for name, defect, mutate in safetensors_cases("RL state", os.path.join(c.demo, "prorl/state.safetensors"), rng):
        if "flipped bit in the weights" in name or "short moments list" in name:
            defect = None  # Adam moments may turn negative / scale centering keeps one moment set: either is right
        c.add(name, defect, resume_setup(mutate, "state.safetensors"))
    for name, defect, mutate in text_cases("config.json", os.path.join(c.demo, "prorl/config.json"), rng):
        if "BOM" in name or "CRLF" in name or "repeated" in name:
            continue
        c.add(name, defect if "changed byte" not in name else False, resume_setup(mutate, "config.json"))
    cfg = json.load(open(os.path.join(c.demo, "prorl/config.json")))
    for field, bad in [("learningRate", -1), ("learningRate", "nan"), ("klWeight", "inf"), ("temperature", 0),
                       ("rollouts", 0), ("promptsPerStep", -3), ("maxItems", 1000), ("algorithm", "bogus"),
                       ("centering", "bogus"), ("steps", -1), ("gamma", 2), ("topP", 0), ("microBatchPrompts", 0),
                       ("sigmaFloor", -1), ("weights", {"ctr": "nan", "ioi": 1, "ior": 1})]:
        def edit(p, field=field, bad=bad):
            c2 = json.loads(json.dumps(cfg))
            c2["settings"][field] = bad
            text = json.dumps(c2).replace('"nan"', "NaN").replace('"inf"', "Infinity")
            open(p, "w").write(text)
        c.add(f"config.json: settings.{field} = {bad}", True,
              resume_setup(edit, "config.json", needle="max-items" if field == "maxItems" else None))
    for field in ["tasks", "simulator", "policy"]:
        def edit(p, field=field):
            c2 = json.loads(json.dumps(cfg))
            c2["inputs"][field] = "/nonexistent/" + field
            json.dump(c2, open(p, "w"))
        c.add(f"config.json: inputs.{field} missing on disk", True, resume_setup(edit, "config.json", needle="nonexistent"))

    # task files, read by eval
    def eval_setup(mutate, rel, needle, extra=()):
        def setup(d):
            c.copy(d, "tasks")
            c.copy(d, "pretrain/policy-sft.safetensors", "policy.safetensors")
            c.copy(d, "simulator/simulator.safetensors", "simulator.safetensors")
            mutate(os.path.join(d, rel))
            return [P, "eval", "--simulator", "simulator.safetensors", "--tasks", "tasks", "--split", "test",
                    "--policy", "p=policy.safetensors", "--beams", "1", "--baselines", "none", "--limit", "8",
                    "--threads", "1", "--out", "out", *extra], ["out"], needle
        return setup
    for name, defect, mutate in jsonl_task_cases("test.jsonl", os.path.join(c.demo, "tasks/test.jsonl"), rng):
        c.add(name, defect, eval_setup(mutate, "tasks/test.jsonl", "test.jsonl"))
    for name, defect, mutate in catalog_cases(os.path.join(c.demo, "tasks/catalog.json"), rng):
        # a catalogue that is valid by itself but lacks items is reported at the task naming one
        lacking = "one item fewer" in name or "changed byte" in name
        c.add(name, defect, eval_setup(mutate, "tasks/catalog.json", None if lacking else "catalog.json"))
    for name, defect, mutate in world_cases(os.path.join(world_dir, "world.json"), rng):
        def setup(d, mutate=mutate):
            shutil.copytree(world_dir, os.path.join(d, "world"))
            argv, outs, _ = eval_setup(lambda p: None, "tasks/test.jsonl", "")(d)
            mutate(os.path.join(d, "world/world.json"))
            return argv + ["--world", "world"], outs, "world.json"
        c.add(name, defect, setup)

    # interaction logs, read by data tasks
    inter, item = os.path.join(world_dir, "synthetic.inter"), os.path.join(world_dir, "synthetic.item")
    for kind, path in [("synthetic.inter", inter), ("synthetic.item", item)]:
        for name, defect, mutate in recbole_cases(kind, path, rng):
            if "rating" in name or (kind == "synthetic.item" and ("header only" in name or "truncated" in name)):
                defect = False  # ratings are not read; titles and genres are optional per item
            def setup(d, mutate=mutate, kind=kind):
                shutil.copy(inter, os.path.join(d, "synthetic.inter"))
                shutil.copy(item, os.path.join(d, "synthetic.item"))
                mutate(os.path.join(d, kind))
                return [P, "data", "tasks", "--inter", "synthetic.inter", "--item", "synthetic.item", "--out", "tasks",
                        "--tasks-per-user", "1", "--evaluation-tasks-per-user", "1"], ["tasks"], kind
            c.add(name, defect, setup)

    # flags: every subcommand, values out of range
    def flag_case(sub, flag, value, needle=None, copy=(), base=()):
        def setup(d):
            for rel, to in copy:
                c.copy(d, rel, to)
            argv = [P, *sub.split(), *base, flag, value] if value is not None else [P, *sub.split(), *base, flag]
            return argv, ["out", "run"], needle or flag.lstrip("-")
        c.add(f"{sub} {flag} {value!r}", True, setup)
    models = (("pretrain/policy-sft.safetensors", "policy.safetensors"), ("simulator/simulator.safetensors", "simulator.safetensors"),
              ("tasks", "tasks"))
    train_base = ("--run", "run", "--tasks", "tasks", "--simulator", "simulator.safetensors", "--policy", "policy.safetensors",
                  "--threads", "1")
    for flag, values in {
        "--lr": ["0", "-1", "inf", "nan", "1e40"], "--kl": ["nan", "-1", "inf"], "--temperature": ["0", "-1", "inf", "nan"],
        "--top-k": ["-1"], "--top-p": ["0", "1.5", "nan"], "--weights": ["1,2", "a,b,c", "nan,1,1", "inf,0,0", "-1,0,0"],
        "--prompts-per-step": ["0", "-2", "1000000000000"], "--rollouts": ["0", "100000000"], "--max-items": ["0", "1000"],
        "--gamma": ["nan", "2", "-0.5"], "--steps": ["0", "-1"], "--epochs": ["0", "-1"], "--centering-warmup": ["-1"],
        "--micro-batch": ["0", "-1"], "--threads": ["1025", "99999999999", "-3"], "--evaluate-every": ["-1"],
        "--checkpoint-every": ["0", "-1"], "--time-limit": ["-1", "nan", "0"], "--seed": ["-1", "x"],
        "--algo": ["bogus"], "--centering": ["bogus"], "--preset": ["bogus"], "--interest": ["bogus"],
        "--rewards": ["bogus", "world"],  # world without --world
    }.items():
        for v in values:
            flag_case("train", flag, v, needle=None, copy=models, base=train_base)
    eval_base = ("--simulator", "simulator.safetensors", "--tasks", "tasks", "--policy", "p=policy.safetensors", "--out", "out",
                 "--threads", "1")
    for flag, values in {"--beams": ["0", "-1", "1000000000", "a", "1,,2"], "--max-items": ["0", "100000"],
                         "--threads": ["1025", "-3"], "--baselines": ["bogus"], "--split": ["bogus"], "--limit": ["-1"],
                         "--evaluator": ["x=/nonexistent", "=simulator.safetensors", "novalue"],
                         "--policy": ["=policy.safetensors", "p=", "p=/nonexistent"]}.items():
        for v in values:
            flag_case("eval", flag, v, copy=models, base=eval_base, needle="nonexistent" if "nonexistent" in v else None)
    gen_base = ("--policy", "policy.safetensors", "--simulator", "simulator.safetensors")
    for flag, values in {"--beams": ["0", "-1", "1000000"], "--max-items": ["0", "100000"], "--target": ["no-such-item", ""],
                         "--history": ["", "1,,2", "no-such-item"], "--path": ["no-such-item", ""],
                         "--history-length": ["0", "-1"]}.items():
        for v in values:
            b = gen_base + (() if flag == "--target" else ("--target", target)) + (() if flag == "--history" else ("--history", hist))
            flag_case("generate", flag, v, copy=models, base=b)
    batch_base = ("--policy", "policy.safetensors", "--simulator", "simulator.safetensors", "--tasks", "tasks",
                  "--out", "out", "--threads", "1")
    for flag, values in {"--beams": ["0", "2000"], "--limit": ["-1"], "--split": ["bogus"], "--max-items": ["0", "60"],
                         "--target": [target], "--history": [hist], "--datamaps": ["x"]}.items():
        for v in values:
            flag_case("generate", flag, v, copy=models, base=batch_base,
                      needle={"--split": "bogus", "--target": "target", "--history": "history", "--datamaps": "split-file"}.get(flag))
    pre_base = ("--tasks", "tasks", "--out", "out", "--threads", "1")
    for flag, values in {"--epochs": ["0", "-1"], "--batch-size": ["0", "1000000000000"], "--lr": ["nan", "inf", "-1", "0"],
                         "--dropout": ["-0.1", "1", "nan"], "--weight-decay": ["nan", "-1"], "--tokenizer": ["bogus"],
                         "--select": ["bogus"], "--evaluate-every": ["-1"], "--threads": ["1025"]}.items():
        for v in values:
            flag_case("pretrain", flag, v, copy=models, base=pre_base)
    sim_base = ("--inter", "synthetic.inter", "--out", "out", "--threads", "1", "--epochs", "1")
    wcopy = ()
    for flag, values in {"--hidden": ["0", "1000000000"], "--heads": ["0", "3", "-1"], "--layers": ["0", "-1", "100000"],
                         "--max-length": ["0", "1", "100000000"], "--dropout": ["1.5", "nan", "-1"], "--batch-size": ["0"],
                         "--lr": ["nan", "0", "inf"], "--architecture": ["bogus"], "--epochs": ["0"], "--patience": ["-1"],
                         "--loss": ["bogus"], "--inner": ["0"], "--embedding": ["0"], "--time-order": ["bogus"]}.items():
        for v in values:
            def setup(d, flag=flag, v=v):
                shutil.copy(inter, os.path.join(d, "synthetic.inter"))
                return [P, "simulator", "train", *sim_base, flag, v], ["out"], flag.lstrip("-")
            c.add(f"simulator train {flag} {v!r}", True, setup)
    for flag, values in {"--tasks-per-user": ["0", "-1"], "--evaluation-tasks-per-user": ["-1"], "--max-path-length": ["0", "-1"],
                         "--path-lengths": ["geometric:2", "geometric:nan", "geometric:0", "foo", "geometric:"]}.items():
        for v in values:
            def setup(d, flag=flag, v=v):
                shutil.copy(inter, os.path.join(d, "synthetic.inter"))
                return [P, "data", "tasks", "--inter", "synthetic.inter", "--out", "tasks", flag, v], ["tasks"], flag.lstrip("-")
            c.add(f"data tasks {flag} {v!r}", True, setup)
    for flag, values in {"--users": ["0", "-1", "1000000000"], "--items": ["0", "5", "1000000000"]}.items():
        for v in values:
            def setup(d, flag=flag, v=v):
                return [P, "data", "synth", "--out", "out", flag, v], ["out"], flag.lstrip("-")
            c.add(f"data synth {flag} {v!r}", True, setup)
    # the environment: a precision the kernels do not know (they would read it as fp32) is refused first
    for value in ["bf17", "", "BF16"]:
        def setup(d, value=value):
            c.copy(d, "tasks")
            return ["env", f"PRORL_PRECISION={value}", P, "pretrain", *pre_base, "--epochs", "1"], ["out"], "PRORL_PRECISION"
        c.add(f"environment PRORL_PRECISION={value!r}", True, setup)
    for argv, needle in [(["report", "--run", "x=/nonexistent", "--out", "out"], "nonexistent"),
                         (["report", "--run", "=/tmp", "--out", "out"], "run"),
                         (["bench", "bogus-workload"], "bogus"), (["info", "--threads", "-3"], "threads")]:
        def setup(d, argv=argv, needle=needle):
            return [P, *argv], ["out"], needle
        c.add(" ".join(argv), True, setup)


def run_case(corpus, index, name, defect, setup, verbose):
    d = os.path.join(corpus.scratch, f"case-{index:04d}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    argv, outputs, needle = setup(d)
    before = set(os.listdir(d))
    env = dict(os.environ, PRORL_THREADS="1")
    try:
        p = subprocess.run(argv, cwd=d, capture_output=True, text=True, errors="replace", timeout=60, env=env)
    except subprocess.TimeoutExpired:
        return "hang", "no exit within 60 s"
    rc, err = p.returncode, p.stderr.strip()
    first = err.splitlines()[0] if err else ""
    if rc < 0 or rc >= 128:
        return "crash", f"signal/exit {rc}: {err[-300:]}"
    after = set(os.listdir(d))
    leftovers = [f for f in after - before if f in outputs or ".tmp-" in f] if rc != 0 else []
    leftovers += [f"{f}/{g}" for f in after & before if os.path.isdir(os.path.join(d, f))
                  for g in os.listdir(os.path.join(d, f)) if ".tmp-" in g]
    if rc == 0:
        if defect:
            return "accepted", "exit 0 for a defective input"
        return "ok", ""
    if not first.startswith("Error:"):
        return "message", f"stderr does not start with 'Error:': {first[:200]!r}"
    norm = lambda t: t.lower().replace("-", "").replace("_", "")
    if needle and norm(needle) not in norm(first):
        return "message", f"first line does not name {needle!r}: {first[:240]!r}"
    if leftovers:
        return "leftover", f"left behind: {sorted(leftovers)}"
    return "ok", ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prorl")
    ap.add_argument("demo")
    ap.add_argument("scratch")
    ap.add_argument("--world", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Data/synthetic"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    prorl = os.path.abspath(a.prorl)
    os.makedirs(a.scratch, exist_ok=True)
    corpus = Corpus(prorl, os.path.abspath(a.demo), os.path.abspath(a.scratch), random.Random(a.seed))
    build(corpus, os.path.abspath(a.world))
    cases = [(i, *c) for i, c in enumerate(corpus.cases) if a.only in c[0]]
    if a.list:
        for i, name, defect, _ in cases:
            print(f"{i:4d} {'defect' if defect else 'no-defect' if defect is False else 'either'}  {name}")
        return 0
    counts = {}
    failures = 0
    for i, name, defect, setup in cases:
        outcome, detail = run_case(corpus, i, name, defect, setup, a.verbose)
        if outcome == "ok":
            shutil.rmtree(os.path.join(corpus.scratch, f"case-{i:04d}"), ignore_errors=True)
        else:
            failures += 1
            print(f"FAIL {i:4d} [{outcome}] {name}: {detail}", flush=True)
        counts[outcome] = counts.get(outcome, 0) + 1
    defects = sum(1 for c in cases if c[2])
    print(f"fuzz corpus: {len(cases)} cases ({defects} with a detectable defect); "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
