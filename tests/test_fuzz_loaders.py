"""Fuzzed model files: ``load_model`` on damaged ``.keras`` and ``.h5`` files either loads a model that
predicts (like the original when its weights and config are the original's) or raises
``ModelFileError`` / ``UnsupportedKerasFeature``: never another exception, never a hang, never a crash
of the process, never an absurd allocation from a size read out of the file.

Each case is a seeded hypothesis example that damages one of the committed fixtures (GRU, LSTM and
Bidirectional models, Sequential and Functional, from Keras 3 and tf_keras): truncation, flipped
bytes (in the file, or in the HDF5 weights inside a ``.keras`` zip with the zip's CRC made valid again),
zip members removed or renamed, config JSON fields deleted, retyped or set to absurd values (negative
units, huge shapes), weight datasets replaced by ones of the wrong shape or dtype, or holding NaN/inf.
Keras 2 SavedModel directories (tests/fixtures/saved_model) are damaged file by file: any of their files
truncated, flipped or removed, the keras_metadata.pb config mutated as above, or a checkpoint index entry
given an absurd offset, size, shape, dtype or shard (with the index's CRCs made valid again).

The loads run in a separate worker process (``python tests/test_fuzz_loaders.py --worker``) under an
address-space limit, each with a timeout: a hang, a crash of the process (libhdf5 aborting) or a
MemoryError counts as a failure. 500 cases run in CI; the documented slow run is

    FASTGRU_FUZZ_CASES=20000 pytest tests/test_fuzz_loaders.py -q -s

(it prints the tally of outcomes; docs/reliability.md records the last one). FASTGRU_FUZZ_KINDS (e.g.
flip,flip_head) and FASTGRU_FUZZ_FIXTURES (e.g. .h5) focus a run on some damage kinds or file types.
"""

from __future__ import annotations

import collections
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

FILES = Path(__file__).parent / "fixtures" / "files"
SAVED = Path(__file__).parent / "fixtures" / "saved_model"
#: (file, npz with x and Keras's y); small files so that a case takes milliseconds
FIXTURES = [
    ("k3_gru_default.keras", "k3_gru_default"),
    ("k3_functional.keras", "k3_functional"),
    ("k3_gru_options.keras", "k3_gru_options"),
    ("k3_gru_options.h5", "k3_gru_options"),
    ("k2_masking.h5", "k2_masking"),
    ("k2_functional.h5", "k2_functional"),
    ("k3_lstm_bidirectional.keras", "k3_lstm_bidirectional"),  # LSTM, Bidirectional (forward/backward groups)
    ("k2_lstm_bidirectional.h5", "k2_lstm_bidirectional"),
    ("sm_gru", "sm_gru"),  # Keras 2 SavedModel directories (names without a suffix: folders under SAVED)
    ("sm_nested", "sm_nested"),
    ("sm_lstm_bidirectional", "sm_lstm_bidirectional"),
]


def _is_dir_fixture(name: str) -> bool:
    return name.startswith("sm_")


def _fixture_path(name: str) -> Path:
    return SAVED / name if _is_dir_fixture(name) else FILES / name


def _npz_path(npz: str) -> Path:
    return SAVED / f"{npz}.npz" if _is_dir_fixture(npz) else FILES / f"{npz}.npz"
CASES = int(os.environ.get("FASTGRU_FUZZ_CASES", "500"))
#: optional focus for a long run, e.g. FASTGRU_FUZZ_KINDS=flip FASTGRU_FUZZ_FIXTURES=.h5
ONLY_KINDS = [k for k in os.environ.get("FASTGRU_FUZZ_KINDS", "").split(",") if k]
ONLY_FIXTURES = [k for k in os.environ.get("FASTGRU_FUZZ_FIXTURES", "").split(",") if k]
CASE_TIMEOUT_S = float(os.environ.get("FASTGRU_FUZZ_TIMEOUT", "20"))
#: how much more address space than after start-up a worker may use (an absurd allocation fails)
WORKER_EXTRA_BYTES = 1 << 30


