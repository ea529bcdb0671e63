"""Hand-made hostile model files (issue 16): a model file is the only source of a model.

A weight must come from the bytes of the file being loaded: HDF5 external storage, external links and
virtual datasets are refused (they read other files: any file on disk, FIFOs that block forever, HDF5
files with damaged heaps), and so are datasets whose data were never written. Memory is bounded by what
the config declares before anything is decompressed (zip members, gzip chunks); load time is linear in
the number of layers; a file truncated under the loader cannot crash it. Every loader is covered: the
weights inside a ``.keras`` zip, Keras 3 and tf_keras legacy ``.h5`` files, ``load_weights`` and
``fastgru info``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

import fastgru as fg
from fastgru.cli import main as cli_main
from fastgru.io import describe

FILES = Path(__file__).parent / "fixtures" / "files"

#: per loader: (fixture, the dataset made hostile: the first GRU's kernel)
FORMATS = {
    "keras": ("k3_gru_default.keras", "layers/gru/cell/vars/0"),
    "k3_h5": ("k3_gru_options.h5", "model_weights/gru_1/k3_gru_options/gru_1/gru_cell/kernel"),
    "k2_h5": ("k2_masking.h5", "model_weights/gru_2/gru_2/gru_cell/kernel:0"),
    "weights": ("k3_gru_options.weights.h5", "layers/gru/cell/vars/0"),
}
LOADERS = list(FORMATS)


def _edit_keras_weights(src, dst, edit, tmp_path, compression=zipfile.ZIP_STORED):
    """Copy the .keras ``src`` to ``dst`` with its model.weights.h5 changed by ``edit(h5_path)``."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    inner = tmp_path / "inner.h5"
    inner.write_bytes(members["model.weights.h5"])
    edit(inner)
    members["model.weights.h5"] = inner.read_bytes()
    with zipfile.ZipFile(dst, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def make_hostile(fmt, tmp_path, replace):
    """The fixture of loader ``fmt`` with its GRU kernel deleted and ``replace(group, key, shape, dtype)``
    creating the hostile one; returns the file's path."""
    src, name = FORMATS[fmt]
    parent, key = name.rsplit("/", 1)

    def edit(h5_path):
        with h5py.File(h5_path, "a") as f:
            shape, dtype = f[name].shape, f[name].dtype
            del f[parent][key]
            replace(f[parent], key, shape, dtype)

    if src.endswith(".keras"):
        return _edit_keras_weights(FILES / src, tmp_path / "m.keras", edit, tmp_path)
    out = tmp_path / src
    shutil.copy(FILES / src, out)
    edit(out)
    return out


def load(fmt, path):
    if fmt == "weights":
        model = fg.load_model(FILES / "k3_gru_options.keras")
        model.load_weights(path)
        return model
    return fg.load_model(path)


def assert_refused(fmt, path, match, info_reads_data=True):
    """``load`` and ``fastgru info`` (exit status 2) both refuse the file, naming the dataset. (``fastgru
    info`` lists a weights-only file's variables from their headers: it refuses what points outside the
    file, not data left unwritten, which loading refuses.)"""
    key = FORMATS[fmt][1].rsplit("/", 1)[1]
    with pytest.raises(fg.ModelFileError, match=match) as info:
        load(fmt, path)
    assert key in str(info.value) and str(path) in str(info.value), str(info.value)
    if fmt == "weights" and not info_reads_data:
        return
    with pytest.raises(fg.ModelFileError, match=match):
        describe(path)
    assert cli_main(["info", str(path)]) == 2


def secret_file(tmp_path, shape):
    """A file outside the model that a hostile model tries to read its weights from."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(shape, 0.125, np.float32).tobytes())
    return secret


# ---------------------------------------------------------------------------------------------
# 1. external storage: a weight read from any file on disk
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", LOADERS)
def test_external_storage_is_refused(fmt, tmp_path):
    def replace(group, key, shape, dtype):
        secret = secret_file(tmp_path, shape)
        group.create_dataset(key, shape, "float32", external=[(str(secret), 0, secret.stat().st_size)])

    path = make_hostile(fmt, tmp_path, replace)
    assert_refused(fmt, path, "external storage")


# ---------------------------------------------------------------------------------------------
# 2. external links, virtual datasets, data never written
# ---------------------------------------------------------------------------------------------
def other_h5(tmp_path, shape):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("w", data=np.full(shape, 0.125, np.float32))
        f.create_group("g").create_dataset("0", data=np.full(shape, 0.125, np.float32))
    return other


@pytest.mark.parametrize("fmt", LOADERS)
def test_external_link_to_a_weight_is_refused(fmt, tmp_path):
    def replace(group, key, shape, dtype):
        group[key] = h5py.ExternalLink(str(other_h5(tmp_path, shape)), "/w")

    path = make_hostile(fmt, tmp_path, replace)
    assert_refused(fmt, path, "external link")


def test_external_link_to_a_group_is_refused(tmp_path):
    """A link higher up (the layer's whole group) is refused too: nothing is looked up through it."""
    def edit(h5_path):
        with h5py.File(h5_path, "a") as f:
            del f["layers/dense"]
            f["layers/dense"] = h5py.ExternalLink(str(tmp_path / "nowhere.h5"), "/g")

    path = _edit_keras_weights(FILES / "k3_gru_default.keras", tmp_path / "m.keras", edit, tmp_path)
    with pytest.raises(fg.ModelFileError, match=r"/layers/dense.*external link"):
        fg.load_model(path)


@pytest.mark.parametrize("fmt", LOADERS)
def test_virtual_dataset_is_refused(fmt, tmp_path):
    def replace(group, key, shape, dtype):
        layout = h5py.VirtualLayout(shape=shape, dtype="float32")
        layout[...] = h5py.VirtualSource(str(other_h5(tmp_path, shape)), "w", shape=shape)
        group.create_virtual_dataset(key, layout)

    path = make_hostile(fmt, tmp_path, replace)
    assert_refused(fmt, path, "virtual dataset")


def test_virtual_dataset_with_a_missing_source_is_refused(tmp_path):
    def replace(group, key, shape, dtype):
        layout = h5py.VirtualLayout(shape=shape, dtype="float32")
        layout[...] = h5py.VirtualSource(str(tmp_path / "missing.h5"), "w", shape=shape)
        group.create_virtual_dataset(key, layout, fillvalue=0.25)

    assert_refused("keras", make_hostile("keras", tmp_path, replace), "virtual dataset")


@pytest.mark.parametrize("fmt", LOADERS)
def test_weight_never_written_is_refused(fmt, tmp_path):
    """A dataset created without data holds only its fill value: not a weight."""
    def replace(group, key, shape, dtype):
        group.create_dataset(key, shape, "float32", fillvalue=0.25)

    path = make_hostile(fmt, tmp_path, replace)
    assert_refused(fmt, path, "never written", info_reads_data=False)


def test_chunked_weight_partly_written_is_refused(tmp_path):
    def replace(group, key, shape, dtype):
        ds = group.create_dataset(key, shape, "float32", chunks=(1, shape[1]), fillvalue=0.25)
        ds[0] = 1.0  # the other rows' chunks are never written

    assert_refused("k2_h5", make_hostile("k2_h5", tmp_path, replace), "never written")


# ---------------------------------------------------------------------------------------------
# 4. hangs: FIFOs and a damaged heap in another file
# ---------------------------------------------------------------------------------------------
def run_load_with_timeout(path, timeout=60):
    code = ("import fastgru as fg, sys\n"
            "try:\n    fg.load_model(sys.argv[1])\n"
            "except fg.ModelFileError as e:\n    print('refused', e)\n")
    try:
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} hung (no result after {timeout} s)")
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def damaged_heap_file(tmp_path):
    """An HDF5 file whose global heap has a zero-size free-space object: libhdf5 loops forever reading the
    group's weight_names attribute (a variable-length string list that lives in that heap)."""
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as f:
        f.create_group("g").attrs["weight_names"] = np.array(["a", "b"], dtype=h5py.string_dtype())
    data = bytearray(path.read_bytes())
    at = data.find(b"GCOL")
    end, p = at + int.from_bytes(data[at + 8:at + 16], "little"), at + 16
    while p < end:
        idx, size = int.from_bytes(data[p:p + 2], "little"), int.from_bytes(data[p + 8:p + 16], "little")
        if idx == 0:
            data[p + 8:p + 16] = bytes(8)
            break
        p += 16 + ((size + 7) & ~7)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["external storage", "external link"])
