"""DDP: two CPU processes (gloo) take the same optimizer steps as one process on the combined batch."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from test_trainer import small_config, small_data

from minidiff.training import Trainer


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
