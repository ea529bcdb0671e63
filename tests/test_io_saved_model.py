"""Keras 2 SavedModel directories and TensorFlow checkpoints, without TensorFlow.

* The committed fixtures (tests/fixtures/make_saved_model_fixtures.py, tf_keras): predictions match
  Keras's, ``get_weights()`` equals Keras's bit for bit, Keras 2 semantics, compile restored, ``fastgru
  info``, ``load_weights`` from ``save_weights(save_format="tf")`` checkpoints.
* Hostile directories: each is refused with ModelFileError (or UnsupportedKerasFeature for a Keras model
  fastgru does not load), quickly and without reading what a damaged size claims.
* Live round trips with tf_keras (marked ``keras``; skipped cleanly without it).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.io import protobuf_wire as pw
from fastgru.io.crc32c import crc32c, mask
from fastgru.io.tensor_bundle import FOOTER_SIZE, TABLE_MAGIC, Bundle, read_table

SAVED = Path(__file__).parent / "fixtures" / "saved_model"
NAMES = ["sm_gru", "sm_lstm_bidirectional", "sm_embedding", "sm_functional", "sm_nested"]
ATOL = 2e-5


def expected(name):
    with np.load(SAVED / f"{name}.npz") as f:
        weights = [f[f"w{i}"] for i in range(sum(k.startswith("w") for k in f.files))]
        return f["x"], f["y"], weights


def copy_fixture(tmp_path, name="sm_gru") -> Path:
    dst = tmp_path / name
    shutil.copytree(SAVED / name, dst)
    return dst


# ---------------------------------------------------------------------------------------------
# fixtures: numbers, weights, semantics
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_saved_model_predicts_like_keras_with_identical_weights(name):
    x, y, weights = expected(name)
    model = fg.load_model(SAVED / name)
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)
    got = model.get_weights()
    assert len(got) == len(weights)
    for a, b in zip(got, weights):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)  # bit-identical
    assert model.file_format.startswith("Keras 2 SavedModel directory")
    assert model.keras_version.startswith("2.")


def test_keras2_version_picks_keras2_hard_sigmoid_and_compile_is_restored():
    model = fg.load_model(SAVED / "sm_gru")
    assert model.layers[1].get_config()["recurrent_activation"] == "hard_sigmoid_keras2"
    assert model.layers[0].get_config()["reset_after"] is True
    assert model.layers[1].get_config()["reset_after"] is False
    assert model.optimizer is not None and model.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    x, y, _ = expected("sm_gru")
    model.evaluate(x, y, verbose=0)  # compiled: evaluate works right away
    assert getattr(fg.load_model(SAVED / "sm_gru", compile=False), "optimizer", None) is None


def test_layers_and_names_of_nested_and_functional_models():
    nested = fg.load_model(SAVED / "sm_nested")
    # (Functional models: their InputLayer first, as Keras lists them; a SavedModel's nested Sequential flattened)
    assert [type(l).__name__ for l in nested.layers] == ["InputLayer", "Masking", "GRU", "Bidirectional", "Dense"]
    functional = fg.load_model(SAVED / "sm_functional")
    assert [type(l).__name__ for l in functional.layers] == ["InputLayer", "GRU", "Dense", "GRU", "Dense"]


@pytest.mark.parametrize("name", ["sm_gru", "sm_nested"])
def test_load_weights_from_a_tf_checkpoint_prefix_and_from_a_saved_model_folder(name):
    x, y, weights = expected(name)
    model = fg.load_model(SAVED / name, compile=False)
    for source in (SAVED / f"{name}_ckpt" / "weights", SAVED / name):
        model.set_weights([np.zeros_like(w) for w in weights])
        model.load_weights(source)
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
        np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_load_weights_into_a_model_built_in_fastgru():
    from fastgru.layers import GRU, Dense, Input

    x, y, weights = expected("sm_gru")
    model = fg.Sequential([Input((6, 4)), GRU(5, return_sequences=True),
                           GRU(3, reset_after=False, recurrent_activation="hard_sigmoid_keras2"),
                           Dense(2, activation="softmax")])
    model.load_weights(str(SAVED / "sm_gru_ckpt" / "weights"))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)
    wrong = fg.Sequential([Input((6, 4)), GRU(5), Dense(2)])
    with pytest.raises(fg.ModelFileError, match="layers with weights"):
        wrong.load_weights(SAVED / "sm_gru_ckpt" / "weights")


def test_checkpoint_prefix_given_to_load_model_is_refused():
    with pytest.raises(fg.ModelFileError, match="weights checkpoint .*load_weights"):
        fg.load_model(SAVED / "sm_gru_ckpt" / "weights")


def test_info_describes_a_saved_model_and_a_checkpoint(capsys):
    from fastgru.cli import main

    assert main(["info", str(SAVED / "sm_nested")]) == 0
    out = capsys.readouterr().out
    assert "format: Keras 2 SavedModel directory" in out and "keras_version: 2." in out
    assert "bidirectional" in out.lower()
    assert main(["info", str(SAVED / "sm_gru_ckpt" / "weights")]) == 0
    out = capsys.readouterr().out
    assert "TensorFlow checkpoint" in out and "layer_with_weights-0/cell/kernel" in out
    assert main(["info", "/"]) == 2


def test_crc32c_known_values(monkeypatch):
    import fastgru.io.crc32c as module

    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    data = np.random.default_rng(0).integers(0, 256, 300_003, dtype=np.uint8).tobytes()
    kernel = crc32c(data)
    assert kernel == crc32c(data[150_001:], crc32c(data[:150_001]))  # chained
    monkeypatch.setattr(module, "_SMALL", 1 << 40)  # the Python loop only
    assert crc32c(data) == kernel and crc32c(b"123456789") == 0xE3069283


def test_protobuf_wire_reader_bounds():
    with pytest.raises(pw.WireError, match="truncated varint"):
        list(pw.fields(b"\x08\x80"))
    with pytest.raises(pw.WireError, match="claims"):
        list(pw.fields(b"\x12\x05ab"))
    with pytest.raises(pw.WireError, match="wire type 3"):
        list(pw.fields(b"\x0b"))
    with pytest.raises(pw.WireError, match="longer than 10"):
        pw.varint(b"\xff" * 11 + b"\x01", 0, 12)
    with pytest.raises(pw.WireError, match="nested too deeply"):
        pw.message(b"", depth=pw.MAX_DEPTH + 1)
    assert pw.get_int(pw.message(b"\x08\x96\x01"), 1) == 150


# ---------------------------------------------------------------------------------------------
# writers for hostile directories (wire format, LevelDB table)
# ---------------------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fv(number, value):
    return _varint(number << 3) + _varint(value)


def _fb(number, data: bytes):
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _f32(number, value):
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def encode_entry(e: dict) -> bytes:
    shape = b"".join(_fb(2, _fv(1, d)) for d in e["shape"])
    out = _fv(1, e["dtype"]) + _fb(2, shape)
    if e["shard"]:
        out += _fv(3, e["shard"])
    out += _fv(4, e["offset"]) + _fv(5, e["size"]) + _f32(6, e["crc"])
    if e.get("sliced"):
        out += _fb(7, _fb(1, _fv(1, 0)))
    return out


def _block(items, compression=0) -> bytes:
    body = bytearray()
    restarts = []
    for k, v in items:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(k)) + _varint(len(v)) + k + v
    body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", max(len(restarts), 1))
    if not restarts:
        body = bytearray(struct.pack("<I", 0) + struct.pack("<I", 1))
    trailer = bytes([compression])
    return bytes(body) + trailer + struct.pack("<I", mask(crc32c(bytes(body) + trailer)))


def build_table(items: dict, compression=0) -> bytes:
    items = sorted(items.items())
    data = _block(items, compression)
    handle = _varint(0) + _varint(len(data) - 5)
    index_offset = len(data)
    index = _block([(items[-1][0] + b"\xff", handle)])
    meta_offset = index_offset + len(index)
    meta = _block([])
    footer = (_varint(meta_offset) + _varint(len(meta) - 5) + _varint(index_offset) + _varint(len(index) - 5))
    footer = footer.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return data + index + meta + footer


def rewrite_index(prefix, edit=None, num_shards=1, endianness=0, compression=0):
    """Rewrite ``prefix.index`` from the entries the loader reads, after ``edit(entries)``."""
    bundle = Bundle(prefix, prefix)
    entries = {k: {"dtype": e.dtype, "shape": e.shape, "shard": e.shard, "offset": e.offset, "size": e.size,
                   "crc": e.crc, "sliced": e.sliced} for k, e in bundle.entries.items()}
    bundle.close()
    if edit is not None:
        edit(entries)
    header = _fv(1, num_shards) + (_fv(2, endianness) if endianness else b"") + _fb(3, _fv(1, 1))
    items = {b"": header}
    items.update({k.encode(): encode_entry(e) for k, e in entries.items()})
    Path(str(prefix) + ".index").write_bytes(build_table(items, compression))


def weight_key(folder, index=0) -> str:
    bundle = Bundle(folder / "variables" / "variables", folder)
    keys = sorted(k for k, e in bundle.entries.items() if e.dtype == 1 and len(e.shape) == 2)
    bundle.close()
    return keys[index]


def metadata_nodes(folder):
    data = (folder / "keras_metadata.pb").read_bytes()
    nodes = []
    for node in pw.get_messages(data, pw.message(data), 1):
        nodes.append({"id": pw.get_int(node, 2), "path": pw.get_str(data, node, 3),
                      "identifier": pw.get_str(data, node, 4), "metadata": pw.get_str(data, node, 5)})
    return nodes


def write_metadata_nodes(folder, nodes):
    out = b"".join(_fb(1, _fv(2, n["id"]) + _fb(3, n["path"].encode()) + _fb(4, n["identifier"].encode())
                       + _fb(5, n["metadata"].encode())) for n in nodes)
    (folder / "keras_metadata.pb").write_bytes(out)


def edit_root_metadata(folder, edit):
    nodes = metadata_nodes(folder)
    root = next(n for n in nodes if n["path"] == "root")
    meta = json.loads(root["metadata"])
    edit(meta, root)
    root["metadata"] = json.dumps(meta)
    write_metadata_nodes(folder, nodes)


def string_tensor(value: bytes) -> bytes:
    """A scalar string tensor as TensorFlow writes it: varint length, masked CRC of the length, bytes."""
    crc = crc32c(struct.pack("<I", len(value)))
    return _varint(len(value)) + struct.pack("<I", mask(crc)) + value


def string_tensor_crc(value: bytes) -> int:
    crc = crc32c(struct.pack("<I", len(value)))
    crc = crc32c(struct.pack("<I", mask(crc)), crc)
    return mask(crc32c(value, crc))


def replace_tensors(folder, tensors: dict) -> None:
    """Append new values (float arrays, or bytes for a string tensor) to the data file and point the
    index at them, with valid CRCs."""
    data_file = folder / "variables" / "variables.data-00000-of-00001"
    out = bytearray(data_file.read_bytes())
    placed = {}
    for key, value in tensors.items():
        if isinstance(value, bytes):
            raw, crc, dtype, shape = string_tensor(value), string_tensor_crc(value), 7, ()
        else:
            raw = np.ascontiguousarray(value, "<f4").tobytes()
            crc, dtype, shape = mask(crc32c(raw)), 1, value.shape
        placed[key] = {"dtype": dtype, "shape": shape, "offset": len(out), "size": len(raw), "crc": crc}
        out += raw
    data_file.write_bytes(bytes(out))

    def edit(entries):
        for key, fields in placed.items():
            entries[key].update(fields)

    rewrite_index(folder / "variables" / "variables", edit)


def test_test_writers_reproduce_a_loadable_directory(tmp_path):
    """The writers above rewrite the index and metadata the way TensorFlow does: unchanged, still loads."""
    folder = copy_fixture(tmp_path)
    rewrite_index(folder / "variables" / "variables")
    edit_root_metadata(folder, lambda meta, node: None)
    x, y, _ = expected("sm_gru")
    np.testing.assert_allclose(fg.load_model(folder).predict(x), y, atol=ATOL, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# hostile directories
# ---------------------------------------------------------------------------------------------
def refused(folder, match, exc=fg.ModelFileError):
    started = time.perf_counter()
    with pytest.raises(exc, match=match):
        fg.load_model(folder)
    assert time.perf_counter() - started < 10


def test_flipped_tensor_byte_fails_its_crc(tmp_path):
    folder = copy_fixture(tmp_path)
    bundle = Bundle(folder / "variables" / "variables", folder)
    e = bundle.entries[weight_key(folder)]
    bundle.close()
    data_file = folder / "variables" / "variables.data-00000-of-00001"
    data = bytearray(data_file.read_bytes())
    data[e.offset + 3] ^= 0x10
    data_file.write_bytes(bytes(data))
    refused(folder, "CRC-32C mismatch: damaged checkpoint data")


def test_flipped_index_byte_fails_the_block_crc(tmp_path):
    folder = copy_fixture(tmp_path)
    index = folder / "variables" / "variables.index"
    data = bytearray(index.read_bytes())
    data[20] ^= 0x01
    index.write_bytes(bytes(data))
    refused(folder, "CRC-32C mismatch in the block")


def test_truncated_data_file_is_refused_before_reading(tmp_path):
    folder = copy_fixture(tmp_path)
    data_file = folder / "variables" / "variables.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:100])
    refused(folder, r"claims bytes .* which has 100")


def test_offset_and_size_beyond_the_data_file_are_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["offset"] = 2**62

    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, "claims bytes 4611686018427387904")


def test_huge_claimed_shape_is_refused_before_allocating(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["shape"] = (10**6, 10**6)
        entries[key]["size"] = 4 * 10**12

    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, r"has shape \(1000000, 1000000\), but the config implies")


def test_size_disagreeing_with_shape_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["size"] -= 4

    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, "bytes for shape")


def test_sliced_variable_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["sliced"] = True

    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, "saved in slices")


def test_big_endian_bundle_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    rewrite_index(folder / "variables" / "variables", endianness=1)
    refused(folder, "big-endian")


def test_compressed_block_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    rewrite_index(folder / "variables" / "variables", compression=1)
    refused(folder, r"compressed \(snappy\)")


def test_missing_shards_are_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["shard"] = 2

    rewrite_index(folder / "variables" / "variables", edit, num_shards=3)
    refused(folder, r"data shard variables.data-00000-of-00003 of the checkpoint does not exist")
    shard0 = folder / "variables" / "variables.data-00000-of-00001"
    shutil.copy(shard0, folder / "variables" / "variables.data-00000-of-00003")
    shutil.copy(shard0, folder / "variables" / "variables.data-00000-of-00002")
    refused(folder, r"data shard variables.data-00002-of-00003 of the checkpoint does not exist")
    rewrite_index(folder / "variables" / "variables", edit, num_shards=2)
    refused(folder, "is in shard 2 of 2")


def test_string_tensor_where_floats_belong_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)

    def edit(entries):
        entries[key]["dtype"] = 7

    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, "holds string values, expected floats")


def test_nan_weights_are_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    key = weight_key(folder)
    bundle = Bundle(folder / "variables" / "variables", folder)
    array = bundle.read_float(key).copy()
    bundle.close()
    array[0, 0] = np.nan
    replace_tensors(folder, {key: array})
    refused(folder, "NaN or infinite")


def test_damaged_object_graph_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    bundle = Bundle(folder / "variables" / "variables", folder)
    e = bundle.entries["_CHECKPOINTABLE_OBJECT_GRAPH"]
    bundle.close()
    data_file = folder / "variables" / "variables.data-00000-of-00001"
    data = bytearray(data_file.read_bytes())
    data[e.offset + e.size - 10] ^= 0xFF
    data_file.write_bytes(bytes(data))
    refused(folder, "CRC-32C mismatch")
    # damaged graphs with valid CRCs: the graph itself must be refused
    for graph, match in [(b"\x0a\xff\xff\x01", "object graph is damaged"),
                         (_fb(1, _fb(1, _fv(1, 99) + _fb(2, b"layer_with_weights-0"))), "node 99 of 1"),
                         (b"", "object graph is empty"),
                         (_fb(1, _fb(1, _fv(1, 0) + _fb(2, b"layer_with_weights-0"))), "too deeply or in a cycle")]:
        replace_tensors(folder, {"_CHECKPOINTABLE_OBJECT_GRAPH": graph})
        refused(folder, match)


def test_object_graph_and_metadata_with_absurdly_many_nodes_are_refused_quickly(tmp_path):
    from fastgru.io.saved_model import MAX_NODES

    folder = copy_fixture(tmp_path)
    replace_tensors(folder, {"_CHECKPOINTABLE_OBJECT_GRAPH": b"\x0a\x00" * (MAX_NODES + 1)})
    refused(folder, "more than 200000 nodes")
    (folder / "keras_metadata.pb").write_bytes(b"\x0a\x00" * (MAX_NODES + 1))
    refused(folder, "too many nodes")


def test_string_tensor_lengths_are_checked(tmp_path):
    folder = copy_fixture(tmp_path)
    replace_tensors(folder, {"_CHECKPOINTABLE_OBJECT_GRAPH": b"abc"})
    bundle = Bundle(folder / "variables" / "variables", folder)
    e = bundle.entries["_CHECKPOINTABLE_OBJECT_GRAPH"]
    bundle.close()
    data_file = folder / "variables" / "variables.data-00000-of-00001"
    data = bytearray(data_file.read_bytes())
    data[e.offset] = 200  # the length varint: now disagrees with the length checksum

    def edit(entries):
        entries["_CHECKPOINTABLE_OBJECT_GRAPH"]["crc"] = mask(crc32c(bytes(data[e.offset:e.offset + e.size])))

    data_file.write_bytes(bytes(data))
    rewrite_index(folder / "variables" / "variables", edit)
    refused(folder, "CRC-32C mismatch in the string lengths")


def test_index_table_damage(tmp_path):
    folder = copy_fixture(tmp_path)
    index = folder / "variables" / "variables.index"
    original = index.read_bytes()
    index.write_bytes(original[:-8] + b"\0" * 8)
    refused(folder, "no table magic number")
    index.write_bytes(original[:30])
    refused(folder, "shorter than a table footer")
    footer = bytearray(original[-FOOTER_SIZE:])
    footer[:4] = _varint(2**40) + _varint(5) + b""[:0]  # a metaindex handle far away, then garbage
    with pytest.raises(fg.ModelFileError):
        read_table(original[:-FOOTER_SIZE] + bytes(footer), "x")


def test_oversized_metadata_and_index_are_refused_without_reading(tmp_path):
    folder = copy_fixture(tmp_path)
    with open(folder / "keras_metadata.pb", "r+b") as f:
        f.truncate(65 << 20)  # sparse: costs no disk
    refused(folder, "keras_metadata.pb takes 68157440 bytes")
    folder = copy_fixture(tmp_path, "sm_embedding")
    with open(folder / "variables" / "variables.index", "r+b") as f:
        f.truncate(65 << 20)
    refused(folder, "checkpoint index takes")


def test_absurd_units_in_the_metadata_config_are_refused_before_allocating(tmp_path):
    folder = copy_fixture(tmp_path)

    def edit(meta, node):
        meta["model_config"]["config"]["layers"][1]["config"]["units"] = 10**9

    edit_root_metadata(folder, edit)
    refused(folder, "more weights than the file can hold")


def test_layer_name_disagreeing_with_metadata_is_refused(tmp_path):
    folder = copy_fixture(tmp_path)
    nodes = metadata_nodes(folder)
    node = next(n for n in nodes if n["path"] == "root.layer_with_weights-0")
    meta = json.loads(node["metadata"])
    meta["name"] = "someone_else"
    node["metadata"] = json.dumps(meta)
    write_metadata_nodes(folder, nodes)
    refused(folder, "'someone_else' in keras_metadata.pb")


def test_symlinks_leaving_the_directory_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for victim in ("keras_metadata.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"):
        folder = tmp_path / "m"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(SAVED / "sm_gru", folder)
        target = outside / Path(victim).name
        shutil.copy(folder / victim, target)
        (folder / victim).unlink()
        (folder / victim).symlink_to(target)
        refused(folder, "outside the folder")
    folder = tmp_path / "m2"
    shutil.copytree(SAVED / "sm_gru", folder)
    shutil.move(folder / "variables", outside / "variables")
    (folder / "variables").symlink_to(outside / "variables")
    refused(folder, "outside the folder")


def test_symlink_inside_the_directory_is_fine(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "keras_metadata.pb").rename(folder / "meta_copy.pb")
    (folder / "keras_metadata.pb").symlink_to("meta_copy.pb")
    fg.load_model(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_place_of_a_file_is_refused_not_waited_on(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "variables" / "variables.index").unlink()
    os.mkfifo(folder / "variables" / "variables.index")
    refused(folder, "not a regular file")


def test_missing_pieces(tmp_path):
    folder = copy_fixture(tmp_path)
    shutil.rmtree(folder / "variables")
    refused(folder, "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(empty, "is a directory, but not a TensorFlow SavedModel")


def test_subclassed_model_is_refused_saying_so(tmp_path):
    folder = copy_fixture(tmp_path)

    def edit(meta, node):  # what tf_keras writes for a subclassed model
        meta["model_config"] = "{'class_name': 'MyModel', 'config': {}}"
        meta["class_name"] = "MyModel"
        meta["is_graph_network"] = False
        node["identifier"] = "_tf_keras_model"

    edit_root_metadata(folder, edit)
    refused(folder, "subclassed Keras model .*'MyModel'", fg.UnsupportedKerasFeature)


def test_functional_graph_is_refused_saying_how_to_load_it(tmp_path):
    """A two-input Functional graph in a SavedModel: refused, pointing to .h5 (which loads graphs)."""
    folder = copy_fixture(tmp_path)

    def layer(cls, name, config, inbound):
        return {"class_name": cls, "name": name, "config": dict(config, name=name), "inbound_nodes": inbound}

    config = {"class_name": "Functional", "config": {"name": "two_inputs", "layers": [
        layer("InputLayer", "a", {"batch_input_shape": [None, 5, 3], "dtype": "float32"}, []),
        layer("InputLayer", "b", {"batch_input_shape": [None, 5, 3], "dtype": "float32"}, []),
        layer("Add", "add", {}, [[["a", 0, 0, {}], ["b", 0, 0, {}]]]),
    ], "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": [["add", 0, 0]]}}

    def edit(meta, node):
        meta["model_config"] = config
        meta["class_name"] = "Functional"
        node["identifier"] = "_tf_keras_network"

    edit_root_metadata(folder, edit)
    refused(folder, r"from a SavedModel directory .* save it as \.h5", fg.UnsupportedKerasFeature)


def test_saved_model_without_keras_metadata_is_refused_saying_why(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "keras_metadata.pb").unlink()
    refused(folder, "tf.saved_model.save")  # our trimmed saved_model.pb has no Keras identifiers
    (folder / "saved_model.pb").write_bytes(b"\x08\x01" + b"x" * 3000 + b"_tf_keras_sequential" + b"y" * 100)
    refused(folder, "before 2.5", fg.UnsupportedKerasFeature)


def test_malformed_metadata(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "keras_metadata.pb").write_bytes(b"\x0a\x05\x12\x03ab")
    refused(folder, "keras_metadata.pb is damaged")
    write_metadata_nodes(folder, [{"id": 0, "path": "root", "identifier": "_tf_keras_sequential",
                                   "metadata": "{not json"}])
    refused(folder, "not valid JSON")
    write_metadata_nodes(folder, [{"id": 0, "path": "root", "identifier": "_tf_keras_sequential",
                                   "metadata": "{}"}])
    refused(folder, "no model_config")


# ---------------------------------------------------------------------------------------------
# a large checkpoint loads fast
# ---------------------------------------------------------------------------------------------
def test_large_checkpoint_loads_in_well_under_a_second(tmp_path):
    """A 70 MB SavedModel (the sm_gru fixture with a GRU(1600) on 2050 features): its checkpoint is read,
    CRC-checked and assigned in well under a second after the first load."""
    from fastgru.layers import GRU, Dense, Input

    folder = copy_fixture(tmp_path)
    units, features = 1600, 2050
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((features, 3 * units)).astype("float32")
    tensors = {"variables/0/.ATTRIBUTES/VARIABLE_VALUE": kernel,
               "variables/1/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal((units, 3 * units)).astype("float32"),
               "variables/2/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal((2, 3 * units)).astype("float32"),
               "variables/3/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal((units, 9)).astype("float32")}
    replace_tensors(folder, tensors)

    def edit(meta, node):
        layers = meta["model_config"]["config"]["layers"]
        layers[0]["config"]["batch_input_shape"] = [None, 6, features]
        layers[1]["config"]["units"] = units

    edit_root_metadata(folder, edit)
    size = (folder / "variables" / "variables.data-00000-of-00001").stat().st_size
    assert size > 70e6
    # the model, built with zero initializers (fg.load_model would also run the config's orthogonal
    # initializer on a 1600x4800 matrix, which takes seconds and is not reading the checkpoint)
    model = fg.Sequential([Input((6, features)), GRU(units, return_sequences=True, kernel_initializer="zeros",
                                                      recurrent_initializer="zeros"),
                           GRU(3, reset_after=False, recurrent_activation="hard_sigmoid_keras2"),
                           Dense(2, activation="softmax")])
    model.load_weights(folder)  # the first call (compiles the CRC kernel unless cached)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    started = time.perf_counter()
    model.load_weights(folder)  # every byte read and CRC-checked, every weight checked finite
    elapsed = time.perf_counter() - started
    assert np.array_equal(model.layers[0].get_weights()[0], kernel)
    assert elapsed < 1.0, f"loading a {size / 1e6:.0f} MB checkpoint took {elapsed:.2f} s"


# ---------------------------------------------------------------------------------------------
# live: tf_keras -> SavedModel -> fastgru
# ---------------------------------------------------------------------------------------------
def _tf_keras():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("tf_keras")


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])


@pytest.mark.keras_graph  # (saving a SavedModel traces its functions anyway)
@pytest.mark.keras
def test_live_tf_keras_saved_models_load_number_for_number(tmp_path):
    keras = _tf_keras()
    L = keras.layers
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")
    x[0, -2:] = 0
    inner = keras.Sequential([L.LSTM(3, return_sequences=True, go_backwards=True)], name="inner")
    inputs = keras.Input((6, 4))
    h = inner(L.Masking()(inputs))
    h = L.Bidirectional(L.GRU(3, reset_after=False, recurrent_activation="hard_sigmoid"), merge_mode="ave")(h)
    models = {
        "sequential": keras.Sequential([keras.Input((6, 4)), L.GRU(5, activation="elu", use_bias=False),
                                        L.Dense(2, activation="softmax")]),
        "functional": keras.Model(inputs, L.Dense(1)(L.Dropout(0.1)(h))),
    }
    for name, km in models.items():
        _randomize(km, 3)
        km.compile(optimizer="rmsprop", loss="mse")
        km.save(tmp_path / name)
        km.save_weights(tmp_path / f"{name}_ckpt" / "w", save_format="tf")
        ours = fg.load_model(tmp_path / name)
        np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4, err_msg=name)
        assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), km.get_weights()))
        assert ours.optimizer is not None
        ours.set_weights([np.zeros_like(w) for w in ours.get_weights()])
        ours.load_weights(tmp_path / f"{name}_ckpt" / "w")
        assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), km.get_weights()))


@pytest.mark.keras_graph  # (saving a SavedModel traces its functions anyway)
@pytest.mark.keras
def test_live_subclassed_and_tf_saved_model_exports_are_refused(tmp_path):
    keras = _tf_keras()
    import tensorflow as tf

    class MyModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.gru = keras.layers.GRU(3)

        def call(self, x, training=None):
            return self.gru(x)

    m = MyModel()
    m(np.zeros((1, 5, 2), "float32"))
    m.save(tmp_path / "sub")
    with pytest.raises(fg.UnsupportedKerasFeature, match="subclassed Keras model"):
        fg.load_model(tmp_path / "sub")

    class Module(tf.Module):
        def __init__(self):
            self.v = tf.Variable(np.ones((2, 2), "float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 2])])
        def f(self, x):
            return x @ self.v

    tf.saved_model.save(Module(), str(tmp_path / "module"))
    with pytest.raises(fg.ModelFileError, match="without Keras metadata"):
        fg.load_model(tmp_path / "module")


@pytest.mark.keras_graph  # (saving a SavedModel traces its functions anyway)
@pytest.mark.keras
def test_live_more_saved_models_stateful_float64_frozen_backward_layer_nested_functional(tmp_path):
    keras = _tf_keras()
    L = keras.layers
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype("float32")
    tokens = np.random.default_rng(2).integers(0, 10, (2, 5)).astype("int32")
    tokens[0, 3:] = 0
    frozen = L.GRU(4, return_sequences=True)
    frozen.trainable = False
    token_input = keras.Input((5,), dtype="int32")
    inner_input = keras.Input((5, 3))
    inner = keras.Model(inner_input, L.LSTM(2, return_sequences=True)(inner_input))
    cases = {
        "stateful": (keras.Sequential([keras.Input((5, 3), batch_size=2), L.GRU(4, stateful=True, return_sequences=True),
                                       L.GRU(2)]), x),
        "float64": (keras.Sequential([keras.Input((5, 3), dtype="float64"), L.LSTM(4, dtype="float64"),
                                      L.Dense(1, dtype="float64")]), x.astype("float64")),
        "embedding_functional": (keras.Model(token_input, L.Dense(1)(L.GRU(3)(L.Embedding(10, 3, mask_zero=True)(
            token_input)))), tokens),
        "frozen_backward_layer": (keras.Sequential([keras.Input((5, 3)), frozen, L.Bidirectional(
            L.GRU(3, use_bias=False),
            backward_layer=L.GRU(3, use_bias=False, go_backwards=True, activation="relu"))]), x),
        "functional_in_sequential": (keras.Sequential([keras.Input((5, 3)), inner, L.GRU(2)]), x),
    }
    for name, (km, xi) in cases.items():
        _randomize(km, 4)
        km.save(tmp_path / name)
        ours = fg.load_model(tmp_path / name)
        want = km.predict(xi, verbose=0)
        np.testing.assert_allclose(ours.predict(xi), want, atol=ATOL, rtol=1e-4, err_msg=name)
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours.get_weights(), km.get_weights()))