def test_weight_pointing_at_a_fifo_does_not_hang(kind, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def replace(group, key, shape, dtype):
        if kind == "external storage":
            group.create_dataset(key, shape, "float32", external=[(str(fifo), 0, 4 * int(np.prod(shape)))])
        else:
            group[key] = h5py.ExternalLink(str(fifo), "/w")

    out = run_load_with_timeout(make_hostile("k2_h5", tmp_path, replace))
    assert "refused" in out and kind in out, out


def test_external_link_to_a_file_with_a_damaged_heap_does_not_hang(tmp_path):
    damaged = damaged_heap_file(tmp_path)
    path = tmp_path / "m.h5"
    shutil.copy(FILES / "k2_masking.h5", path)
    with h5py.File(path, "a") as f:
        del f["model_weights/gru_2"]
        f["model_weights/gru_2"] = h5py.ExternalLink(str(damaged), "/g")
    out = run_load_with_timeout(path)
    assert "refused" in out and "external link" in out, out


# ---------------------------------------------------------------------------------------------
# 5. bombs: compressed chunks, zip members, config size; filters
# ---------------------------------------------------------------------------------------------
def chunked(group, key, data, **options):
    group.create_dataset(key, data=data, chunks=data.shape, **options)


@pytest.mark.parametrize("options", [{"compression": "gzip"}, {"compression": "gzip", "shuffle": True},
                                     {"shuffle": True}, {}])
def test_gzip_and_shuffle_weights_load_exactly(options, tmp_path):
    """fastgru decompresses chunks itself (bounded); a valid compressed file loads the same weights."""
    original = fg.load_model(FILES / "k3_gru_default.keras")
    kernel = original.layers[0].get_weights()[0]

    def replace(group, key, shape, dtype):
        group.create_dataset(key, data=kernel, chunks=(3, 7), **options)  # edge chunks included

    model = fg.load_model(make_hostile("keras", tmp_path, replace))
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], kernel)


