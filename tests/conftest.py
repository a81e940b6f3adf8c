"""Shared fixtures for the minidiff tests."""

from __future__ import annotations

import pytest
import torch

import minidiff as md

torch.set_num_threads(1)  # the suite runs under xdist on 2 cores: one thread per worker


@pytest.fixture(scope="session")
def linear() -> md.Schedule:
    """The paper's schedule: linear β from 1e-4 to 0.02, T = 1000."""
    return md.get_schedule("linear", 1000)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
