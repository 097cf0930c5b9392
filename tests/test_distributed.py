"""DDP on CPU (gloo): equal shards, and two processes that end with identical weights."""

import pytest
import torch

from lib.training.distributed import run_distributed, shard


@pytest.mark.parametrize("n,world", [(9, 2), (4, 2), (5, 3), (1, 2)])
def test_shards_are_equal_sized_and_cover_everything(n, world):
    items = list(range(n))
    shards = [shard(items, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    assert set().union(*shards) == set(items)
    assert shard([], 0, world) == []


def _train_toy(out_dir: str) -> None:
    import torch.distributed as dist

    torch.manual_seed(0)  # same initial weights on every rank, as DDP requires
    net = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(dist.get_rank())  # different data per rank
    for _ in range(3):
        opt.zero_grad()
        loss = net(torch.randn(8, 4, generator=g)).pow(2).mean()
        loss.backward()
        opt.step()
    torch.save(net.module.state_dict(), f"{out_dir}/rank{dist.get_rank()}.pt")


def test_two_gloo_processes_stay_in_sync(tmp_path):
    run_distributed(_train_toy, 2, (str(tmp_path),))
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    with pytest.raises(ValueError):
        run_distributed(_train_toy, 1, (str(tmp_path),))