def test_gzip_chunk_bomb_is_refused_without_inflating_it(tmp_path):
    """One 240-byte chunk whose deflate stream inflates to 64 MiB: libhdf5's filter grew its buffer to the
    whole stream and the load went on silently; fastgru inflates at most the chunk's size (+1 byte)."""
    bomb = zlib.compress(bytes(64 << 20), 9)

    def replace(group, key, shape, dtype):
        ds = group.create_dataset(key, shape, "float32", chunks=shape, compression="gzip")
        ds.id.write_direct_chunk((0, 0), bomb)

    path = make_hostile("keras", tmp_path, replace)
    tracemalloc.start()
    try:
        assert_refused("keras", path, "inflates to more than")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


@pytest.mark.parametrize("filter_id, name", [(32001, "32001"), ("lzf", "lzf")])
def test_unsupported_filter_is_refused_by_name(filter_id, name, tmp_path):
    def replace(group, key, shape, dtype):
        if filter_id == "lzf":
            group.create_dataset(key, data=np.ones(shape, np.float32), chunks=shape, compression="lzf")
        else:  # a filter this libhdf5 does not have (blosc)
            ds = group.create_dataset(key, shape, "float32", chunks=shape, compression=filter_id,
                                      allow_unknown_filter=True)
            ds.id.write_direct_chunk((0, 0), np.ones(shape, np.float32).tobytes())

    assert_refused("keras", make_hostile("keras", tmp_path, replace), rf"HDF5 filter .*{name}.* not supported")


