"""The budget table, train-or-load and the run card (minidiff/training/budgets.py)."""

from __future__ import annotations

import pytest
import torch

from minidiff.training import budgets
from minidiff.training.budgets import RUNS, budget_config, budget_name, finished_run, run_card, train_or_load


def test_every_budget_of_every_chapter_makes_a_valid_config(tmp_path):
    for chapter, by_budget in RUNS.items():
        assert set(by_budget) == set(budgets.budget_names(chapter)), chapter
        for budget, runs in by_budget.items():
            for run in runs:
                c = budget_config(chapter, run, budget, root=tmp_path)
                assert c.out == str(tmp_path / chapter / budget / run)
                assert c.offline == (budget in ("smoke", "cpu"))  # only the gpu and paper budgets may download


def test_only_the_cifar10_chapter_has_the_paper_budget_and_it_is_the_papers_recipe(tmp_path):
    assert [c for c in RUNS if "paper" in RUNS[c]] == ["cifar10"]
    with pytest.raises(ValueError, match="paper"):
        budget_config("mnist", "main", "paper", root=tmp_path)
    c = budget_config("cifar10", "main", "paper", root=tmp_path)
    recipe = (c.preset, c.data, c.steps, c.batch_size, c.lr, c.warmup, c.grad_clip, c.ema_decay, c.dropout,
              c.T, c.schedule, c.variance, c.loss, c.flip)
    assert recipe == ("cifar10", "cifar10", 800_000, 128, 2e-4, 5000, 1.0, 0.9999, 0.1, 1000, "linear",
                      "fixed_large", "simple", None)
    # The gpu budget is the same recipe on a half-width network, shorter: only steps, width and schedule
    # lengths differ.
    g = budget_config("cifar10", "main", "gpu", root=tmp_path)
    assert (g.preset, g.data, g.batch_size, g.lr, g.ch, g.dropout) == ("cifar10", "cifar10", 128, 2e-4, 64, 0.1)


def test_cpu_budget_is_the_cpu_preset_recipe_and_smoke_is_short(tmp_path):
    assert budget_config("cifar10", "main", "cpu", root=tmp_path).preset == "cifar-cpu"
    c = budget_config("mnist", "main", "cpu", root=tmp_path)
    recipe = (c.preset, c.data, c.steps, c.batch_size, c.lr, c.ema_decay)
    assert recipe == ("cpu", "mnist-offline", 2700, 64, 1e-3, 0.995)
    for chapter in RUNS:
        for run in RUNS[chapter]["smoke"]:
            assert budget_config(chapter, run, "smoke", root=tmp_path).steps <= 20


def test_ablation_rows_are_the_papers_table_2(tmp_path):
    rows = {(c.parameterization, c.loss, c.variance) for run in RUNS["mnist_ablation"]["cpu"]
            for c in [budget_config("mnist_ablation", run, "cpu", root=tmp_path)]}
    assert rows == {(p, loss, v) for p in ("mu", "eps")
                    for loss, v in (("vlb", "learned_range"), ("vlb", "fixed_large"), ("simple", "fixed_large"))}


def test_budget_name_from_argument_environment_and_smoke(monkeypatch):
    monkeypatch.delenv("MINIDIFF_BUDGET", raising=False)
    monkeypatch.setenv("MINIDIFF_SMOKE", "1")
    assert budget_name() == "smoke"
    monkeypatch.setenv("MINIDIFF_BUDGET", "cpu")
    assert budget_name() == "cpu"
    assert budget_name("gpu") == "gpu"
    monkeypatch.delenv("MINIDIFF_BUDGET")
    monkeypatch.delenv("MINIDIFF_SMOKE")
    assert budget_name() == ("gpu" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("kwargs, bad", [({"budget": "laptop"}, "laptop"), ({"run": "nope"}, "nope"),
                                         ({"chapter": "cifar"}, "cifar")])
def test_bad_names_are_named(kwargs, bad, tmp_path):
    args = {"chapter": "mnist", "run": "main", "budget": "smoke", **kwargs}
    with pytest.raises(ValueError, match=bad):
        budget_config(args["chapter"], args["run"], args["budget"], root=tmp_path)


@pytest.mark.slow
def test_train_then_load_then_a_longer_budget_resumes(tmp_path):
    torch.set_num_threads(1)
    c = budget_config("mnist", "main", "smoke", root=tmp_path, steps=4, progress=False)
    assert finished_run(c) is None
    model, info = train_or_load(c)
    assert (info.action, info.step) == ("trained", 4) and not model.training
    again, info2 = train_or_load(c)
    assert info2.action == "loaded" and info2.step == 4
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # More steps of the same run: not finished, so it resumes to the new length.
    longer = budget_config("mnist", "main", "smoke", root=tmp_path, steps=6, progress=False)
    assert finished_run(longer) is None
    _, info3 = train_or_load(longer)
    assert (info3.action, info3.step) == ("trained", 6)
    # A different run in the same directory is an error naming the field, never overwritten.
    other = budget_config("mnist", "main", "smoke", root=tmp_path, steps=6, lr=5e-4, progress=False)
    with pytest.raises(Exception, match="lr"):
        train_or_load(other)
    card = run_card("mnist", "smoke", "cpu", {"main": info3}, 5000, sum(p.numel() for p in model.parameters()))
    for expected in ("budget 'smoke'", "CPU", "mnist-offline (5,000", "280,177", "6 steps at batch 16", "trained"):
        assert expected in card


@pytest.mark.slow
def test_a_diverging_run_is_recorded_and_reported_without_training_again(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    c = budget_config("mnist", "main", "smoke", root=tmp_path, steps=3, lr=1e30, grad_clip=0.0, progress=False)
    model, info = train_or_load(c)
    assert model is None and info.action == "diverged" and "non-finite" in info.message.lower()
    import minidiff.training.trainer as trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("trained again"))
    model, info = train_or_load(c)
    assert model is None and info.action == "diverged"
    assert "diverged" in run_card("mnist", "smoke", "cpu", {"main": info}, 5000, 1)


@pytest.mark.slow
def test_a_run_stopped_early_is_an_error_not_a_finished_model(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    import minidiff.training.trainer as trainer

    real_train = trainer.train
    c = budget_config("mnist", "main", "smoke", root=tmp_path, steps=4, progress=False)
    # A run that stops at step 2 of 4, as after Ctrl-C or SIGTERM.
    monkeypatch.setattr(trainer, "train", lambda config, **k: real_train(
        type(config)(**{**config.to_dict(), "steps": 2}), **k))
    with pytest.raises(RuntimeError, match="stopped before step 4"):
        train_or_load(c)
    monkeypatch.setattr(trainer, "train", real_train)
    _, info = train_or_load(c)  # resumes from step 2
    assert (info.action, info.step) == ("trained", 4)