# ---------------------------------------------------------------------------------------------
# mutations (run in the test process; they need h5py, json and zipfile only)
# ---------------------------------------------------------------------------------------------
ABSURD_VALUES = [-1, 0, -(10**9), 10**9, 10**15, 2**31, 2**63, 1e300, -1e300, 0.5, "64", "", "relu", None, True,
                 False, [], {}, [None, 10**9, 10**9], [None, -5, 3], [10**6] * 6, {"class_name": "X"},
                 {"config": None}, [[[]]], "𝔘nicode\x00"]


def _json_paths(obj, prefix=()):
    """Every (path, value) in a JSON document (paths are tuples of keys/indices)."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, prefix + (i,))


def _set_path(obj, path, value=None, delete=False):
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value


def mutate_json(text: str, draw) -> str:
    config = json.loads(text)
    paths = [p for p, _ in _json_paths(config) if p]
    # bias toward the interesting keys (units, shapes, names, class names, weights-related)
    hot = [p for p in paths if isinstance(p[-1], str) and p[-1] in (
        "units", "batch_shape", "batch_input_shape", "input_shape", "class_name", "layers", "config", "name",
        "reset_after", "use_bias", "return_sequences", "input_dim", "output_dim", "activation", "dtype",
        "inbound_nodes", "keras_history", "go_backwards", "mask_value", "rate", "build_config")]
    pool = hot if hot and draw("hot", 0, 3) else paths
    path = pool[draw("path", 0, len(pool) - 1)]
    action = draw("json_action", 0, 2)
    if action == 0:
        _set_path(config, path, delete=True)
    else:
        _set_path(config, path, ABSURD_VALUES[draw("value", 0, len(ABSURD_VALUES) - 1)])
    return json.dumps(config)


def _replace_dataset(f, draw):
    import h5py

    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    if not names:
        return
    name = names[draw("dataset", 0, len(names) - 1)]
    old = f[name][()]
    kind = draw("weight_kind", 0, 8)
    if kind == 0:
        new = np.zeros(tuple(s + 1 for s in old.shape) or (2,), old.dtype)  # wrong shape
    elif kind == 1:
        new = old.reshape(-1)[:-1] if old.size > 1 else np.zeros((3, 3), old.dtype)
    elif kind == 2:
        new = old.astype(np.int32)
    elif kind == 3:
        new = np.array([b"text"] * max(old.size, 1)).reshape(old.shape or (1,))
    elif kind == 4:
        new = old.astype(np.float16)
    elif kind == 5:
        new = old.astype(np.complex64)
    elif kind == 6:
        new = old.astype(np.float32).copy()
        new.reshape(-1)[draw("pos", 0, max(new.size - 1, 0))] = np.nan
    elif kind == 7:
        new = old.astype(np.float32).copy()
        new.reshape(-1)[draw("pos", 0, max(new.size - 1, 0))] = np.inf
    else:
        new = np.float32(1.0)  # a scalar
    del f[name]
    f.create_dataset(name, data=new)


def mutate_h5_bytes(data: bytes, draw, attr_json: str | None) -> bytes:
    """Structural damage to an HDF5 file's content (as bytes): a weight dataset, an attribute, a group."""
    import h5py

    buf = io.BytesIO(data)
    with h5py.File(buf, "a") as f:
        action = draw("h5_action", 0, 3)
        if action == 0 or (attr_json is None and action == 1):
            _replace_dataset(f, draw)
        elif action == 1:
            f.attrs[attr_json] = mutate_json(f.attrs[attr_json] if isinstance(f.attrs[attr_json], str)
                                             else f.attrs[attr_json].decode(), draw)
        elif action == 2:
            groups = []
            f.visititems(lambda n, o: groups.append(n))
            victim = groups[draw("victim", 0, len(groups) - 1)]
            if draw("rename", 0, 1):
                f.move(victim, victim + "_x")
            else:
                del f[victim]
        else:  # attributes: delete or retype one
            holders = [f] + [f[n] for n in _all_names(f)]
            holder = holders[draw("holder", 0, len(holders) - 1)]
            keys = list(holder.attrs)
            if keys:
                key = keys[draw("attr", 0, len(keys) - 1)]
                if draw("attr_delete", 0, 1):
                    del holder.attrs[key]
                else:
                    holder.attrs[key] = [np.int64(-7), np.array([b"a", b"zz"]), np.float64(np.nan), "x",
                                         np.zeros((4, 4))][draw("attr_value", 0, 4)]
    return buf.getvalue()


