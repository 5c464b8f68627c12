"""``Batch.minibatches``: each epoch's minibatches partition the rollout, advantages standardized
within each minibatch; a single full-batch pass is the batch itself, standardized over all of it."""

from __future__ import annotations

import pytest
import torch

from rlcamp.rollout.buffer import Batch, BatchMemory


def numbered_batch(n: int) -> Batch:
    """Rows that name themselves: ``obs[i] = i``; advantages with a nonzero mean and spread."""
    torch.manual_seed(0)
    rows = torch.arange(n, dtype=torch.float32)
    return Batch(
        obs=rows[:, None],
        actions=rows.long(),
        log_probs=-rows,
        values=2 * rows,
        advantages=3.0 + 5.0 * torch.randn(n),
        returns=rows + 1,
    )


@pytest.mark.parametrize(("epochs", "n"), [(1, 4), (3, 4), (2, 1), (2, 8)])
def test_each_epoch_partitions_the_rollout_with_per_minibatch_normalization(epochs, n):
    batch = numbered_batch(32)
    minibatches = list(batch.minibatches(epochs, n, normalize_advantage=True))
    assert len(minibatches) == epochs * n
    for epoch in range(epochs):
        parts = minibatches[epoch * n : (epoch + 1) * n]
        ids = torch.cat([mb.obs[:, 0] for mb in parts]).long()
        assert sorted(ids.tolist()) == list(range(32))  # every row exactly once
        for mb in parts:
            rows = mb.obs[:, 0].long()
            for field in ("actions", "log_probs", "values", "returns"):  # rows stay aligned
                torch.testing.assert_close(getattr(mb, field), getattr(batch, field)[rows])
            raw = batch.advantages[rows]
            torch.testing.assert_close(mb.advantages, (raw - raw.mean()) / (raw.std() + 1e-8))
    torch.testing.assert_close(batch.advantages, numbered_batch(32).advantages)  # the rollout is untouched


def test_epochs_are_shuffled_independently():
    batch = numbered_batch(32)
    first, second = (mb.obs[:, 0] for mb in batch.minibatches(2, 1, normalize_advantage=False))
    assert sorted(first.tolist()) == sorted(second.tolist()) and not torch.equal(first, second)


def test_one_pass_of_one_minibatch_is_the_whole_batch_in_order():
    batch = numbered_batch(16)
    raw = batch.advantages.clone()
    (only,) = batch.minibatches(1, 1, normalize_advantage=True)
    torch.testing.assert_close(only.obs[:, 0], torch.arange(16.0))
    torch.testing.assert_close(only.advantages, (raw - raw.mean()) / (raw.std() + 1e-8))


def test_without_normalization_advantages_are_the_rollouts():
    batch = numbered_batch(16)
    for mb in batch.minibatches(2, 4, normalize_advantage=False):
        torch.testing.assert_close(mb.advantages, batch.advantages[mb.obs[:, 0].long()])


def test_a_dict_observation_is_indexed_and_split_key_by_key():
    """Each key's rows follow the other fields through the shuffle and the split, in its own dtype."""
    batch = numbered_batch(32)
    rows = batch.obs[:, 0]
    batch.obs = {"count": rows[:, None], "frame": rows.to(torch.uint8)[:, None, None].expand(32, 2, 2)}
    minibatches = list(batch.minibatches(2, 4, normalize_advantage=False))
    assert len(minibatches) == 8 and all(len(mb) == 8 for mb in minibatches)
    for mb in minibatches:
        assert mb.obs["frame"].dtype == torch.uint8 and mb.obs["frame"].shape == (8, 2, 2)
        torch.testing.assert_close(mb.obs["frame"][:, 0, 0].float(), mb.obs["count"][:, 0])
        torch.testing.assert_close(mb.values, 2 * mb.obs["count"][:, 0])


def recurrent_batch(steps: int, width: int) -> Batch:
    """``numbered_batch`` as ``width`` env columns of ``steps`` steps (row ``t·width + env``), with
    the state before each row naming the row and an episode start every 3rd step."""
    batch = numbered_batch(steps * width)
    rows = torch.arange(steps * width, dtype=torch.float32)
    starts = ((rows // width) % 3 == 0).float()
    batch.memory = BatchMemory(torch.stack([rows, -rows], 1), starts, width)
    return batch


@pytest.mark.parametrize(("seq_len", "n"), [(None, 2), (4, 4), (2, 8), (8, 1)])
def test_sequence_minibatches_are_whole_time_ordered_chunks(seq_len, n):
    """Each minibatch is ``seq_len``-step chunks of env columns, time-major, starting from the
    state stored before each chunk's first row, with its starts; an epoch covers every row once."""
    steps, width = 8, 4
    batch = recurrent_batch(steps, width)
    length = seq_len or steps
    minibatches = list(batch.minibatches(2, n, normalize_advantage=True, seq_len=seq_len))
    assert len(minibatches) == 2 * n
    for epoch in (minibatches[:n], minibatches[n:]):
        seen = torch.cat([minibatch.obs[:, 0] for minibatch in epoch]).long()
        assert sorted(seen.tolist()) == list(range(steps * width))
    for minibatch in minibatches:
        sequences = minibatch.sequences
        chunk = minibatch.obs[:, 0].long().view(length, -1)  # [L, sequences]
        assert torch.equal(chunk[1:] - chunk[:-1], torch.full_like(chunk[1:], width))  # one env, step by step
        assert torch.equal(sequences.state[:, 0].long(), chunk[0])  # the state stored before the first row
        assert torch.equal(sequences.starts, ((chunk // width) % 3 == 0).float())
        assert abs(float(minibatch.advantages.mean())) < 1e-5


def test_a_full_batch_pass_keeps_the_rollouts_sequences():
    """A2C's single pass reads the whole rollout from its first state, unshuffled."""
    batch = recurrent_batch(6, 2)
    (only,) = batch.minibatches(1, 1, normalize_advantage=False)
    assert only is batch
    assert torch.equal(only.sequences.state[:, 0], torch.tensor([0.0, 1.0]))
    assert only.sequences.starts.shape == (6, 2)
