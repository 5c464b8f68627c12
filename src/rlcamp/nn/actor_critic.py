"""The actor-critic: a policy head and a state-value head on encoders and MLP bodies (separate or
shared): ``obs → encoder → MLP body → head``.

Its methods are the network's interface: the collector, the algorithms, the numpy actor and the
checks call them and read none of its layers (``docs/architecture.md``, "The network's interface").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution

from rlcamp.config_checks import MEMORIES
from rlcamp.envs.masks import mask_space
from rlcamp.envs.normalize import RunningNormalizer
from rlcamp.errors import ConfigError
from rlcamp.nn.encoders import (
    DictEncoder,
    Encoder,
    FlattenEncoder,
    check_encoder,
    is_image_space,
    key_kind,
    select_obs_keys,
)
from rlcamp.nn.heads import CategoricalHead, GaussianHead, make_head, mask_logits
from rlcamp.nn.mlp import ACTIVATIONS, mlp, mlp_forward, orthogonal_init
from rlcamp.nn.recurrent import RecurrentCore, Sequences
from rlcamp.nn.rollout_actor import NUMPY_ACTIVATIONS, NumpyActor
from rlcamp.tree import Obs

# what NumpyActor reproduces: a subclass overriding one of these gets the torch actor
MIRRORED_METHODS = ("preprocess", "actor_features", "actor_params", "policy_params", "sample")
NUMPY_HEADS = (CategoricalHead, GaussianHead)


def flatten_trailing(obs: torch.Tensor, space: gym.Space) -> torch.Tensor:
    """``[..., *space.shape] -> [..., prod(space.shape)]`` as float32: a vector's network input."""
    return obs.reshape(*obs.shape[: obs.dim() - len(space.shape)], -1).float()


def split_action_mask(observation_space: gym.Space, action_mask_key: str, logits: int) -> gym.spaces.Dict:
    """The observation space without its action-mask key (the encoder never reads the mask), after
    checking the key is a ``Dict``'s with one flag per logit (one line naming the fix)."""
    if not isinstance(observation_space, gym.spaces.Dict) or action_mask_key not in observation_space.spaces:
        raise ConfigError(
            f"env.action_mask=obs:{action_mask_key}: the observation space {observation_space} has no "
            f"key {action_mask_key!r}; name a Dict observation key, or info:<key> for an info entry"
        )
    shape = observation_space[action_mask_key].shape
    if shape != (logits,):
        raise ConfigError(
            f"the action mask {action_mask_key!r} has shape {shape}, but the policy has {logits} logits "
            "(Discrete n, MultiDiscrete Σnvec); make the env report one flag per action"
        )
    rest = {key: space for key, space in observation_space.spaces.items() if key != action_mask_key}
    return gym.spaces.Dict(rest)


