"""The image trainer: the paper's recipe, exact resume, the NaN guard, logs and sample grids."""

import csv
import math

import pytest
import torch

from minidiff.data import ImageData
from minidiff.training import EMA, NonFiniteError, TrainConfig, Trainer, build_model
from minidiff.training.checkpoint import load_checkpoint
from minidiff.training.config import length_warnings, warmup_steps
from minidiff.training.ema import ema_decay_at
from minidiff.training.trainer import resolve_amp, warmup_lr


def small_data(n: int = 32) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData("test", torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g),
                     torch.arange(n) % 10, 10, flip=True)


def small_config(out, **kw) -> TrainConfig:
    base = dict(preset="tiny", steps=4, batch_size=4, warmup=2, ckpt_every=100, log_every=1, sample_every=0,
                out=str(out), progress=False, device="cpu", dropout=0.1)
    base.update(kw)
    return TrainConfig(**base)


def run(cfg, resume=False):
    trainer = Trainer(cfg, data=small_data(), resume=resume)
    trainer.fit()
    return trainer


def test_defaults_are_the_papers_cifar10_recipe():
    c = TrainConfig()
    assert (c.preset, c.steps, c.lr, warmup_steps(c), c.grad_clip, c.ema_decay, c.batch_size, c.T, c.loss,
            c.parameterization) == ("cifar10", 800_000, 2e-4, 5000, 1.0, 0.9999, 128, 1000, "simple", "eps")
    assert (c.data, c.ch, c.ch_mult, c.num_res_blocks, c.attn_resolutions, c.dropout) == \
        ("cifar10", 128, (1, 2, 2, 2), 2, (16,), 0.1)


def test_warmup_is_linear_then_constant():
    assert [warmup_lr(s, 2e-4, 5000) for s in (0, 2500, 5000, 10**6)] == [0.0, 1e-4, 2e-4, 2e-4]
    assert warmup_lr(0, 2e-4, 0) == 2e-4


def test_amp_is_off_on_cpu_and_fp16_needs_cuda():
    assert resolve_amp("auto", torch.device("cpu")) == (None, False)
    assert resolve_amp("bf16", torch.device("cpu")) == (torch.bfloat16, False)
    with pytest.raises(ValueError, match="fp16"):
        resolve_amp("fp16", torch.device("cpu"))


def test_ema_without_warmup_moves_by_one_minus_decay_towards_the_weights():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.75, warmup=False)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(4.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, before + 0.25 * 4.0)


