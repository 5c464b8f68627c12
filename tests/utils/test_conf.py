"""Algorithms are shown by the config name they are chosen by."""

from __future__ import annotations

from rlcamp.utils.conf import algo_name


def test_an_algorithm_is_named_by_its_conf_algo_file():
    assert algo_name("rlcamp.algos.QActorCritic") == "actor_critic"
    assert algo_name("rlcamp.algos.PPOKL") == "ppo_kl"
    assert algo_name("rlcamp.algos.PPO") == "ppo"
    assert algo_name("examples.extending.AdvantageWeightedPG") == "advantageweightedpg"  # no conf/algo/ file
