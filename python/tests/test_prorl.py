"""Tests of the Python bindings against a real run.

    PRORL_LIBRARY=build/lib/libprorl.so PRORL_TEST_RUN=build/capi-run/demo/prorl \
        python -m unittest discover -s python/tests -v

PRORL_TEST_RUN is a finished RL run (`prorl demo --quick` makes one); the
training tests work on a copy of it.
"""
import json
import math
import os
import shutil
import struct
import tempfile
import unittest

import numpy as np

import prorl

RUN = os.environ.get("PRORL_TEST_RUN", "")


def first_task(run):
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(config["inputs"]["tasks"], "test.jsonl")) as f:
        task = json.loads(f.readline())
    return task["inters"], task["proc_path"][-1]


def setUpModule():
    if not os.path.isdir(RUN):
        raise RuntimeError(f"PRORL_TEST_RUN={RUN!r} is not an RL run directory (`prorl demo --quick` makes one)")


class ModelTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = prorl.Model.load_run(RUN, threads=1)
        cls.history, cls.target = first_task(RUN)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_catalogue(self):
        items = self.model.items
        self.assertEqual(len(items), len(self.model))
        self.assertIn(self.target, items)
        self.assertIsInstance(self.model.title(self.target), str)
        self.assertTrue(prorl.library_version())

    def test_beams_best_first_no_repeats(self):
        paths = self.model.generate(self.history, self.target, beams=3, max_items=5)
        self.assertEqual(len(paths), 3)
        scores = [p.score for p in paths]
        self.assertEqual(scores, sorted(scores, reverse=True), "beams best first")
        known = set(self.model.items)
        for p in paths:
            self.assertTrue(1 <= len(p.items) <= 5)
            self.assertTrue(set(p.items) <= known)
            self.assertEqual(len(set(p.items)), len(p.items), "no item twice in a path by default")

    def test_samples_are_seeded(self):
        a = self.model.generate(self.history, self.target, sample=6, temperature=1.0, seed=3)
        b = self.model.generate(self.history, self.target, sample=6, temperature=1.0, seed=3)
        self.assertEqual(len(a), 6)
        self.assertEqual(a, b, "the same seed draws the same samples")

    def test_score_path(self):
        path = self.model.generate(self.history, self.target, beams=1)[0].items
        s = self.model.score_path(self.history, self.target, path)
        self.assertEqual(len(s.log_p_target), len(path) + 1)
        self.assertIsInstance(s.log_p_target, np.ndarray)
        self.assertTrue(math.isnan(s.step_ctr[0]) and math.isnan(s.policy_log_prob[0]))
        self.assertAlmostEqual(s.ioi, s.log_p_target[-1] - s.log_p_target[0], places=5)
        self.assertAlmostEqual(s.ior, float(s.rank_target[0] - s.rank_target[-1]), places=5)
        self.assertAlmostEqual(s.ctr, float(np.mean(s.step_ctr[1:])), places=5)

    def test_errors_carry_the_status(self):
        with self.assertRaises(prorl.ProRLError) as e:
            self.model.generate(self.history, "no-such-item")
        self.assertEqual(e.exception.status, "PRORL_ERR_UNKNOWN_ITEM")
        self.assertIn("no-such-item", e.exception.message)
        with self.assertRaises(prorl.ProRLError) as e:
            self.model.generate(self.history, self.target, beams=0)
        self.assertEqual(e.exception.status, "PRORL_ERR_INVALID_ARGUMENT")
        with self.assertRaises(prorl.ProRLError) as e:
            prorl.Model.load_run("/nonexistent/run")
        self.assertEqual(e.exception.status, "PRORL_ERR_NOT_FOUND")
        with self.assertRaises(TypeError):
            self.model.generate("146", self.target)


class TrainerTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="prorl-py-")
        self.run = os.path.join(self.dir, "run")
        shutil.copytree(RUN, self.run)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_step_and_one_trainer_per_run(self):
        with prorl.Trainer.open(self.run, threads=1) as t:
            done, total = t.progress
            stats = t.step(1)
            self.assertEqual(stats["step"], done + 1)
            self.assertGreater(stats["length"], 0)
            self.assertEqual(t.progress[0], done + 1)
            with self.assertRaises(prorl.ProRLError) as e:
                prorl.Trainer.open(self.run)
            self.assertEqual(e.exception.status, "PRORL_ERR_BUSY")
            t.save()
        # closed: the run opens again, at the saved step
        with prorl.Trainer.open(self.run, threads=1) as t:
            self.assertEqual(t.progress[0], done + 1)


class StopAndResumeTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="prorl-py-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def copy(self, name):
        d = os.path.join(self.dir, name)
        shutil.copytree(RUN, d)
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        config["settings"]["evaluateEvery"] = 0
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        return d

    def test_a_callback_stops_and_a_resume_continues_exactly(self):
        straight, stopped = self.copy("straight"), self.copy("stopped")
        with prorl.Trainer.open(straight, threads=1) as t:
            start = t.progress[0]
            t.step(4)
        seen = []
        with prorl.Trainer.open(stopped, threads=1) as t:
            stats = t.step(4, progress=lambda s: seen.append(s["step"]) or len(seen) == 2)
            self.assertTrue(stats["stopped"])
            self.assertEqual(seen, [start + 1, start + 2])
        # a new trainer resumes from the checkpoint the stop wrote
        with prorl.Trainer.open(stopped, threads=1) as t:
            self.assertEqual(t.progress[0], start + 2)
            self.assertFalse(t.step(2)["stopped"])
        def content(run, name):
            """The tensors' bytes and the metadata, but the configured total of steps
            (a run's total grows with the steps asked for, which differ here)."""
            with open(os.path.join(run, name), "rb") as f:
                raw = f.read()
            n = struct.unpack("<Q", raw[:8])[0]
            header = json.loads(raw[8:8 + n])
            meta = header.pop("__metadata__", {})
            if "settings" in meta:
                settings = json.loads(meta["settings"])
                settings.pop("steps")
                meta["settings"] = settings
            return header, meta, raw[8 + n:]
        for name in ("policy-last.safetensors", "state.safetensors"):
            self.assertEqual(content(straight, name), content(stopped, name), f"{name}: stopped and resumed equals uninterrupted")


if __name__ == "__main__":
    unittest.main()
