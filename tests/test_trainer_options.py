"""The fast defaults on CUDA (issue 15, item 8): wired as named options, off on the CPU, and harmless to
resume, checkpoints, EMA and DDP. Their speed is measured by bench/trainer_options.py on a GPU, not here."""

import os

import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import _free_port
from test_trainer import small_config, small_data

from minidiff.cli import build_parser, main, train_config_from_args
from minidiff.training import Trainer
from minidiff.training.speed import AUTO_FIELDS, SpeedOptions, resolve_speed

ALL_ON = dict(compile=True, cudnn_benchmark=True, tf32_matmul=True, ddp_bucket_view=True)


def test_left_at_auto_each_option_is_on_for_cuda_and_off_on_cpu(tmp_path):
    c = small_config(tmp_path)
    assert all(getattr(c, name) is None for name in AUTO_FIELDS)
    on = resolve_speed(c, torch.device("cuda", 0))
    off = resolve_speed(c, torch.device("cpu"))
    assert on == SpeedOptions(True, "loss", "inductor", True, True, True)
    assert off == SpeedOptions(False, "loss", "inductor", False, False, False)
    assert off.describe() == "none"
    assert on.describe() == "compile (loss, inductor), cudnn.benchmark, TF32 matmul, DDP bucket view"
    # an explicit value is kept on either device
    assert resolve_speed(small_config(tmp_path, compile=False), torch.device("cuda")).compile is False
    assert resolve_speed(small_config(tmp_path, tf32_matmul=True), torch.device("cpu")).tf32_matmul is True


@pytest.mark.parametrize(("field", "bad"), [("compile", 1), ("cudnn_benchmark", "yes"), ("compile_scope", "all"),
                                            ("compile_backend", "fast")])
def test_bad_option_values_are_refused_naming_them(tmp_path, field, bad):
    with pytest.raises(ValueError, match=field):
        small_config(tmp_path, **{field: bad})


def test_cpu_defaults_touch_no_torch_switch_and_forced_ones_hold_only_during_the_step(tmp_path):
    seen = []

    def record(module, args):
        seen.append((torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()))

    before = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
    assert before == (False, "highest")  # torch's defaults, which the test relies on
    for kw, inside in (({}, before), (dict(cudnn_benchmark=True, tf32_matmul=True), (True, "high"))):
        trainer = Trainer(small_config(tmp_path / str(len(kw)), **kw), data=small_data())
        trainer.model.register_forward_pre_hook(record)
        seen.clear()
        trainer.train_step()
        assert seen == [inside]
        assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == before


def test_no_clipping_work_when_grad_clip_is_0(tmp_path, monkeypatch):
    calls = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: calls.append(1) or real(*a, **k))
    Trainer(small_config(tmp_path / "clip"), data=small_data()).train_step()
    assert calls == [1]
    trainer = Trainer(small_config(tmp_path / "noclip", grad_clip=0.0), data=small_data())
    monkeypatch.setattr(trainer.scaler, "unscale_", lambda *a: calls.append("unscale"))
    trainer.train_step()
    assert calls == [1]


def _run(config, steps: int, resume: bool = False) -> tuple[Trainer, torch.Tensor]:
    trainer = Trainer(config, data=small_data(), resume=resume)
    losses = torch.stack([trainer.train_step() for _ in range(steps)])
    trainer.save()
    return trainer, losses


@pytest.mark.parametrize("scope", ["loss", "network"])
def test_compiled_training_equals_eager_and_checkpoints_and_resumes_the_uncompiled_module(tmp_path, monkeypatch,
                                                                                          scope):
    """torch.compile with the 'eager' backend runs the captured graphs with the eager kernels, so the
    compiled trainer must take bitwise the eager one's steps (dropout 0.1 included): the random streams
    are untouched, the checkpoint holds plain module keys, and a compiled resume continues exactly."""
    compiled = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or real_compile(fn, **kw))
    eager, eager_losses = _run(small_config(tmp_path / "eager"), 4)
    assert compiled == []  # auto on the CPU: no compile
    opts = dict(compile=True, compile_backend="eager", compile_scope=scope)
    fast, fast_losses = _run(small_config(tmp_path / "fast", **opts), 4)
    target = fast.model if scope == "network" else fast._network_loss
    assert compiled == [target]
    assert torch.equal(fast_losses, eager_losses)
    state = torch.load(tmp_path / "fast" / "last.pt", weights_only=True)
    assert list(state["model"]) == list(eager.model.state_dict())  # no "_orig_mod." prefix
    for key, value in eager.model.state_dict().items():
        assert torch.equal(state["model"][key], value), key
        assert torch.equal(state["ema"][key], eager.ema.state_dict()[key]), key
    _run(small_config(tmp_path / "half", **opts), 2)
    resumed, resumed_losses = _run(small_config(tmp_path / "half", **opts), 2, resume=True)
    assert resumed.step == 4 and torch.equal(resumed_losses, eager_losses[2:])
    for key, value in eager.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_train_flags_of_the_options(tmp_path, capsys):
    parse = build_parser().parse_args
    auto = train_config_from_args(parse(["train"]))
    assert all(getattr(auto, name) is None for name in AUTO_FIELDS)
    assert (auto.compile_scope, auto.compile_backend) == ("loss", "inductor")
    off = train_config_from_args(parse(["train", "--no-compile", "--no-cudnn-benchmark", "--no-tf32-matmul",
                                        "--no-ddp-bucket-view"]))
    assert all(getattr(off, name) is False for name in AUTO_FIELDS)
    on = train_config_from_args(parse(["train", "--compile", "--compile-scope", "network", "--compile-backend",
                                       "aot_eager", "--cudnn-benchmark"]))
    assert (on.compile, on.compile_scope, on.compile_backend, on.cudnn_benchmark) == (True, "network", "aot_eager",
                                                                                      True)
    assert main(["train", "--compile-scope", "everything", "--out", str(tmp_path)]) == 2
    assert "compile_scope" in capsys.readouterr().err


