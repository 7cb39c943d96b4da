"""Python bindings of the ProRL engine's C API (``prorl.h``, ``libprorl.so``).

``Model`` loads a run (or a policy and a simulator) and generates and
scores guidance paths; ``Trainer`` continues training a run. Item ids are
the raw ids of the data (strings). Every failed call raises ``ProRLError``
with the library's status and message.

The library is found through ``PRORL_LIBRARY`` (a path to libprorl.so),
else by name (``make install`` puts it where the linker looks).
"""
import ctypes
import ctypes.util
import os
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

__all__ = ["ProRLError", "Model", "Path", "PathScore", "Trainer", "library_version"]

ABI_VERSION = 1
_DECODE_BEAM, _DECODE_SAMPLE = 0, 1
_OK, _BUFFER_TOO_SMALL, _STOPPED = 0, 6, 10


class ProRLError(Exception):
    """A failed call: ``status`` is the status name (``"PRORL_ERR_..."``),
    ``code`` its number, ``message`` the library's explanation."""

    def __init__(self, code: int, status: str, message: str):
        super().__init__(f"{status}: {message}" if message else status)
        self.code, self.status, self.message = code, status, message


# ------------------------------------------------------------------ structs (prorl.h)

class _ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_threads", ctypes.c_int)]


class _GenerateParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("decoding", ctypes.c_int), ("n_paths", ctypes.c_int),
                ("max_items", ctypes.c_int), ("constrained", ctypes.c_int), ("temperature", ctypes.c_float),
                ("top_k", ctypes.c_int), ("top_p", ctypes.c_float), ("seed", ctypes.c_uint64), ("no_repeats", ctypes.c_int)]


class _StepScore(ctypes.Structure):
    _fields_ = [("ctr", ctypes.c_double), ("log_p_target", ctypes.c_double), ("rank_target", ctypes.c_int64),
                ("policy_log_prob", ctypes.c_double)]


class _PathScore(ctypes.Structure):
    _fields_ = [("ioi", ctypes.c_double), ("ior", ctypes.c_double), ("mean_ctr", ctypes.c_double)]


class _TrainStats(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("step", ctypes.c_int64), ("length", ctypes.c_double),
                ("path_reward", ctypes.c_double), ("path_ioi", ctypes.c_double), ("path_ctr", ctypes.c_double),
                ("kl", ctypes.c_double), ("seconds", ctypes.c_double)]


_PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(_TrainStats), ctypes.c_void_p)


def _stats(s: _TrainStats) -> dict:
    return {name: getattr(s, name) for name, _ in _TrainStats._fields_ if name != "struct_size"}


# ------------------------------------------------------------------ the library

_lib = None


