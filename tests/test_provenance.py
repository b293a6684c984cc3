"""The model fingerprint: what it covers (and what it does not), and that runs record it and resume on it."""

import json
import shutil

import pytest

from harness import provenance
from harness.provenance import UNPINNED, WEIGHT_SAMPLE_BYTES, model_fingerprint
from harness.run import RunError, RunRequest, run_sampling
from harness.store import RunStore
from harness.types import SamplingSpec
from tests.fakes import fake_factory

SHARD = 3 * WEIGHT_SAMPLE_BYTES + 17  # larger than the two sampled ends, so its middle is not read


def _model(folder, config=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or {"model_type": "qwen2", "hidden_size": 64}))
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (folder / "model.safetensors").write_bytes(bytes(i % 251 for i in range(SHARD)))
    (folder / "README.md").write_text("a model card")
    return folder


def _patch(path, offset, value=b"\xff"):
    data = bytearray(path.read_bytes())
    data[offset:offset + len(value)] = value
    path.write_bytes(bytes(data))


def test_fingerprint_of_a_folder_depends_on_contents_not_place(tmp_path):
    a = _model(tmp_path / "a")
    fp = model_fingerprint(str(a))
    assert fp.startswith("fp1:") and len(fp) == 4 + 64
    assert model_fingerprint(str(a)) == fp
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert model_fingerprint(str(b)) == fp  # the path is not part of it
    (b / "README.md").write_text("another card")  # not a model file
    assert model_fingerprint(str(b)) == fp
    # a revision option does not override the files themselves
    assert model_fingerprint(str(a), "v2") == fp


@pytest.mark.parametrize("change", ["config", "tokenizer", "first weight byte", "last weight byte", "weight size",
                                    "new shard", "renamed shard"])
def test_fingerprint_changes_with_what_it_covers(tmp_path, change):
    folder = _model(tmp_path / "m")
    before = model_fingerprint(str(folder))
    weights = folder / "model.safetensors"
    if change == "config":
        (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 65}))
    elif change == "tokenizer":
        (folder / "tokenizer.json").write_text('{"model": {"type": "Unigram"}}')
    elif change == "first weight byte":
        _patch(weights, 0)
    elif change == "last weight byte":
        _patch(weights, SHARD - 1)
    elif change == "weight size":
        weights.write_bytes(weights.read_bytes() + b"\0")
    elif change == "new shard":
        (folder / "model-00002.safetensors").write_bytes(b"x")
    else:
        weights.rename(folder / "model-00001.safetensors")
    assert model_fingerprint(str(folder)) != before


def test_fingerprint_does_not_read_the_middle_of_large_weight_files(tmp_path):
    # The stated limit: bytes between the first and last WEIGHT_SAMPLE_BYTES of a shard are not read.
    folder = _model(tmp_path / "m")
    before = model_fingerprint(str(folder))
    _patch(folder / "model.safetensors", WEIGHT_SAMPLE_BYTES + 5, b"\x00\x01\x02")
    assert model_fingerprint(str(folder)) == before


def test_fingerprint_of_a_single_weight_file(tmp_path):
    file = tmp_path / "model.gguf"
    file.write_bytes(b"GGUF" + bytes(100))
    fp = model_fingerprint(str(file))
    assert fp.startswith("fp1:")
    file.write_bytes(b"GGUF" + bytes(99) + b"\x01")
    assert model_fingerprint(str(file)) != fp


def test_hub_and_api_names_give_the_revision_or_unpinned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that no folder of that name exists here
    assert model_fingerprint("Qwen/Qwen2.5-Math-7B-Instruct") == UNPINNED
    assert model_fingerprint("Qwen/Qwen2.5-Math-7B-Instruct", "a45202bd") == "a45202bd"
    assert model_fingerprint("o1-mini") == UNPINNED


def _req(tmp_path, model, **over):
    values = dict(bench="aime24", backend="fake", model=model, samples=2, spec=SamplingSpec(max_tokens=32, seed=1),
                  out=tmp_path / "run", limit=2, commit_every=2)
    values.update(over)
    return RunRequest(**values)


def _revision(run_dir):
    with RunStore.open(run_dir) as store:
        return store.manifest().model_revision


def test_run_records_the_fingerprint_and_refuses_to_resume_on_other_weights(tmp_path):
    folder = _model(tmp_path / "model")
    run_sampling(_req(tmp_path, str(folder)), fake_factory(), progress=False)
    assert _revision(tmp_path / "run") == model_fingerprint(str(folder))
    run_sampling(_req(tmp_path, str(folder), samples=3, resume=True), fake_factory(), progress=False)
    _patch(folder / "model.safetensors", 0)
    with pytest.raises(RunError, match="cannot resume: the model changed"):
        run_sampling(_req(tmp_path, str(folder), samples=4, resume=True), fake_factory(), progress=False)


def test_run_records_a_hub_revision_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_sampling(_req(tmp_path, "org/model", backend_options={"revision": "0123abc"}), fake_factory(), progress=False)
    assert _revision(tmp_path / "run") == "0123abc"
    with pytest.raises(RunError, match="model_revision was '0123abc', now 'fedcba9'"):
        run_sampling(_req(tmp_path, "org/model", resume=True, backend_options={"revision": "fedcba9"}),
                     fake_factory(), progress=False)
    run_sampling(_req(tmp_path, "org/other", out=tmp_path / "unpinned"), fake_factory(), progress=False)
    assert _revision(tmp_path / "unpinned") == UNPINNED


def test_fingerprint_rule_names_every_file_it_hashes():
    for name in provenance.FINGERPRINT_FILES:
        assert name in provenance.FINGERPRINT_RULE
    assert "first and last 1 MiB" in provenance.FINGERPRINT_RULE
