"""Checkpoints: atomic writes, keep-last-K, weights_only loading, refusing another run's checkpoint."""

import pytest
import torch
from test_trainer import run, small_config, small_data

from minidiff.training import CheckpointError, TrainConfig, Trainer, checkpoint, load_checkpoint, model_from_checkpoint
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
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it is binary data of 15 bytes"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is a PyTorch file but not a minidiff checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "notes.pt").write_text("step,loss\n1,0.9\n")
    with pytest.raises(CheckpointError, match=r"it is a text file \(16 bytes, starting 'step,loss'\); expected a "
                       r"minidiff checkpoint, the PyTorch zip file 'minidiff train' writes"):
        load_checkpoint(tmp_path / "notes.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="it is an empty file"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_loading_never_runs_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "minidiff-checkpoint/1", "step": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="a PyTorch file holding more than tensors"):
        load_checkpoint(tmp_path / "evil.pt")


def test_model_from_checkpoint_rebuilds_the_ema_network(tmp_path):
    trainer = run(small_config(tmp_path, steps=2))
    model, config, step = model_from_checkpoint(tmp_path / "last.pt")
    assert step == 2 and config["preset"] == "tiny" and not model.training
    for a, b in zip(model.parameters(), trainer.ema.model.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- a run folder is never silently reused
def test_a_new_run_in_a_folder_that_holds_a_run_is_refused_naming_it_and_both_ways_out(tmp_path):
    run(small_config(tmp_path, steps=2, ckpt_every=1))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="already holds a run") as err:
        Trainer(small_config(tmp_path, steps=4), data=small_data())
    assert str(tmp_path) in str(err.value) and "resume=True" in str(err.value) and "overwrite=True" in str(err.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing touched


def test_numbered_checkpoints_alone_also_count_as_a_run(tmp_path):
    run(small_config(tmp_path, steps=2, ckpt_every=1))
    (tmp_path / "last.pt").unlink()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(small_config(tmp_path), data=small_data())
    with pytest.raises(ValueError, match="no last.pt to resume from"):
        Trainer(small_config(tmp_path), data=small_data(), resume=True)


def test_overwrite_deletes_the_old_runs_checkpoints_log_and_grids_and_starts_at_step_0(tmp_path):
    run(small_config(tmp_path, steps=5, ckpt_every=1, keep=3, sample_every=5, sample_n=1, sample_steps=1))
    (tmp_path / "notes.txt").write_text("mine")
    trainer = Trainer(small_config(tmp_path, steps=2, ckpt_every=1, keep=3), data=small_data(), overwrite=True)
    assert trainer.step == 0
    trainer.fit()
    # Without the overwrite, pruning to keep=3 would have kept the old ckpt-3, 4, 5 and deleted the new ones.
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == ["ckpt-00000001.pt", "ckpt-00000002.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert [line.split(",")[0] for line in (tmp_path / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert not list((tmp_path / "samples").glob("*.png"))
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the trainer's own files go


def test_overwrite_deletes_nothing_when_the_new_run_cannot_start(tmp_path):
    run(small_config(tmp_path, steps=2))
    with pytest.raises(ValueError, match="fp16"):  # refused after the folder check, before the deletion
        Trainer(small_config(tmp_path, amp="fp16"), data=small_data(), overwrite=True)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2 and (tmp_path / "log.csv").is_file()


def test_resume_still_continues_a_run_and_excludes_overwrite(tmp_path):
    run(small_config(tmp_path, steps=2))
    assert run(small_config(tmp_path, steps=3), resume=True).step == 3
    with pytest.raises(ValueError, match="exclude each other"):
        Trainer(small_config(tmp_path, steps=4), data=small_data(), resume=True, overwrite=True)


# ---------------------------------------------------------------- a good file is never called corrupt
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_loading_onto_a_missing_cuda_device_is_a_device_error_not_a_corrupt_file(tmp_path):
    run(small_config(tmp_path, steps=1))
    with pytest.raises(ValueError, match="CUDA is not available") as err:
        load_checkpoint(tmp_path / "last.pt", map_location="cuda")
    assert not isinstance(err.value, CheckpointError) and "corrupt" not in str(err.value)


def test_read_errors_say_cannot_read_and_other_errors_pass_through(tmp_path, monkeypatch):
    save_checkpoint({"step": 1, "config": {}, "model": {}, "ema": {}}, tmp_path / "c.pt")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint, "open", denied, raising=False)  # opening the file fails: a read error
    with pytest.raises(CheckpointError, match="cannot read .*Permission denied") as err:
        load_checkpoint(tmp_path / "c.pt")
    assert "corrupt" not in str(err.value)
    monkeypatch.delattr(checkpoint, "open")

    def out_of_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(torch, "load", out_of_memory)
    with pytest.raises(MemoryError):
        load_checkpoint(tmp_path / "c.pt")


def test_a_truncated_file_is_called_corrupt_at_every_cut_point(tmp_path):
    """torch's zip reader raises OSError(EINVAL) at some cut points: that is a bad file, not a read error."""
    run(small_config(tmp_path, steps=1))
    data = (tmp_path / "last.pt").read_bytes()
    for cut in (100, 1000, 5000, 20000, len(data) // 2, len(data) - 10):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="not a readable checkpoint: it is a truncated or corrupt PyTorch zip "
                           rf"file \({cut:,} bytes") as err:
            load_checkpoint(tmp_path / "cut.pt")
        assert "cannot read" not in str(err.value), cut


def test_a_directory_is_not_a_checkpoint_and_last_pt_is_suggested(tmp_path):
    run(small_config(tmp_path, steps=1))
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file; did you mean .*last.pt"):
        load_checkpoint(tmp_path)


def test_overwrite_keeps_images_the_trainer_did_not_write(tmp_path):
    run(small_config(tmp_path, steps=1, sample_every=1, sample_n=1, sample_steps=1))
    (tmp_path / "samples" / "step-1.png").write_bytes(b"mine")
    Trainer(small_config(tmp_path, steps=1), data=small_data(), overwrite=True)
    assert [p.name for p in (tmp_path / "samples").iterdir()] == ["step-1.png"]
