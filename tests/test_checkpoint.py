"""Checkpoints: atomic writes, keep-last-K, weights_only loading, refusing another run's checkpoint."""

import pytest
import torch
from test_trainer import run, small_config, small_data

from minidiff.training import CheckpointError, TrainConfig, Trainer, load_checkpoint, model_from_checkpoint
from minidiff.training.checkpoint import save_checkpoint


def test_checkpoint_holds_model_ema_optimizer_scaler_step_rng_and_config(tmp_path):
    run(small_config(tmp_path, steps=2))
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "ema", "optimizer", "scaler", "step", "rng", "config"} <= set(state)
    assert {"cpu", "cuda", "data", "noise"} <= set(state["rng"])
    assert state["step"] == 2 and TrainConfig.from_dict(state["config"]) == small_config(tmp_path, steps=2)


def test_keeps_the_last_k_numbered_checkpoints_and_last_points_at_the_newest(tmp_path):
    run(small_config(tmp_path, steps=5, ckpt_every=1, keep=2))
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == ["ckpt-00000004.pt", "ckpt-00000005.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 5


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    save_checkpoint({"step": 1, "config": {}, "model": {}, "ema": {}}, tmp_path / "c.pt")

    def crash(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2, "config": {}, "model": {}, "ema": {}}, tmp_path / "c.pt")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_refuses_a_checkpoint_whose_config_differs_naming_the_field(tmp_path):
    run(small_config(tmp_path, steps=2))
    with pytest.raises(CheckpointError, match=r"lr: the checkpoint has 0.0002, this run has 0.001"):
        Trainer(small_config(tmp_path, steps=4, lr=1e-3), data=small_data(), resume=True)
    with pytest.raises(CheckpointError, match="preset: the checkpoint has 'tiny', this run has 'mnist'"):
        Trainer(small_config(tmp_path, preset="mnist", steps=4), data=small_data(), resume=True)


def test_corrupt_and_foreign_files_get_a_clear_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a minidiff checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_loading_never_runs_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "minidiff-checkpoint/1", "step": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_model_from_checkpoint_rebuilds_the_ema_network(tmp_path):
    trainer = run(small_config(tmp_path, steps=2))
    model, config, step = model_from_checkpoint(tmp_path / "last.pt")
    assert step == 2 and config["preset"] == "tiny" and not model.training
    for a, b in zip(model.parameters(), trainer.ema.model.parameters()):
        assert torch.equal(a, b)