def _all_names(f):
    names = []
    f.visititems(lambda n, o: names.append(n))
    return names


def flip_bytes(data: bytes, draw, start: int = 0) -> bytes:
    b = bytearray(data)
    for _ in range(draw("flips", 1, 8)):
        i = draw("offset", start, len(b) - 1)
        b[i] ^= draw("xor", 1, 255)
    return bytes(b)


def rezip(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.getvalue()


def _dir_files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def mutate_dir(files: dict, draw, workdir: Path) -> tuple[str, dict]:
    """(description, damaged {relative path: bytes}) for a SavedModel directory."""
    kinds = ["truncate", "flip", "flip_head", "remove", "json", "index_entry"]
    kinds = ([k for k in kinds if k in ONLY_KINDS] or kinds) if ONLY_KINDS else kinds
    kind = kinds[draw("kind", 0, len(kinds) - 1)]
    files = dict(files)
    names = sorted(files)
    victim = names[draw("victim", 0, len(names) - 1)]
    if kind == "truncate":
        files[victim] = files[victim][:draw("cut", 0, max(len(files[victim]) - 1, 0))]
    elif kind == "flip" and files[victim]:
        files[victim] = flip_bytes(files[victim], draw)
    elif kind == "flip_head" and files[victim]:
        files[victim] = flip_bytes(files[victim][:256], draw) + files[victim][256:]
    elif kind == "remove":
        del files[victim]
    elif kind in ("json", "index_entry"):
        # the writers of the hostile-directory tests
        from test_io_saved_model import edit_root_metadata, rewrite_index

        folder = workdir / "mutating"
        _write_dir(folder, files)
        if kind == "json":
            def edit(meta, node):
                meta["model_config"] = json.loads(mutate_json(json.dumps(meta["model_config"]), draw))

            edit_root_metadata(folder, edit)
        else:
            def edit(entries):
                keys = sorted(entries)
                entry = entries[keys[draw("entry", 0, len(keys) - 1)]]
                field = ["offset", "size", "shape", "dtype", "shard", "crc"][draw("entry_field", 0, 5)]
                entry[field] = [
                    [0, 1, 2**31, 2**62, -1, 10**12][draw("value", 0, 5)],
                    [0, 1, 3, 2**40, -1, 10**9][draw("value", 0, 5)],
                    [(), (0,), (10**6, 10**6), (3, 3), (2**40,), (1,) * 40][draw("value", 0, 5)],
                    [0, 2, 3, 7, 9, 19, 21, 99][draw("value", 0, 7)],
                    [0, 1, 5][draw("value", 0, 2)],
                    [0, 1, 0xFFFFFFFF][draw("value", 0, 2)],
                ][["offset", "size", "shape", "dtype", "shard", "crc"].index(field)]

            rewrite_index(folder / "variables" / "variables", edit)
        files = _dir_files(folder)
    return kind, files


def _write_dir(folder: Path, files: dict) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)