def key_input(space: gym.Space) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one ``Dict`` key as stored: an image's own uint8 ``[C, H, W]``, a vector
    flattened to float32, a ``Discrete`` index as int64 (one-hot in the encoder)."""
    kind = key_kind(space)
    if kind == "image":
        return tuple(space.shape), np.dtype(np.uint8)
    if kind == "discrete":
        return (), np.dtype(np.int64)
    return (int(math.prod(space.shape)),), np.dtype(np.float32)


class ActorCritic(nn.Module):
    """``π_θ(a|s)`` and ``V_φ(s)``.

    Every method takes *network inputs*: raw observations after ``preprocess``. The rollout
    collector stores those inputs, so the update sees exactly what the acting policy saw.
    ``shared=True`` puts both heads on one encoder and body (``network=mlp_shared``, the CNN
    networks); by default the actor and the critic have separate ones (PPO detail #13 for MuJoCo).
    ``encoder`` builds the encoder from the observation space (``rlcamp.nn.encoders``; None: the
    flat vector itself, the MLP path); ``hidden_sizes`` may be empty (heads on the encoder's
    features, the CNN networks). ``act_on_device=True`` runs the
    rollout's per-step actor as torch on the policy's device (a GPU with ``trainer=gpu``: many envs)
    instead of the numpy copy on the CPU (``nn/rollout_actor.py``), which the update on the GPU keeps.

    A ``Dict`` observation space stays a dict of tensors, one per key of ``obs_keys`` (default every
    key) in its own dtype (``key_input``), encoded by a ``DictEncoder`` (``encoder`` for its image
    keys); ``normalize_obs`` normalizes each vector key with its own running statistics.

    ``action_mask_key`` names the ``Dict`` key holding a boolean invalid-action mask (``env.action_mask``;
    Discrete and MultiDiscrete actions only): the encoder does not read it, the rollout stores it with
    the observation (bool), and ``policy_params`` applies it, so every policy computation (sampling,
    mode, log-probability, entropy, KL, Fisher) is the masked distribution's.

    ``memory`` (``lstm``, ``gru``; ``none``: feed-forward) puts a recurrent core of ``memory_size``
    units between the encoder and the MLP body (``rlcamp.nn.recurrent``): one for the actor and one
    for the critic, or one for both when ``shared`` or ``memory_shared``. A recurrent network's
    methods read rows as sequences (``memory``: a ``Sequences``) and its state is one flat row per env
    (``initial_state``); ``step`` advances it in the rollout.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        shared: bool = False,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        clip_obs: float = 10.0,
        act_on_device: bool = False,
        encoder: Callable[[gym.Space], Encoder] | None = None,
        obs_keys: Sequence[str] | None = None,
        action_mask_key: str | None = None,
        memory: str = "none",
        memory_size: int = 128,
        memory_shared: bool = False,
    ) -> None:
        super().__init__()
        if memory not in MEMORIES:
            raise ConfigError(f"network.memory={memory!r}: choose one of {', '.join(MEMORIES)}")
        make_encoder = encoder or FlattenEncoder
        head_space = observation_space  # the observation without its action mask
        if action_mask_key is not None:
            head_space = split_action_mask(observation_space, action_mask_key, mask_space(action_space).n)
        self.action_mask_key = action_mask_key
        self.input_space = select_obs_keys(head_space, obs_keys)  # the keys read, or None
        check_encoder(make_encoder, self.input_space or observation_space, normalize_obs)
        self.observation_space = observation_space
        self.action_space = action_space
        self.image_obs = is_image_space(observation_space)  # uint8 [C, H, W] frames, a CNN encoder
        self.obs_normalizer: RunningNormalizer | None = None
        self.key_normalizers = nn.ModuleDict()
        if self.input_space is not None:
            vectors = [key for key, space in self.input_space.spaces.items() if key_kind(space) == "vector"]
            for key in vectors if normalize_obs else []:
                self.key_normalizers[key] = RunningNormalizer(
                    key_input(self.input_space[key])[0], clip=clip_obs
                )
            make_dict_encoder = partial(DictEncoder, self.input_space, make_encoder)
            self.actor_encoder: Encoder = make_dict_encoder()
            self.critic_encoder = self.actor_encoder if shared else make_dict_encoder()
        else:
            obs_dim = int(math.prod(observation_space.shape))
            self.obs_normalizer = RunningNormalizer((obs_dim,), clip=clip_obs) if normalize_obs else None
            self.actor_encoder = make_encoder(observation_space)
            self.critic_encoder = self.actor_encoder if shared else make_encoder(observation_space)
        in_features = self.actor_encoder.features_dim
        self.memory = memory
        self.actor_core: RecurrentCore | None = None
        self.critic_core: RecurrentCore | None = None
        if memory != "none":
            self.actor_core = RecurrentCore(memory, in_features, memory_size)
            separate = not (shared or memory_shared)
            self.critic_core = (
                RecurrentCore(memory, in_features, memory_size) if separate else self.actor_core
            )
            in_features = memory_size
        self.actor_body = mlp(in_features, hidden_sizes, activation, ortho_init)
        self.critic_body = (
            self.actor_body if shared else mlp(in_features, hidden_sizes, activation, ortho_init)
        )
        features = hidden_sizes[-1] if hidden_sizes else in_features
        self.head = make_head(features, action_space, log_std_init)
        self.value_head = nn.Linear(features, 1)
        if ortho_init:
            orthogonal_init(self.value_head, 1.0)
        self.shared = shared
        self.activation = activation
        self.act_on_device = act_on_device

    # ------------------------------------------------------------- what the rollout stores
    @property
    def is_discrete(self) -> bool:
        """Whether an action is one integer (Discrete); MultiDiscrete and MultiBinary are arrays."""
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def dict_obs(self) -> bool:
        """Whether observations are dicts of tensors (a ``Dict`` space)."""
        return self.input_space is not None

    @property
    def input_shape(self) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
        """The shape of one observation as ``preprocess`` returns it (what the rollout stores):
        an image's own ``[C, H, W]``, else the flat vector; per key for a ``Dict`` (``key_input``), the
        action mask's ``(n,)`` among them."""
        if self.input_space is not None:
            shapes = {key: key_input(space)[0] for key, space in self.input_space.spaces.items()}
            if self.action_mask_key is not None:
                shapes[self.action_mask_key] = mask_space(self.action_space).shape
            return shapes
        if self.image_obs:
            return tuple(self.observation_space.shape)
        return (int(math.prod(self.observation_space.shape)),)

    @property
    def input_dtype(self) -> np.dtype | dict[str, np.dtype]:
        """The dtype of raw and stored observations: uint8 images (the encoder makes them float on
        the module's device), float32 vectors; per key for a ``Dict`` (int64 ``Discrete`` keys, a bool
        action mask)."""
        if self.input_space is not None:
            dtypes = {key: key_input(space)[1] for key, space in self.input_space.spaces.items()}
            if self.action_mask_key is not None:
                dtypes[self.action_mask_key] = np.dtype(np.bool_)
            return dtypes
        return np.dtype(np.uint8 if self.image_obs else np.float32)

    @property
    def action_shape(self) -> tuple[int, ...]:
        """One action's shape as the rollout stores it: ``()`` (Discrete), ``(act_dim,)`` (Box),
        ``(len(nvec),)`` (MultiDiscrete) or the space's shape (MultiBinary)."""
        return self.head.action_shape

    @property
    def action_dtype(self) -> np.dtype:
        """int64 (Discrete, MultiDiscrete), float32 (Box), int8 (MultiBinary: the env's own dtype)."""
        return self.head.action_dtype

    def noise(self, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """The head's sampling noise for ``shape`` actions (``sample`` turns it into actions)."""
        return self.head.noise(shape, device)

    def preprocess(self, raw_obs: Obs) -> Obs:
        """Network input of raw observations: images stay integer (``uint8 [..., C, H, W]``); vectors
        are flattened to float, then normalized if normalization is on; a ``Dict``'s keys each so
        (its ``Discrete`` keys as int64 indices)."""
        if self.input_space is not None:
            spaces = self.input_space.spaces
            obs = {key: self._preprocess_key(key, space, raw_obs[key]) for key, space in spaces.items()}
            mask = self.action_mask_key
            return obs if mask is None else {**obs, mask: raw_obs[mask].to(torch.bool)}
        if self.image_obs:
            return raw_obs.to(torch.uint8)
        obs = flatten_trailing(raw_obs, self.observation_space)
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def _preprocess_key(self, key: str, space: gym.Space, raw: torch.Tensor) -> torch.Tensor:
        kind = key_kind(space)
        if kind == "image":
            return raw.to(torch.uint8)
        if kind == "discrete":
            return raw.long()
        obs = flatten_trailing(raw, space)
        return self.key_normalizers[key](obs) if key in self.key_normalizers else obs

    @property
    def normalizes_obs(self) -> bool:
        """Whether ``preprocess`` normalizes with running statistics (``update_obs_statistics``)."""
        return bool(self.running_statistics())

    def statistics_inputs(self, raw_obs: Obs) -> Obs:
        """The part of raw observations the running statistics are of: all of a flat one, a
        ``Dict``'s normalized keys (what the collector keeps for ``update_obs_statistics``)."""
        if self.input_space is None:
            return raw_obs
        return {key: raw_obs[key] for key in self.key_normalizers}

    def update_obs_statistics(self, raw_obs: Obs) -> None:
        """Merge a rollout's raw observations (``statistics_inputs``) into the running statistics."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(raw_obs)
        for key, normalizer in self.key_normalizers.items():
            normalizer.update(raw_obs[key])

    def running_statistics(self) -> list[RunningNormalizer]:
        """The normalizers whose statistics DDP ranks must share (``utils.distributed``)."""
        flat = [self.obs_normalizer] if self.obs_normalizer is not None else []
        return [*flat, *self.key_normalizers.values()]

    # ------------------------------------------------------------- parameter groups
    def actor_parameters(self) -> list[nn.Parameter]:
        """θ: the actor's encoder and body (shared or not) and the policy head (a Gaussian's
        ``log σ`` included)."""
        core = [] if self.actor_core is None else [*self.actor_core.parameters()]
        return [
            *self.actor_encoder.parameters(),
            *core,
            *self.actor_body.parameters(),
            *self.head.parameters(),
        ]

    def critic_parameters(self) -> list[nn.Parameter]:
        """φ: the value head, and the critic encoder and body when they are not the actor's."""
        trunk = [] if self.shared else [*self.critic_encoder.parameters(), *self.critic_body.parameters()]
        core = (
            []
            if self.critic_core is None or self.critic_core is self.actor_core
            else [*self.critic_core.parameters()]
        )
        return [*trunk, *core, *self.value_head.parameters()]

    # ------------------------------------------------------------- recurrent state
    @property
    def recurrent(self) -> bool:
        """Whether the network has a recurrent core (``network.memory``)."""
        return self.actor_core is not None

    @property
    def state_size(self) -> int:
        """Floats in one env's state row: the actor core's, then the critic core's where it has its own."""
        if self.actor_core is None or self.critic_core is None:
            return 0
        own = 0 if self.critic_core is self.actor_core else self.critic_core.state_size
        return self.actor_core.state_size + own

    def initial_state(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """``[n, state_size]`` zeros, the state before an env's first step; None when feed-forward."""
        return torch.zeros(n, self.state_size, device=device) if self.recurrent else None

    def _trunk(
        self, critic: bool, obs: Obs, memory: Sequences | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder, recurrent core (if any, from ``memory``'s state) and MLP body of the actor or the
        critic: ``(features, that core's state after the last step)``."""
        encoder, core, body = (
            (self.critic_encoder, self.critic_core, self.critic_body)
            if critic
            else (self.actor_encoder, self.actor_core, self.actor_body)
        )
        x = encoder(obs)
        if core is None:
            return mlp_forward(body, x), None
        if memory is None:
            raise ValueError(
                f"network.memory={self.memory}: this policy reads sequences; pass memory=Sequences"
            )
        split = self.actor_core.state_size
        own = critic and core is not self.actor_core
        x, state = core.unroll(x, memory.state[:, split:] if own else memory.state[:, :split], memory.starts)
        return mlp_forward(body, x), state

    def actor_features(self, obs: Obs, memory: Sequences | None = None) -> torch.Tensor:
        """The actor trunk's output: encoder, recurrent core (``memory``), then MLP body."""
        return self._trunk(False, obs, memory)[0]

    def critic_features(self, obs: Obs, memory: Sequences | None = None) -> torch.Tensor:
        """The critic trunk's output (the actor's when ``shared``)."""
        return self._trunk(True, obs, memory)[0]

    # ------------------------------------------------------------- the policy
    def actor_params(self, obs: Obs, memory: Sequences | None = None) -> torch.Tensor:
        """Logits (Discrete, MultiDiscrete, MultiBinary) or the Gaussian mean (Box), masked."""
        return self.policy_params(self.actor_features(obs, memory), obs)

    def policy_params(self, features: torch.Tensor, obs: Obs) -> torch.Tensor:
        """The head's output on the actor's ``features``, invalid actions' logits masked (``mask_logits``)
        with the observation's mask: the one place a mask enters the policy."""
        params = self.head(features)
        return params if self.action_mask_key is None else mask_logits(params, obs[self.action_mask_key])

    def distribution_params(self, obs: Obs) -> tuple[torch.Tensor, ...]:
        """The tensors that fix ``π_θ(·|s)`` (the head's ``distribution_params``)."""
        return self.head.distribution_params(self.actor_params(obs))

    def kl(self, old: tuple[torch.Tensor, ...], obs: Obs) -> torch.Tensor:
        """``KL(π_old(·|s) ‖ π_θ(·|s))`` per state, ``old`` from ``distribution_params``."""
        return self.head.kl(old, self.distribution_params(obs))

    def fisher_diagonal(self) -> list[tuple[nn.Parameter, float]]:
        """Free parameters of the head with their exact diagonal Fisher (a Gaussian's ``log σ``)."""
        return self.head.fisher_diagonal()

    def log_prob_entropy(
        self, obs: Obs, actions: torch.Tensor, memory: Sequences | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log π_θ(a|s), H[π_θ(·|s)])``, running the actor only."""
        return self.head.log_prob_entropy(self.actor_params(obs, memory), actions)

    def distribution(self, obs: Obs, memory: Sequences | None = None) -> Distribution:
        """``π_θ(·|s)`` as a ``torch.distributions`` object."""
        return self.head.distribution(self.actor_params(obs, memory))

    def value(self, obs: Obs, memory: Sequences | None = None, detach_shared: bool = False) -> torch.Tensor:
        """``V_φ(s)``, shape ``[...]``. ``detach_shared``: on a shared body, stop the gradient at its
        features, so a critic-only loss never moves the actor (NPG/TRPO's value fit)."""
        features = self.critic_features(obs, memory)
        if detach_shared and self.shared:
            features = features.detach()
        return self.value_head(features).squeeze(-1)

    def actor_and_value(self, obs: Obs) -> tuple[Distribution, torch.Tensor]:
        """``π_θ(·|s)`` and ``V_φ(s)`` with every layer run exactly once (ACKTR's K-FAC capture)."""
        if not self.shared:
            return self.distribution(obs), self.value(obs)
        features = self.actor_features(obs)
        dist = self.head.distribution(self.policy_params(features, obs))
        return dist, self.value_head(features).squeeze(-1)

    def act(
        self, obs: Obs, deterministic: bool = False, memory: Sequences | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``a ~ π_θ(·|s)`` (or take its mode) and return ``(a, log π_θ(a|s), V_φ(s))``."""
        params = self.actor_params(obs, memory)
        dist = self.head.distribution(params)
        action = self.head.mode(params) if deterministic else dist.sample()
        return action, dist.log_prob(action), self.value(obs, memory)

    def step(
        self, obs: Obs, memory: Sequences, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a recurrent policy on ``[B]`` envs (the rollout's, an evaluation's): the action
        from ``noise`` (None: the mode) and the state after the step, the critic's core advanced too."""
        features, state = self._trunk(False, obs, memory)
        params = self.policy_params(features, obs)
        action = self.head.mode(params) if noise is None else self.head.sample(params, noise)
        if self.critic_core is not self.actor_core:
            state = torch.cat([state, self._trunk(True, obs, memory)[1]], dim=-1)
        return action, state

    def sample(self, obs: Obs, noise: torch.Tensor) -> torch.Tensor:
        """Rollout hot path: an action from pre-drawn ``noise``, running the actor only."""
        return self.head.sample(self.actor_params(obs), noise)

    def numpy_actor(self) -> NumpyActor | None:
        """A numpy copy of ``preprocess`` + ``sample`` with the current parameters, or None where
        this network cannot promise it computes exactly that.

        It can when nothing a subclass changes is in the way: ``preprocess``, ``actor_params`` and
        ``sample`` are this class's, the actor body is ``Linear`` layers and this network's activation
        (which has a numpy form), and the head is a plain Categorical or Gaussian. Anything else
        (a ``LayerNorm``, a MultiDiscrete or MultiBinary head, a ``Dict``'s encoder, an action mask,
        a recurrent core) runs through torch instead of sampling another policy.
        """
        own = all(getattr(type(self), name) is getattr(ActorCritic, name) for name in MIRRORED_METHODS)
        activation = ACTIVATIONS.get(self.activation)
        body = all(type(m) in (nn.Linear, activation) for m in self.actor_body)
        flat = type(self.actor_encoder) is FlattenEncoder
        if not (
            self.action_mask_key is None
            and self.actor_core is None
            and own
            and flat
            and body
            and self.activation in NUMPY_ACTIVATIONS
            and type(self.head) in NUMPY_HEADS
        ):
            return None
        norm = self.obs_normalizer
        return NumpyActor(
            layers=[(m.weight, m.bias) for m in self.actor_body if isinstance(m, nn.Linear)],
            head=(self.head.linear.weight, self.head.linear.bias),
            activation=self.activation,
            log_std=getattr(self.head, "log_std", None),
            normalizer=None if norm is None else (norm.scale, norm.bias, norm.clip),
        )

    def evaluate_actions(
        self, obs: Obs, actions: torch.Tensor, memory: Sequences | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π_θ(a|s), H[π_θ(·|s)], V_φ(s))`` for a batch (rows, or ``memory``'s sequences),
        without distribution objects."""
        if self.shared:
            features = self.actor_features(obs, memory)
            log_prob, entropy = self.head.log_prob_entropy(self.policy_params(features, obs), actions)
            return log_prob, entropy, self.value_head(features).squeeze(-1)
        log_prob, entropy = self.head.log_prob_entropy(self.actor_params(obs, memory), actions)
        return log_prob, entropy, self.value(obs, memory)