def _library():
    global _lib
    if _lib is not None:
        return _lib
    path = os.environ.get("PRORL_LIBRARY") or ctypes.util.find_library("prorl")
    if not path:
        raise ProRLError(-1, "PRORL_LIBRARY_NOT_FOUND", "libprorl.so not found: run `make lib` and set "
                         "PRORL_LIBRARY=<repo>/build/lib/libprorl.so, or `make install`")
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ProRLError(-1, "PRORL_LIBRARY_NOT_FOUND", f"{path}: {e}") from None
    P, S, I, Z = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    PS, PZ = ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)
    sig = {
        "prorl_version": (S, []), "prorl_abi_version": (I, []), "prorl_status_name": (S, [I]), "prorl_last_error": (S, []),
        "prorl_model_default_params": (None, [ctypes.POINTER(_ModelParams)]),
        "prorl_model_load_run": (I, [S, ctypes.POINTER(_ModelParams), ctypes.POINTER(P)]),
        "prorl_model_load": (I, [S, S, S, ctypes.POINTER(_ModelParams), ctypes.POINTER(P)]),
        "prorl_model_free": (None, [P]), "prorl_model_set_threads": (I, [P, I]),
        "prorl_model_item_count": (I, [P, PZ]), "prorl_model_item_id": (I, [P, Z, PS]),
        "prorl_model_item_title": (I, [P, S, PS]),
        "prorl_generate_default_params": (None, [ctypes.POINTER(_GenerateParams)]),
        "prorl_generate": (I, [P, PS, Z, S, ctypes.POINTER(_GenerateParams), PS, Z, PZ, ctypes.POINTER(ctypes.c_float), PZ, PZ]),
        "prorl_score_path": (I, [P, PS, Z, S, PS, Z, ctypes.POINTER(_StepScore), Z, ctypes.POINTER(_PathScore)]),
        "prorl_trainer_open": (I, [S, ctypes.POINTER(_ModelParams), ctypes.POINTER(P)]),
        "prorl_trainer_step": (I, [P, I, ctypes.POINTER(_TrainStats)]),
        "prorl_trainer_progress": (I, [P, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64)]),
        "prorl_trainer_save": (I, [P]), "prorl_trainer_free": (None, [P]),
        "prorl_trainer_set_progress": (I, [P, _PROGRESS_FN, P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    if lib.prorl_abi_version() != ABI_VERSION:
        raise ProRLError(-1, "PRORL_ABI_MISMATCH", f"{path} has ABI {lib.prorl_abi_version()}, these bindings {ABI_VERSION}")
    _lib = lib
    return lib


def _check(code: int) -> None:
    if code != _OK:
        lib = _library()
        raise ProRLError(code, lib.prorl_status_name(code).decode(), (lib.prorl_last_error() or b"").decode())


def _ids(items: Sequence[str], what: str):
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{what}: expected a sequence of raw item ids, not one string")
    encoded = [str(i).encode() for i in items]
    return (ctypes.c_char_p * max(len(encoded), 1))(*encoded), len(encoded)


def _params(threads: int) -> _ModelParams:
    p = _ModelParams()
    _library().prorl_model_default_params(ctypes.byref(p))
    p.n_threads = int(threads)
    return p


def library_version() -> str:
    """The engine's version string."""
    return _library().prorl_version().decode()


# ------------------------------------------------------------------ models

class Path(NamedTuple):
    """A generated path: raw item ids and the policy's score (beam: log-prob
    per token; sampling: log-prob)."""
    items: List[str]
    score: float


class PathScore(NamedTuple):
    """The simulator's view of a path. Per-step arrays have one entry per
    step, step 0 being the history alone (its ``ctr`` and
    ``policy_log_prob`` are NaN)."""
    ioi: float
    ior: float
    ctr: float
    step_ctr: np.ndarray
    log_p_target: np.ndarray
    rank_target: np.ndarray
    policy_log_prob: np.ndarray


class _Handle:
    """An opaque library handle, freed by ``close()``, a ``with`` block or
    garbage collection. Subclasses name their free function in ``_free``."""
    _free = ""
    _what = "handle"

    def __init__(self, handle):
        self._handle = handle

    def _h(self):
        if self._handle is None:
            raise ProRLError(1, "PRORL_ERR_INVALID_ARGUMENT", f"the {self._what} is closed")
        return self._handle

    def close(self) -> None:
        if self._handle is not None:
            getattr(_library(), self._free)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Model(_Handle):
    """A policy, its simulator and the item catalogue. Use ``load_run`` or
    ``load``; close with ``close()`` or a ``with`` block."""
    _free, _what = "prorl_model_free", "model"

    @classmethod
    def load_run(cls, run_dir: str, threads: int = 0) -> "Model":
        """An RL run directory: its best policy and the simulator and
        catalogue its config names."""
        h = ctypes.c_void_p()
        _check(_library().prorl_model_load_run(os.fsencode(run_dir), ctypes.byref(_params(threads)), ctypes.byref(h)))
        return cls(h)

    @classmethod
    def load(cls, policy: str, simulator: str, catalog: Optional[str] = None, threads: int = 0) -> "Model":
        """A policy and a simulator checkpoint (and a catalog.json for titles)."""
        h = ctypes.c_void_p()
        _check(_library().prorl_model_load(os.fsencode(policy), os.fsencode(simulator),
                                           os.fsencode(catalog) if catalog else None, ctypes.byref(_params(threads)),
                                           ctypes.byref(h)))
        return cls(h)

    def set_threads(self, threads: int) -> None:
        _check(_library().prorl_model_set_threads(self._h(), int(threads)))

    def __len__(self) -> int:
        n = ctypes.c_size_t()
        _check(_library().prorl_model_item_count(self._h(), ctypes.byref(n)))
        return n.value

    @property
    def items(self) -> List[str]:
        """Every raw item id the model knows."""
        lib, out = _library(), ctypes.c_char_p()
        ids = []
        for i in range(len(self)):
            _check(lib.prorl_model_item_id(self._h(), i, ctypes.byref(out)))
            ids.append(out.value.decode())
        return ids

    def title(self, item: str) -> str:
        """An item's title (its raw id when the catalogue has none)."""
        out = ctypes.c_char_p()
        _check(_library().prorl_model_item_title(self._h(), str(item).encode(), ctypes.byref(out)))
        return out.value.decode()

    def generate(self, history: Sequence[str], target: str, beams: int = 3, sample: Optional[int] = None,
                 max_items: int = 10, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 7,
                 allow_repeats: bool = False) -> List[Path]:
        """Paths from ``history`` (raw ids, oldest first) toward ``target``:
        the ``beams`` best by beam search, or ``sample`` independent samples
        at ``temperature`` (top-k, top-p). Best first for beams."""
        lib = _library()
        p = _GenerateParams()
        lib.prorl_generate_default_params(ctypes.byref(p))
        p.decoding = _DECODE_BEAM if sample is None else _DECODE_SAMPLE
        p.n_paths = int(beams if sample is None else sample)
        p.max_items, p.temperature, p.top_k, p.top_p, p.seed = int(max_items), float(temperature), int(top_k), float(top_p), int(seed)
        p.no_repeats = 0 if allow_repeats else 1
        hist, nh = _ids(history, "history")
        n = max(p.n_paths, 1)
        lengths, scores = (ctypes.c_size_t * n)(), (ctypes.c_float * n)()
        n_paths, needed = ctypes.c_size_t(), ctypes.c_size_t()
        capacity = n * max(p.max_items, 1)
        while True:
            items = (ctypes.c_char_p * max(capacity, 1))()
            code = lib.prorl_generate(self._h(), hist, nh, str(target).encode(), ctypes.byref(p), items, capacity, lengths,
                                      scores, ctypes.byref(n_paths), ctypes.byref(needed))
            if code == _BUFFER_TOO_SMALL and needed.value > capacity:
                capacity = needed.value
                continue
            _check(code)
            break
        out, at = [], 0
        for k in range(n_paths.value):
            ids = [items[at + j].decode() if items[at + j] is not None else None for j in range(lengths[k])]
            out.append(Path(ids, float(scores[k])))
            at += lengths[k]
        return out

    def score_path(self, history: Sequence[str], target: str, path: Sequence[str]) -> PathScore:
        """The simulator's opinion of ``path`` after ``history`` toward
        ``target``: IoI, IoR, mean CTR and each step's values."""
        hist, nh = _ids(history, "history")
        items, n = _ids(path, "path")
        steps, total = (_StepScore * (n + 1))(), _PathScore()
        _check(_library().prorl_score_path(self._h(), hist, nh, str(target).encode(), items, n, steps, n + 1,
                                           ctypes.byref(total)))
        return PathScore(total.ioi, total.ior, total.mean_ctr,
                         np.array([s.ctr for s in steps]), np.array([s.log_p_target for s in steps]),
                         np.array([s.rank_target for s in steps], dtype=np.int64),
                         np.array([s.policy_log_prob for s in steps]))


# ------------------------------------------------------------------ training

class Trainer(_Handle):
    """An RL run opened to continue training (one trainer per run)."""
    _free, _what = "prorl_trainer_free", "trainer"

    @classmethod
    def open(cls, run_dir: str, threads: int = 0) -> "Trainer":
        h = ctypes.c_void_p()
        _check(_library().prorl_trainer_open(os.fsencode(run_dir), ctypes.byref(_params(threads)), ctypes.byref(h)))
        return cls(h)

    def step(self, n: int = 1, progress=None) -> dict:
        """Runs ``n`` more RL steps (checkpointing as the run's settings
        say) and returns the last step's statistics. ``progress(stats)``, if
        given, is called after each step; a true result stops after that
        step with the run checkpointed there (``stats["stopped"]`` is then
        True)."""
        lib = _library()
        s = _TrainStats()
        s.struct_size = ctypes.sizeof(_TrainStats)
        callback = None
        if progress is not None:
            def call(stats, _data):
                try:
                    return 1 if progress(_stats(stats.contents)) else 0
                except Exception:  # never unwind through C: stop cleanly instead
                    return 1
            callback = _PROGRESS_FN(call)
            _check(lib.prorl_trainer_set_progress(self._h(), callback, None))
        try:
            code = lib.prorl_trainer_step(self._h(), int(n), ctypes.byref(s))
        finally:
            if callback is not None:
                lib.prorl_trainer_set_progress(self._h(), _PROGRESS_FN(), None)
        if code != _STOPPED:
            _check(code)
        out = _stats(s)
        out["stopped"] = code == _STOPPED
        return out

    @property
    def progress(self):
        """(steps done, the run's configured total)."""
        done, total = ctypes.c_int64(), ctypes.c_int64()
        _check(_library().prorl_trainer_progress(self._h(), ctypes.byref(done), ctypes.byref(total)))
        return done.value, total.value

    def save(self) -> None:
        _check(_library().prorl_trainer_save(self._h()))
