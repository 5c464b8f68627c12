"""UpdateLog: per-step means over the steps that logged a key, rollout metrics, first-bad-step flags."""

import math

import pytest
import torch

from rlcamp.algos.update_log import UpdateLog
from rlcamp.errors import NonFiniteUpdateError


def test_row_averages_each_key_over_the_steps_that_logged_it_and_resets() -> None:
    log = UpdateLog()
    log.step({"train/loss": torch.tensor(1.0), "train/kl": torch.tensor(0.2)})
    log.step({"train/loss": torch.tensor(3.0)})
    log.step({"train/early_stop": torch.tensor(1.0)})
    log.rollout["train/explained_variance"] = torch.tensor(0.5)
    row = log.row()
    assert row == {
        "train/loss": 2.0,
        "train/kl": pytest.approx(0.2),
        "train/early_stop": 1.0,
        "train/explained_variance": 0.5,
    }
    assert all(isinstance(v, float) for v in row.values())
    assert log.row() == {}


def test_the_first_bad_step_names_the_cause() -> None:
    log, weights = UpdateLog(), [torch.ones(3)]
    log.flag(torch.tensor(1.0), torch.tensor(2.0))
    log.check_finite(weights, "rollout 1")  # all finite: no error
    log.flag(torch.tensor(1.0), torch.tensor(math.inf))  # the gradient first
    log.flag(torch.tensor(math.nan), torch.tensor(math.nan))  # then both
    with pytest.raises(NonFiniteUpdateError, match="non-finite gradient in the update of rollout 2"):
        log.check_finite(weights, "rollout 2")
    log.check_finite(weights, "rollout 3")  # the flags were consumed


def test_non_finite_weights_are_reported_without_a_flagged_step() -> None:
    with pytest.raises(NonFiniteUpdateError, match="non-finite weights"):
        UpdateLog().check_finite([torch.tensor([1.0, math.nan])], "rollout 1")