def test_ema_warmup_keeps_a_share_9_factorial_n_factorial_over_n_plus_9_factorial_of_the_initial_weights():
    """After a jump of the weights, N updates at d_n = min(0.9999, (1 + n)/(10 + n)) leave ∏ d_n of the old value."""
    model = torch.nn.Linear(3, 1)
    with_warmup, without = EMA(model, decay=0.9999), EMA(model, decay=0.9999, warmup=False)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    for _ in range(100):
        with_warmup.update(model), without.update(model)
    share = math.factorial(9) * math.factorial(100) / math.factorial(109)  # 2.3e-13
    # float32 lerp: each update rounds to ~6e-8 relative; 100 of them stay below 1e-5
    torch.testing.assert_close(with_warmup.model.weight, model.weight + share * (before - model.weight),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(without.model.weight, model.weight + 0.9999**100 * (before - model.weight),
                               atol=1e-5, rtol=0)  # the paper's fixed decay: still 99 % the old weights
    assert with_warmup.num_updates == 100 and ema_decay_at(89_990, 0.9999) == 0.9999 > ema_decay_at(89_989, 0.9999)


def _ema_lag(decays: list[float]) -> float:
    """Mean age, in steps, of the weights an EMA with these per-update decays averages (θ_0 has age N)."""
    n, lag, weight_left = len(decays), 0.0, 1.0
    for k in range(n, 0, -1):  # update k-1 mixes in θ_k with weight (1 - d_{k-1}) times the later decays
        lag += weight_left * (1 - decays[k - 1]) * (n - k)
        weight_left *= decays[k - 1]
    return lag + weight_left * n


def test_after_a_short_run_the_ema_is_within_its_lag_of_the_raw_weights(tmp_path):
    """The issue's test: after N = 30 steps at the paper's decay 0.9999, ‖θ_ema − θ_N‖ ≤ lag · max_k ‖θ_k − θ_(k−1)‖.

    The EMA is Σ_k w_k θ_k, so θ_ema − θ_N = Σ_k w_k (θ_k − θ_N), at most Σ_k w_k (N − k) = lag steps of the
    largest step (triangle inequality). With the warm-up the lag is N/10 = 3 steps; without it, 29.95
    (the EMA is still 99.7 % the initial weights).
    """
    trainer = Trainer(small_config(tmp_path, steps=30, warmup=0, lr=1e-3), data=small_data())
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    initial, prev, max_step = flat(trainer.model), flat(trainer.model), 0.0
    for _ in range(30):
        trainer.train_step()
        now = flat(trainer.model)
        max_step, prev = max(max_step, float((now - prev).norm())), now
    lag = _ema_lag([ema_decay_at(n, 0.9999) for n in range(30)])
    assert abs(lag - 3.0) < 1e-9 and _ema_lag([0.9999] * 30) > 29.9
    distance = float((flat(trainer.ema.model) - prev).norm())
    assert distance <= lag * max_step * (1 + 1e-5)
    assert distance < 0.5 * float((prev - initial).norm())  # ...which here means much nearer than the start


def test_warmup_scales_with_the_run_and_is_the_papers_at_full_length():
    assert warmup_steps(TrainConfig()) == 5000  # cifar10 at 800,000 steps: the paper's recipe
    assert warmup_steps(TrainConfig(preset="mnist", steps=2000)) == 200  # min(5000, 2000 // 10)
    assert warmup_steps(TrainConfig(preset="cpu")) == 100
    assert warmup_steps(TrainConfig(preset="mnist", steps=2000, warmup=3000)) == 3000  # an explicit value stays
    c = TrainConfig(preset="mnist", steps=2000, warmup=3000, ema_warmup=False)
    warn = length_warnings(c, warmup_steps(c))
    assert len(warn) == 2 and warn[0].startswith("warm-up 3000 >= steps 2000") and "82%" in warn[1]
    assert length_warnings(TrainConfig(preset="mnist", steps=2000), 200) == []


def test_presets_carry_their_training_defaults_and_fields_override_them():
    c = TrainConfig(preset="cpu")
    assert (c.steps, c.batch_size, c.lr, c.ema_decay, c.ch, c.ch_mult, c.attn_resolutions) == \
        (2700, 64, 1e-3, 0.995, 16, (1, 2, 2), (7,))
    assert sum(p.numel() for p in build_model(c).parameters()) == 280_177
    wide = TrainConfig(preset="cpu", ch=32, ch_mult=[1, 2], attn_resolutions=(), num_res_blocks=2, dropout=0.1)
    model = build_model(wide)
    assert (model.ch, len(model.down), wide.ch_mult) == (32, 2, (1, 2))
    with pytest.raises(ValueError, match=r"ch \* ch_mult must be multiples of the preset's 8 GroupNorm groups, "
                       r"got ch = 12"):
        TrainConfig(preset="cpu", ch=12)


def test_bad_config_values_raise_errors_naming_them():
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(preset="imagenet")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    for field, bad in (("lr", float("inf")), ("grad_clip", float("nan")), ("adam_eps", float("inf"))):
        with pytest.raises(ValueError, match=f"{field} must be a finite number"):
            TrainConfig(**{field: bad})
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\), got seed = 10{20}"):
        TrainConfig(seed=10**20)


