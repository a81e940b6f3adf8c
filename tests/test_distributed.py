"""DDP: two CPU processes (gloo) take the same optimizer steps as one process on the combined batch.

Also: devices are checked before any work, and the ranks agree on where a signal stops the run.
"""

import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp
from test_trainer import small_config, small_data

from minidiff.training import Trainer
from minidiff.training.distributed import resolve_device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(small_config(out, steps=3, dropout=0.0), data=small_data())
    assert trainer.dist.world_size == world_size and trainer.batcher.world_size == world_size
    trainer.fit()
    trainer.close()


@pytest.mark.slow
def test_two_gloo_processes_give_the_same_update_as_one_process_with_the_combined_batch(tmp_path):
    single = Trainer(small_config(tmp_path / "single", steps=3, dropout=0.0), data=small_data())
    single.fit()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert state["step"] == 3
    for key, value in single.model.state_dict().items():
        # Same batch, same t and ε; only the order of the gradient sums differs (float32 rounding).
        torch.testing.assert_close(state["model"][key], value, atol=1e-6, rtol=1e-5, msg=key)
    # ...and the steps did move the weights, so the comparison is not between two untouched networks.
    initial = Trainer(small_config(tmp_path / "init", dropout=0.0), data=small_data()).model.state_dict()
    assert any(not torch.allclose(initial[k], v, atol=1e-4) for k, v in state["model"].items())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_cuda_device_on_a_machine_without_cuda_is_a_value_error_naming_it(device):
    with pytest.raises(ValueError, match=rf"device = '{device}' asks for CUDA, but CUDA is not available"):
        resolve_device(device)


def test_devices_that_exist_resolve_and_nonsense_is_refused():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got device = 'gpu'"):
        resolve_device("gpu")


def _signal_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(small_config(out, steps=6, dropout=0.0), data=small_data())
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += module.training
        if rank == 1 and calls["n"] == 2:
            signal.raise_signal(signal.SIGTERM)  # only rank 1 is told to stop, during step 2

    trainer.model.register_forward_hook(hook)
    result = trainer.fit()
    # Both ranks stop after step 3 (the flag is read one step late) and save there together.
    assert result["step"] == 3 and trainer.stopped_by == signal.SIGTERM, (rank, result, trainer.stopped_by)
    trainer.close()


@pytest.mark.slow
def test_a_signal_on_one_rank_stops_every_rank_at_the_same_step_with_one_checkpoint(tmp_path):
    mp.spawn(_signal_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3


def _seed_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(small_config(out, steps=1), data=small_data())
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ema = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    dropout_draw = torch.rand(8)  # the global stream dropout draws from, right after set-up
    torch.save({"weights": weights, "ema": ema, "dropout": dropout_draw}, f"{out}/rank{rank}.pt")
    trainer.close()


@pytest.mark.slow
def test_every_rank_starts_from_the_same_weights_and_ema_with_its_own_dropout_stream(tmp_path):
    """Issue 15, item 6: the same seed for the weights on every rank, the EMA a copy of them; dropout per rank."""
    mp.spawn(_seed_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    single = Trainer(small_config(tmp_path / "single", steps=1), data=small_data())
    for key, value in r0["weights"].items():
        assert torch.equal(value, r1["weights"][key]) and torch.equal(value, single.model.state_dict()[key]), key
        assert torch.equal(r0["ema"][key], value) and torch.equal(r1["ema"][key], value), key
    assert torch.equal(r0["dropout"], torch.rand(8))  # rank 0 continues the stream of a single process...
    assert not torch.equal(r0["dropout"], r1["dropout"])  # ...and rank 1 has its own