def test_the_run_announces_its_speed_options(tmp_path, capsys):
    argv = ["train", "--preset", "tiny", "--data", "mnist-offline", "--steps", "1", "--batch-size", "2",
            "--sample-every", "0", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert "speed options: none" in capsys.readouterr().err


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(small_config(out, steps=3, dropout=0.0, compile_backend="eager", **ALL_ON), data=small_data())
    assert trainer.net.gradient_as_bucket_view and trainer._loss_fn is not trainer._network_loss  # DDP, compiled
    trainer.fit()
    trainer.close()


@pytest.mark.slow
def test_ddp_with_every_option_on_gives_the_single_process_update(tmp_path):
    single = Trainer(small_config(tmp_path / "single", steps=3, dropout=0.0), data=small_data())
    single.fit()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert state["step"] == 3
    for key, value in single.model.state_dict().items():
        # as in test_distributed: only the order of the gradient sums differs (float32 rounding)
        torch.testing.assert_close(state["model"][key], value, atol=1e-6, rtol=1e-5, msg=key)
        torch.testing.assert_close(state["ema"][key], single.ema.state_dict()[key], atol=1e-6, rtol=1e-5, msg=key)
    initial = Trainer(small_config(tmp_path / "init", dropout=0.0), data=small_data()).model.state_dict()
    assert any(not torch.allclose(initial[k], v, atol=1e-4) for k, v in state["model"].items())


def _cuda_defaults_check(tmp_path, device: str, **force) -> None:
    """What the GPU test checks, with ``force`` standing in for CUDA's auto values where there is none."""
    def cfg(out, **kw):
        return small_config(out, device=device, dropout=0.0, **{**force, **kw})

    eager = Trainer(cfg(tmp_path / "eager", compile=False), data=small_data())
    fast = Trainer(cfg(tmp_path / "fast"), data=small_data())
    assert fast.speed.compile and fast.speed.compile_scope == "loss" and fast.speed.cudnn_benchmark
    # same weights, batch, t and ε: the compiled loss is the eager one up to 16-bit rounding (4 bf16 ulps)
    torch.testing.assert_close(fast.train_step(), eager.train_step(), rtol=2**-6, atol=0)
    straight = Trainer(cfg(tmp_path / "straight"), data=small_data())
    straight.fit()
    Trainer(cfg(tmp_path / "half", steps=2), data=small_data()).fit()
    resumed = Trainer(cfg(tmp_path / "half"), data=small_data(), resume=True)
    assert resumed.step == 2
    resumed.fit()
    state = torch.load(tmp_path / "half" / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 4 and list(state["model"]) == list(state["ema"]) == list(eager.model.state_dict())
    # cuDNN's benchmark may pick other kernels after the resume: not bitwise, but each of the 2 resumed
    # Adam steps moves a weight by at most lr (1 - beta1) / sqrt(1 - beta2) ~ 3.2 lr, on either side
    lr = straight.config.lr
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(state["model"][key], value.cpu(), atol=2 * 2 * 3.2 * lr, rtol=0, msg=key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_defaults_compile_the_loss_train_like_eager_and_resume(tmp_path):
    _cuda_defaults_check(tmp_path, "cuda")


@pytest.mark.slow
def test_the_cuda_check_passes_on_the_cpu_with_the_options_forced_on(tmp_path):
    _cuda_defaults_check(tmp_path, "cpu", compile=True, compile_backend="eager", cudnn_benchmark=True)
