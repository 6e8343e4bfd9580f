"""Shared test settings: one torch thread, since the tests' tiny tensors run fastest that way and
CI's two cores stay free for pytest itself."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