def test_amp_auto_uses_bf16_only_where_the_gpu_computes_it_natively(monkeypatch):
    """A T4 (compute capability 7.5) emulates bf16, slowly: auto picks fp16 with a gradient scaler there."""
    def bf16_supported(including_emulation=True):
        return including_emulation  # what torch reports on a T4
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16_supported)
    assert resolve_amp("auto", torch.device("cuda")) == (torch.float16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100, H100
    assert resolve_amp("auto", torch.device("cuda")) == (torch.bfloat16, False)


def test_resume_after_n_steps_equals_2n_steps_straight_bitwise(tmp_path):
    straight = run(small_config(tmp_path / "a", steps=6))
    run(small_config(tmp_path / "b", steps=3))
    resumed = run(small_config(tmp_path / "b", steps=6), resume=True)
    assert resumed.step == straight.step == 6
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key, value in straight.ema.state_dict().items():
        assert torch.equal(value, resumed.ema.state_dict()[key]), key
    # ...and the weights did move (dropout, flips and noise all came from restored generators)
    fresh = Trainer(small_config(tmp_path / "c"), data=small_data())
    assert not torch.equal(fresh.model.conv_in.weight, straight.model.conv_in.weight)


def test_csv_log_has_one_row_per_step_and_a_resumed_run_reads_like_a_straight_one(tmp_path):
    run(small_config(tmp_path, steps=3))
    with open(tmp_path / "log.csv", "a") as f:  # rows a crash left after the last checkpoint
        f.write("4,9.0,1.0,1e-4,1.0,1.0\n")
    run(small_config(tmp_path, steps=5), resume=True)
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(float(r["loss"]) > 0 for r in rows) and rows[3]["loss"] != "9.0"


def test_periodic_sample_grids_are_written_as_png(tmp_path):
    run(small_config(tmp_path, steps=2, sample_every=2, sample_n=4, sample_steps=2))
    assert (tmp_path / "samples" / "step-00000002.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _nan_from_step(trainer: Trainer, bad_step: int) -> None:
    """Make the network's output NaN from the bad_step-th training forward on."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] >= bad_step:
                return output * float("nan")
        return output

    trainer.model.register_forward_hook(hook)


def test_nan_guard_stops_at_the_first_bad_step_and_keeps_the_good_checkpoint(tmp_path):
    trainer = Trainer(small_config(tmp_path, steps=6, ckpt_every=2), data=small_data())
    _nan_from_step(trainer, 3)
    with pytest.raises(NonFiniteError, match=r"step 3 .*learning rate.*amp") as err:
        trainer.fit()
    assert "loss = nan" in str(err.value)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["ckpt-00000002.pt", "last.pt"]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_nan_guard_catches_a_non_finite_gradient_with_a_finite_loss(tmp_path):
    trainer = Trainer(small_config(tmp_path, steps=3), data=small_data())
    trainer.model.conv_in.weight.register_hook(lambda g: g * float("inf"))
    with pytest.raises(NonFiniteError, match="step 1 "):
        trainer.fit()
    assert not list(tmp_path.glob("*.pt"))


def test_class_conditional_training_runs_and_trains_the_class_embedding(tmp_path):
    trainer = run(small_config(tmp_path, steps=3, class_conditional=True, class_dropout=0.5))
    assert trainer.model.num_classes == 10 and trainer.model.class_emb.weight.grad is not None


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_finishes_the_step_and_saves_a_checkpoint_there(tmp_path, signame):
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    sig = getattr(signal, signame)
    trainer = Trainer(small_config(tmp_path, steps=6, ckpt_every=100), data=small_data())
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += module.training
        if calls["n"] == 2:
            signal.raise_signal(sig)  # Ctrl-C or a scheduler's SIGTERM in the middle of the second step

    trainer.model.register_forward_hook(hook)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if before[sig] in (signal.SIG_IGN, None):
        pytest.skip(f"{signame} is ignored in this process")
    assert trainer.fit()["step"] == 2 and trainer.stopped_by == sig
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert {s: signal.getsignal(s) for s in before} == before  # the previous handlers are restored
    resumed = Trainer(small_config(tmp_path, steps=3), data=small_data(), resume=True)
    assert resumed.step == 2 and resumed.fit()["step"] == 3 and resumed.stopped_by is None


@pytest.mark.slow
def test_training_on_real_digits_drives_l_simple_far_below_its_initial_value(tmp_path):
    from minidiff.data import load_dataset

    digits = load_dataset("mnist-offline")
    small = torch.nn.functional.avg_pool2d(digits.images[:256].float(), 3, 3, ceil_mode=True).round().to(torch.uint8)
    data = ImageData("digits-10px", small, digits.labels[:256], 10, flip=False)
    cfg = small_config(tmp_path, steps=20, batch_size=16, lr=1e-3, warmup=0, log_every=10, dropout=0.0)
    Trainer(cfg, data=data).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    # The zero-initialized output layer makes the first loss E‖ε‖²/d = 1 (std. error ~0.04 at 1,600
    # values); measured: 0.79 over steps 1-10, 0.31 over steps 11-20.
    assert losses[-1] < 0.5 < losses[0]


# ---------------------------------------------------------------- resume bookkeeping, pace, RNG, host syncs
def test_elapsed_s_continues_across_a_resume_and_steps_are_not_duplicated(tmp_path):
    from minidiff.training.checkpoint import save_checkpoint

    run(small_config(tmp_path, steps=3))
    state = load_checkpoint(tmp_path / "last.pt")
    assert 0 < state["elapsed_s"] < 600
    state["elapsed_s"] = 1000.0  # as if the first part of the run had taken 1,000 s
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "last.pt")
    run(small_config(tmp_path, steps=5), resume=True)
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    elapsed = [float(r["elapsed_s"]) for r in rows]
    assert elapsed[2] < 600 and 1000 <= elapsed[3] <= elapsed[4] < 1600
    assert load_checkpoint(tmp_path / "last.pt")["elapsed_s"] >= elapsed[4] - 0.05  # the log rounds to 0.1 s


def test_train_prints_its_pace_and_projected_time_and_flags_a_gpu_preset_on_a_cpu(tmp_path, capsys):
    run(small_config(tmp_path / "tiny", steps=16))
    err = capsys.readouterr().err
    assert "s/step on cpu: about" in err and "for the remaining 12 steps" in err and "GPU" not in err
    run(small_config(tmp_path / "mnist", preset="mnist", steps=16, dropout=0.0))
    assert "preset 'mnist' is sized for a GPU: on a CPU, --preset cpu" in capsys.readouterr().err


def test_checkpoints_hold_the_cuda_rng_state_of_the_training_device_only(tmp_path, monkeypatch):
    from minidiff.training import trainer as tr

    run(small_config(tmp_path, steps=1))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["rng"]["cuda"] == [None]  # one process, and its device is not CUDA
    asked = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": asked.append(device) or torch.zeros(8))
    assert tr.cuda_rng_state(torch.device("cuda", 1)).shape == (8,) and asked == [torch.device("cuda", 1)]
    set_calls = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device="cuda": set_calls.append((int(s[0]), device)))
    eight_gpus = [torch.full((4,), float(i)) for i in range(8)]  # the old format: every visible GPU's state
    tr.set_cuda_rng_state(eight_gpus, torch.device("cuda", 3))
    tr.set_cuda_rng_state(eight_gpus[:2], torch.device("cuda", 5))  # fewer saved than the index: no IndexError
    tr.set_cuda_rng_state(torch.full((4,), 7.0), torch.device("cuda", 0))
    tr.set_cuda_rng_state(eight_gpus, torch.device("cpu"))
    assert set_calls == [(3, torch.device("cuda", 3)), (7, torch.device("cuda", 0))]
    # a checkpoint written on an 8-GPU machine resumes here
    state["rng"]["cuda"] = [eight_gpus]
    from minidiff.training.checkpoint import save_checkpoint

    save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "last.pt")
    assert run(small_config(tmp_path, steps=2), resume=True).step == 2


def test_no_host_sync_between_log_steps(tmp_path, monkeypatch):
    """The trainer and data pipeline make no .item()/bool()/float()/int()/.tolist() call on a tensor in
    train_step, and a fit() makes as many with 10 steps between log rows as with 2 (issue 15, item 7).

    (The input checks of minidiff.losses read t on the host only for CPU tensors; on an accelerator
    they are device-side asserts, so they are left out of the count here.)"""
    import sys

    calls = {"n": 0}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *a, **k):
            caller = sys._getframe(1).f_code.co_filename
            if "minidiff/training/" in caller or "minidiff/data/" in caller:
                calls["n"] += 1
            return original(self, *a, **k)
        return wrapper

    trainer = Trainer(small_config(tmp_path / "a", steps=12, log_every=12), data=small_data())
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    for _ in range(10):
        trainer.train_step()
    assert calls["n"] == 0
    trainer.fit()
    per_fit_10 = calls["n"]
    calls["n"] = 0
    Trainer(small_config(tmp_path / "b", steps=2, log_every=2), data=small_data()).fit()
    assert per_fit_10 == calls["n"] > 0


def test_resuming_a_checkpoint_of_another_kind_of_device_says_so(tmp_path):
    """A CUDA run's random streams cannot continue on a CPU generator: the error says which device to use."""
    from minidiff.training import CheckpointError

    trainer = run(small_config(tmp_path, steps=2))
    state = trainer.state_dict()
    state["rng"]["noise"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state is 16 bytes
    state["config"]["device"] = "cuda"
    with pytest.raises(CheckpointError, match="of another kind of device than cpu: it was trained with --device cuda"):
        Trainer(small_config(tmp_path, steps=3), data=small_data(), resume=True).load(tmp_path / "last.pt", state)