def mutate(filename: str, data: bytes, draw) -> tuple[str, bytes]:
    """(description of the damage, damaged bytes) for one fixture."""
    keras_zip = filename.endswith(".keras")
    kinds = ["truncate", "flip", "flip_head", "h5_struct"] + (["zip_member", "json", "inner_flip"] if keras_zip
                                                              else ["json"])
    kinds = ([k for k in kinds if k in ONLY_KINDS] or kinds) if ONLY_KINDS else kinds
    kind = kinds[draw("kind", 0, len(kinds) - 1)]
    if kind == "truncate":
        return kind, data[:draw("cut", 0, len(data) - 1)]
    if kind == "flip":
        return kind, flip_bytes(data, draw)
    if kind == "flip_head":  # the first KiB: superblock, root group, zip local header
        return kind, flip_bytes(data[:1024], draw) + data[1024:]
    if not keras_zip:
        attr = "model_config" if kind == "json" else None
        if kind == "json":
            import h5py

            buf = io.BytesIO(data)
            with h5py.File(buf, "a") as f:
                text = f.attrs["model_config"]
                f.attrs["model_config"] = mutate_json(text if isinstance(text, str) else text.decode(), draw)
            return kind, buf.getvalue()
        return kind, mutate_h5_bytes(data, draw, attr)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if kind == "zip_member":
        names = list(members)
        victim = names[draw("member", 0, len(names) - 1)]
        content = members.pop(victim)
        if draw("rename", 0, 1):
            members[["config.json.bak", "model.weights.npz", "x/" + victim, "weights.json"][draw("new", 0, 3)]] = content
    elif kind == "json":
        name = ["config.json", "metadata.json"][draw("which", 0, 3) // 3]  # mostly config.json
        members[name] = mutate_json(members[name].decode(), draw).encode()
    elif kind == "inner_flip":
        members["model.weights.h5"] = flip_bytes(members["model.weights.h5"], draw)
    else:
        members["model.weights.h5"] = mutate_h5_bytes(members["model.weights.h5"], draw, None)
    return kind, rezip(members)


# ---------------------------------------------------------------------------------------------
# the worker: loads one damaged file per request, in its own process
# ---------------------------------------------------------------------------------------------
def _limit_memory() -> None:
    """Cap the worker's address space (Linux; elsewhere the cases run without the cap)."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            vm_bytes = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = vm_bytes + WORKER_EXTRA_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass


def _same_model(a, b) -> bool:
    if [type(l).__name__ for l in a.layers] != [type(l).__name__ for l in b.layers]:
        return False
    for la, lb in zip(a.layers, b.layers):
        ca, cb = la.get_config(), lb.get_config()
        ca.pop("name", None), cb.pop("name", None)
        if ca != cb:
            return False
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(wa, wb))


def worker() -> None:  # pragma: no cover - runs in the child
    import warnings

    warnings.simplefilter("ignore")
    import fastgru as fg

    originals, expected = {}, {}
    for filename, npz in FIXTURES:
        with np.load(_npz_path(npz)) as f:
            expected[filename] = (f["x"], f["y"])
        originals[filename] = fg.load_model(_fixture_path(filename))
        originals[filename].predict(expected[filename][0])  # compile the kernels before the limit
    _limit_memory()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        filename, path = line.rstrip("\n").split("\t")
        out.write(json.dumps(_one_case(fg, originals[filename], expected[filename], path)) + "\n")
        out.flush()


def _one_case(fg, original, xy, path) -> dict:
    import traceback

    x, y = xy
    try:
        model = fg.load_model(path)
    except (fg.ModelFileError, fg.UnsupportedKerasFeature) as exc:
        return {"outcome": f"refused: {type(exc).__name__}"}
    except BaseException as exc:  # noqa: BLE001
        return {"outcome": "BAD", "error": f"load_model raised {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    try:
        got = model.predict(x)
    except (ValueError, TypeError) as exc:
        if model.input_shape[1:] != original.input_shape[1:] or not _same_model(model, original):
            return {"outcome": "loaded a different model (predict refuses the original input)"}
        return {"outcome": "BAD", "error": f"predict raised {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    except BaseException as exc:  # noqa: BLE001
        return {"outcome": "BAD", "error": f"predict raised {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    got_arrays = got if isinstance(got, list) else [got]
    want_arrays = y if isinstance(y, list) else [y]
    if all(np.shape(g) == np.shape(w) and np.allclose(g, w, atol=2e-5, rtol=1e-4)
           for g, w in zip(got_arrays, want_arrays)):
        return {"outcome": "loaded, predicts like the original"}
    if _same_model(model, original):
        return {"outcome": "BAD", "error": "same config and weights as the original, different predictions"}
    return {"outcome": "loaded a different model (changed weights or config)"}


class Worker:
    """A worker process; restarted after a hang (timeout) or a crash."""

    def __init__(self):
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=Path(__file__).parent.parent)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            err = self.proc.stderr.read()
            raise RuntimeError(f"fuzz worker failed to start: {line!r} {err[-3000:]}")

    def run(self, filename: str, path: str, timeout: float) -> dict:
        import selectors

        self.proc.stdin.write(f"{filename}\t{path}\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            self.dump_and_kill()
            return {"outcome": "HANG", "error": f"no answer within {timeout:.0f} s", "traceback": self.last_dump}
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            err = self.proc.stderr.read()
            self.start()
            return {"outcome": "CRASH", "error": f"worker died with status {self.proc.returncode}",
                    "traceback": err[-4000:]}
        return json.loads(line)

    def dump_and_kill(self):
        import signal

        self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack on SIGABRT
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.last_dump = self.proc.stderr.read()[-4000:]
        self.start()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_worker():
    w = Worker()
    yield w
    w.close()


def test_fuzzed_files_load_or_raise_a_fastgru_error(fuzz_worker, tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    originals = {name: _dir_files(SAVED / name) if _is_dir_fixture(name) else (FILES / name).read_bytes()
                 for name, _ in FIXTURES}
    keep_dir = Path(os.environ.get("FASTGRU_FUZZ_KEEP", tmp_path))  # where failing files are kept
    keep_dir.mkdir(parents=True, exist_ok=True)
    tally: collections.Counter = collections.Counter()
    by_kind: collections.Counter = collections.Counter()
    failures: list = []
    started = time.perf_counter()

    @settings(max_examples=CASES, derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def case(data):
        def draw(label, lo, hi):
            return data.draw(st.integers(min_value=lo, max_value=max(lo, hi)), label=label)

        names = [n for n, _ in FIXTURES if not ONLY_FIXTURES or any(n.endswith(f) for f in ONLY_FIXTURES)]
        filename = names[draw("fixture", 0, len(names) - 1)]
        if _is_dir_fixture(filename):
            kind, damaged = mutate_dir(originals[filename], draw, tmp_path)
            path = tmp_path / "case_dir"
            _write_dir(path, damaged)
        else:
            kind, damaged = mutate(filename, originals[filename], draw)
            path = tmp_path / ("case" + Path(filename).suffix)
            path.write_bytes(damaged)
        result = fuzz_worker.run(filename, str(path), CASE_TIMEOUT_S)
        tally[result["outcome"]] += 1
        by_kind[(kind, result["outcome"].split(":")[0])] += 1
        if result["outcome"] in ("BAD", "HANG", "CRASH"):
            keep = keep_dir / f"failure{len(failures)}{Path(filename).suffix}"
            if isinstance(damaged, dict):
                _write_dir(keep, damaged)
            else:
                keep.write_bytes(damaged)
            failures.append((filename, kind, str(keep), result))

    case()
    elapsed = time.perf_counter() - started
    total = sum(tally.values())
    print(f"\nfuzzed {total} cases in {elapsed:.0f} s:")
    for outcome, n in tally.most_common():
        print(f"  {n:6d}  {outcome}")
    for (kind, outcome), n in sorted(by_kind.items()):
        print(f"  {kind:11s} {outcome:45s} {n}")
    for filename, kind, kept, result in failures[:5]:
        print(f"\n--- {filename} ({kind}) kept at {kept}: {result.get('error')}\n{result.get('traceback', '')}")
    assert not failures, f"{len(failures)} of {total} fuzzed files broke the loader; first: {failures[0][3]}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()


# ---------------------------------------------------------------------------------------------
# targeted cases behind the fuzz findings (in-process: each must refuse quickly and cheaply)
# ---------------------------------------------------------------------------------------------
def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.namelist():
            data = a.read(item)
            if item == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config)
            b.writestr(item, data)


@pytest.mark.parametrize("units", [10**9, 2**40])
def test_absurd_units_are_refused_before_allocating(tmp_path, units):
    import tracemalloc

    import fastgru as fg

    def edit(config):
        config["config"]["layers"][1]["config"]["units"] = units

    _rewrite_config(FILES / "k3_gru_default.keras", tmp_path / "m.keras", edit)
    tracemalloc.start()
    try:
        with pytest.raises(fg.ModelFileError, match="more weights than the file can hold"):
            fg.load_model(tmp_path / "m.keras")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_huge_input_shape_is_refused_before_allocating(tmp_path):
    import fastgru as fg

    def edit(config):
        config["config"]["layers"][0]["config"]["batch_shape"] = [None, 6, 10**12]

    _rewrite_config(FILES / "k3_gru_default.keras", tmp_path / "m.keras", edit)
    with pytest.raises(fg.ModelFileError, match="more weights than the file can hold"):
        fg.load_model(tmp_path / "m.keras")


def test_dataset_declaring_a_huge_shape_is_not_read(tmp_path):
    """A chunked dataset of shape (10**6, 10**6) takes a few bytes on disk; reading it would take 4 TB."""
    import shutil

    import h5py

    import fastgru as fg

    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        root = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]
        group = root[next(n for n in names if n.startswith("dense"))]
        weight = group.attrs["weight_names"][0]
        weight = weight.decode() if isinstance(weight, bytes) else weight
        del group[weight]
        group.create_dataset(weight, shape=(10**6, 10**6), dtype="float32", chunks=(1, 1))
    with pytest.raises(fg.ModelFileError, match=r"has shape \(1000000, 1000000\), but the config implies"):
        fg.load_model(tmp_path / "m.h5")


def test_attribute_of_a_damaged_datatype_is_refused_not_read(tmp_path):
    """A flipped bit turned keras_version's variable-length *string* type into a variable-length sequence,
    which made libhdf5 crash (segfault) when read; such attributes are refused from their type."""
    import shutil

    import h5py

    import fastgru as fg

    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f.attrs["keras_version"]
        value = np.empty(1, dtype=object)
        value[0] = np.array([1, 2], np.uint8)
        f.attrs.create("keras_version", value, dtype=h5py.vlen_dtype(np.uint8))
    with pytest.raises(fg.ModelFileError, match="attribute 'keras_version' .* expected strings"):
        fg.load_model(tmp_path / "m.h5")


def test_zip_member_claiming_an_impossible_size_is_refused(tmp_path):
    import fastgru as fg

    data = bytearray((FILES / "k3_gru_default.keras").read_bytes())
    # the central directory entry of model.weights.h5: set its uncompressed size to 2**31 (stored member)
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(b"model.weights.h5") + 1)
    data[entry + 24: entry + 28] = (2**31).to_bytes(4, "little")
    (tmp_path / "m.keras").write_bytes(bytes(data))
    with pytest.raises(fg.ModelFileError, match="damaged .keras archive"):
        fg.load_model(tmp_path / "m.keras")


def test_global_heap_that_would_hang_libhdf5_is_refused(tmp_path):
    """One flipped bit in the global heap of a legacy .h5 (found by the focused fuzz run: 3 in 20,000 byte
    flips) makes libhdf5's walk over the heap's objects loop forever on a zero object size while reading
    model_config; fastgru checks the heap first. Run in a child with a timeout, so a regression fails
    instead of hanging the test run."""
    data = bytearray((FILES / "k2_masking.h5").read_bytes())
    data[4153] ^= 1
    (tmp_path / "m.h5").write_bytes(bytes(data))
    code = ("import fastgru as fg, sys\n"
            "try:\n    fg.load_model(sys.argv[1])\n"
            "except fg.ModelFileError as e:\n    print('refused', e)\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.h5")], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "refused" in res.stdout and "damaged HDF5 global heap at byte 2048" in res.stdout, res.stdout


def test_global_heap_check_accepts_every_fixture_and_ignores_lookalike_bytes():
    from fastgru.io.h5_heaps import check_global_heaps

    for path in sorted(FILES.glob("*.h5")):
        check_global_heaps(path, path)
    for path in sorted(FILES.glob("*.keras")):
        with zipfile.ZipFile(path) as z:
            check_global_heaps(path, path, z.read("model.weights.h5"))
    image = bytearray((FILES / "k2_masking.h5").read_bytes())
    image += b"GCOL\x01\x00\x00\x00" + (2**40).to_bytes(8, "little") + bytes(64)  # a signature in other data
    check_global_heaps("x.h5", "x.h5", bytes(image))


def test_inner_layer_of_a_wrapper_with_a_non_string_name_is_refused(tmp_path):
    """Found by the fuzz run: a Bidirectional's inner LSTM named [[[]]] raised AttributeError."""
    import fastgru as fg

    def edit(config):
        wrapper = next(e for e in config["config"]["layers"] if e["class_name"] == "Bidirectional")
        wrapper["config"]["layer"]["config"]["name"] = [[[]]]

    _rewrite_config(FILES / "k3_lstm_bidirectional.keras", tmp_path / "m.keras", edit)
    with pytest.raises(fg.ModelFileError, match=r"its name should be a string, found \[\[\[\]\]\]"):
        fg.load_model(tmp_path / "m.keras")