def test_zip_member_inflating_beyond_what_the_config_declares_is_refused(tmp_path):
    """model.weights.h5 deflated from 64 MiB (mostly zeros) to ~64 KiB, within deflate's ratio: refused from
    the config's declared weights before it is decompressed."""
    def pad(h5_path):
        with open(h5_path, "ab") as f:
            f.write(bytes(64 << 20))

    path = _edit_keras_weights(FILES / "k3_gru_default.keras", tmp_path / "m.keras", pad, tmp_path,
                               compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(fg.ModelFileError, match="model.weights.h5 .*more than the .* config declares"):
            fg.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_huge_config_json_is_refused_before_it_is_decompressed(tmp_path):
    with zipfile.ZipFile(FILES / "k3_gru_default.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["config.json"] = members["config.json"] + b" " * (80 << 20)
    with zipfile.ZipFile(tmp_path / "m.keras", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    tracemalloc.start()
    try:
        with pytest.raises(fg.ModelFileError, match="config.json .*at most"):
            fg.load_model(tmp_path / "m.keras")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


# ---------------------------------------------------------------------------------------------
# 6. the weight budget counts the bytes in the file, not decompressed bytes
# ---------------------------------------------------------------------------------------------
def test_declared_weights_beyond_the_compressed_file_are_refused_before_allocating(tmp_path):
    """A ~40 KiB .keras whose deflated model.weights.h5 inflates to 48 MiB declares a GRU(2000) (12M
    weights): the budget comes from the bytes stored in the file, so nothing is built."""
    with zipfile.ZipFile(FILES / "k3_gru_default.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 2000
    members["config.json"] = json.dumps(config).encode()
    members["model.weights.h5"] += bytes(48 << 20)
    with zipfile.ZipFile(tmp_path / "m.keras", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    assert (tmp_path / "m.keras").stat().st_size < 100 << 10
    tracemalloc.start()
    try:
        with pytest.raises(fg.ModelFileError, match="more weights than the file can hold"):
            fg.load_model(tmp_path / "m.keras")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


# ---------------------------------------------------------------------------------------------
# 7. many layers: linear time
# ---------------------------------------------------------------------------------------------
def many_layers(tmp_path, n, functional=False):
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 4, 3], "name": "input"}}]
    for i in range(n):
        layers.append({"class_name": "Activation", "config": {"name": f"a{i}", "activation": "linear"}})
    if functional:
        for prev, entry in itertools.pairwise(layers):
            entry["name"] = entry["config"]["name"]
            entry["inbound_nodes"] = [[[prev["config"]["name"], 0, 0, {}]]]
        config = {"class_name": "Functional", "config": {"name": "m", "layers": layers}}
    else:
        config = {"class_name": "Sequential", "config": {"name": "m", "layers": layers}}
    path = tmp_path / f"m{n}{'f' if functional else ''}.keras"
    buffer = tmp_path / "w.h5"
    with h5py.File(buffer, "w") as f:
        f.create_group("vars")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.read_bytes())
    return path


