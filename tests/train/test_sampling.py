import pytest

from pegasus.train.sampling import EpochOrder, batch_size_for


def test_epoch_order_is_deterministic_and_changes_per_epoch():
    a = list(EpochOrder(10, epoch=3, seed=7))
    assert a == list(EpochOrder(10, epoch=3, seed=7))
    assert sorted(a) == list(range(10))
    assert a != list(EpochOrder(10, epoch=4, seed=7))


def test_ranks_partition_the_epoch_and_pad_equally():
    shards = [list(EpochOrder(10, epoch=0, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert {len(s) for s in shards} == {4}  # 10 frames → 12 slots, wrap-around padding
    assert set().union(*map(set, shards)) == set(range(10))


def test_start_skips_exactly_the_done_items():
    full = list(EpochOrder(9, epoch=2, seed=0, rank=1, world_size=2))
    assert list(EpochOrder(9, epoch=2, seed=0, rank=1, world_size=2, start=3)) == full[3:]


def test_batch_size_rule():
    assert batch_size_for(400, 80_000, 4) == 4
    assert batch_size_for(40_000, 80_000, 4) == 2
    assert batch_size_for(400_000, 80_000, 4) == 1
    with pytest.raises(ValueError):
        EpochOrder(0, epoch=0, seed=0)


def test_video_batches_hold_one_video_each_and_cover_the_epoch():
    from pegasus.train.sampling import VideoBatches

    videos = [0] * 7 + [1] * 5 + [2] * 2
    batches = list(VideoBatches(videos, batch_size=3, epoch=1, seed=4))
    assert all(len({videos[i] for i in batch}) == 1 and 1 <= len(batch) <= 3 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(len(videos)))
    assert len(batches) == 3 + 2 + 1
    assert batches == list(VideoBatches(videos, batch_size=3, epoch=1, seed=4))  # deterministic …
    assert batches != list(VideoBatches(videos, batch_size=3, epoch=2, seed=4))  # … and new each epoch
    shards = [list(VideoBatches(videos, 3, epoch=1, seed=4, rank=r, world_size=4)) for r in range(4)]
    assert [len(s) for s in shards] == [2, 2, 2, 2]  # 6 batches padded to 8 by wrap-around
    assert sorted(i for s in shards for b in s for i in b) == sorted(list(range(14)) + [i for b in batches[:2] for i in b])
    assert list(VideoBatches(videos, 3, epoch=1, seed=4, start=2)) == batches[2:]  # a resumed epoch
    with pytest.raises(ValueError, match="no frames"):
        VideoBatches([], 3, epoch=0, seed=0)