@pytest.mark.parametrize("functional", [False, True])
def test_a_thousand_layers_load_quickly(functional, tmp_path):
    """Loading 1,000 layers takes well under 5 s (about 0.1-0.3 s here), timed in a fresh process as a user loads
    a file: inside a test worker, with TensorFlow and thousands of test objects alive, the same load once took 7 s."""
    path = many_layers(tmp_path, 1000, functional)
    code = textwrap.dedent("""
        import sys, time
        import fastgru as fg
        start = time.perf_counter()
        n = len(fg.load_model(sys.argv[1]).layers)
        print(n, time.perf_counter() - start)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n, took = out.stdout.split()
    assert int(n) == 1000 + functional and float(took) < 5, out.stdout  # (a Functional model's InputLayer too)


@pytest.mark.parametrize("extra", [1, 95_000])
def test_too_many_layers_are_refused_early(extra, tmp_path):
    """100,000 layers from a small file had not loaded after 120 s (building is not linear in the number of
    layers); more than MAX_LAYERS are refused before anything is built."""
    from fastgru.io.keras_config import MAX_LAYERS

    path = many_layers(tmp_path, MAX_LAYERS + extra, functional=extra > 1)
    with pytest.raises(fg.ModelFileError, match=f"at most {MAX_LAYERS:,} layers"):
        fg.load_model(path)
    # timed in a fresh process, as a user loads a file (inside this test process, with TensorFlow and
    # thousands of test objects alive, Python's garbage collector makes any 100,000-dict parse slow): the
    # refusal costs about one parse of the config, not the minutes that building 100,000 layers took
    code = textwrap.dedent("""
        import json, sys, time, zipfile
        import fastgru as fg
        start = time.perf_counter()
        try:
            fg.load_model(sys.argv[1])
        except fg.ModelFileError:
            pass
        took = time.perf_counter() - start
        start = time.perf_counter()
        json.loads(zipfile.ZipFile(sys.argv[1]).read("config.json"))
        print(took, time.perf_counter() - start)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    took, parse = map(float, out.stdout.split())
    assert took < 4 * parse + 2.0, (took, parse)


# ---------------------------------------------------------------------------------------------
# 8. a file truncated while it is being checked
# ---------------------------------------------------------------------------------------------
def test_file_truncated_during_the_heap_scan_is_not_a_crash(tmp_path):
    """The heap scan read the file through a memory map: truncating the file under it killed the process
    with SIGBUS. It now reads in bounded chunks; a truncated file is refused."""
    path = tmp_path / "m.h5"
    shutil.copy(FILES / "k2_masking.h5", path)
    with open(path, "ab") as f:  # the heap is near the start; a page-aligned tail keeps the map large
        f.write(bytes(1 << 20))
    code = textwrap.dedent("""
        import os, sys
        import fastgru as fg
        from fastgru.io import h5_heaps
        original = h5_heaps._check_collection
        def truncating(*args, **kwargs):
            os.truncate(sys.argv[1], 0)  # another process truncates the file mid-scan
            return original(*args, **kwargs)
        h5_heaps._check_collection = truncating
        try:
            fg.load_model(sys.argv[1])
        except fg.ModelFileError as e:
            print("refused", e)
        """)
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    assert "refused" in res.stdout


# ---------------------------------------------------------------------------------------------
# 13. saving through symlinks and long names; duplicate zip members; info totals
# ---------------------------------------------------------------------------------------------
def small_model():
    from fastgru.layers import GRU, Dense, Input

    return fg.Sequential([Input(shape=(3, 2)), GRU(4), Dense(1)])


def test_save_writes_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.keras"
    target.write_bytes(b"old")
    link = tmp_path / "m.keras"
    link.symlink_to(target)
    model = small_model()
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(fg.load_model(target).layers[0].get_weights()[0], model.layers[0].get_weights()[0])
    weights_link = tmp_path / "m.weights.h5"
    weights_link.symlink_to(tmp_path / "real" / "m.weights.h5")  # dangling: the save creates the target
    model.save_weights(weights_link)
    assert weights_link.is_symlink() and (tmp_path / "real" / "m.weights.h5").is_file()


def test_save_to_a_long_file_name(tmp_path):
    path = tmp_path / ("m" * 244 + ".keras")  # 250 characters: a valid name
    small_model().save(path)
    assert fg.load_model(path).layers[0].units == 4
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_save_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    """The temporary file cannot be created (a read-only folder; simulated, since root may write anywhere)."""
    from fastgru.io import atomic

    def refused(prefix, suffix, dir):  # noqa: A002  (tempfile's argument name)
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k2x9ab" + suffix))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as info:
        small_model().save(tmp_path / "m.keras")
    assert info.value.filename == str(tmp_path / "m.keras") and ".tmp" not in str(info.value), str(info.value)


def test_save_error_names_the_target_not_the_temporary_file_when_writing_fails(tmp_path, monkeypatch):
    from fastgru.io import atomic

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError) as info:
        small_model().save(tmp_path / "m.keras")
    assert info.value.filename == str(tmp_path / "m.keras") and ".tmp" not in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_duplicate_zip_members_are_refused(tmp_path):
    with zipfile.ZipFile(FILES / "k3_gru_default.keras") as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    config = json.loads(dict(members)["config.json"])
    config["config"]["layers"][2]["config"]["units"] = 7
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
            for name, data in members:
                z.writestr(name, data)
            z.writestr("config.json", json.dumps(config))  # a second config.json: the last one won
    with pytest.raises(fg.ModelFileError, match="config.json.* twice"):
        fg.load_model(tmp_path / "m.keras")


def test_info_total_for_huge_datasets(tmp_path):
    path = tmp_path / "w.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(2**32, 2**32), dtype="float32", chunks=(1, 1))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(3, np.float32))
    text = describe(path)
    assert f"Total params: {2**64 + 3:,}" in text, text
