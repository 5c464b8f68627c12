"""Encoders: what turns a stored observation into the feature vector the MLP bodies and heads read.

``conf/network/encoder/*.yaml`` pick one; ``ActorCritic`` builds it from the observation space
(one for both trunks when ``shared``, else one each). The MLP path's ``FlattenEncoder`` is the
identity on the flat float vector ``ActorCritic.preprocess`` stores; the image encoders take the
stored integer image (``uint8 [C, H, W]``) and convert it to float on the module's device, so a
rollout of frames stays uint8 until a minibatch is encoded. Trunk layers get orthogonal init with
gain √2 (CleanRL, SB3). A ``Dict`` observation gets a ``DictEncoder``: one encoder per key, chosen
by the key's space (``key_kind``), their features concatenated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcamp.errors import ConfigError


def is_image_space(space: gym.Space) -> bool:
    """An image: a ``Box`` of integers or booleans with 3 dims, channels first (``[C, H, W]``)."""
    return (
        isinstance(space, gym.spaces.Box)
        and len(space.shape) == 3
        and (np.issubdtype(space.dtype, np.integer) or space.dtype == np.bool_)
    )


def key_kind(space: gym.Space) -> str | None:
    """The encoder rule of one ``Dict`` key: ``image`` (the configured image encoder), ``vector``
    (any other ``Box``, flattened to float), ``discrete`` (a one-hot), None (no rule: ``Text``, ...)."""
    if is_image_space(space):
        return "image"
    if isinstance(space, gym.spaces.Box):
        return "vector"
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    return None


def select_obs_keys(space: gym.Space, obs_keys: Sequence[str] | None) -> gym.spaces.Dict | None:
    """The ``Dict`` of the keys the network reads (``network.obs_keys``, default every key), or
    None for a non-``Dict`` space; a key that is missing or has no encoder rule is refused in one line."""
    if not isinstance(space, gym.spaces.Dict):
        if obs_keys is not None:
            raise ConfigError(
                f"network.obs_keys selects keys of a Dict observation space, but this env's is {space}; "
                "remove network.obs_keys"
            )
        return None
    keys = list(space.spaces) if obs_keys is None else list(obs_keys)
    usable = [key for key, sub in space.spaces.items() if key_kind(sub) is not None]
    fix = f"list the keys to read in network.obs_keys=[{','.join(usable)}]"
    for key in keys:
        if key not in space.spaces:
            raise ConfigError(f"network.obs_keys names {key!r}, not a key of the observation space; {fix}")
        if key_kind(space[key]) is None:
            raise ConfigError(
                f"observation key {key!r} is a {type(space[key]).__name__} space, which no encoder "
                f"takes; {fix}"
            )
    if not keys:
        raise ConfigError(f"network.obs_keys is empty; {fix}")
    return gym.spaces.Dict({key: space[key] for key in keys})


def _ortho(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights with ``gain``, zero bias, for every conv and linear layer in ``module``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


class Encoder(nn.Module):
    """``features = encoder(stored_obs)``, ``[..., *obs_shape] -> [..., features_dim]``."""

    features_dim: int
    takes_images: bool = False


class FlattenEncoder(Encoder):
    """The MLP path: the stored observation is already the flat float vector; no parameters."""

    def __init__(self, observation_space: gym.Space) -> None:
        super().__init__()
        self.features_dim = int(math.prod(observation_space.shape))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs


class OneHotEncoder(Encoder):
    """A ``Discrete(n, start)`` key: its stored integer as a one-hot vector of ``n`` floats."""

    def __init__(self, observation_space: gym.spaces.Discrete) -> None:
        super().__init__()
        self.features_dim = int(observation_space.n)
        self.start = int(observation_space.start)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(obs.long() - self.start, self.features_dim).float()


class DictEncoder(Encoder):
    """A ``Dict`` observation: per key the image encoder (image keys), the flat vector (other
    ``Box`` keys) or a one-hot (``Discrete`` keys); features concatenated in the space's key order
    (gymnasium sorts a ``Dict``'s keys)."""

    def __init__(
        self, observation_space: gym.spaces.Dict, image_encoder: Callable[[gym.Space], Encoder]
    ) -> None:
        super().__init__()
        rules: dict[str, Callable[[gym.Space], Encoder]] = {
            "image": image_encoder,
            "vector": FlattenEncoder,
            "discrete": OneHotEncoder,
        }
        self.encoders = nn.ModuleDict(
            {key: rules[key_kind(space)](space) for key, space in observation_space.spaces.items()}
        )
        self.features_dim = sum(encoder.features_dim for encoder in self.encoders.values())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([encoder(obs[key]) for key, encoder in self.encoders.items()], dim=-1)


class ConvEncoder(Encoder):
    """A conv trunk on ``[C, H, W]`` integer images, then ``Linear → ReLU`` to ``features_dim``.

    The input is cast to float and multiplied by ``scale`` (``1/255`` for 8-bit frames, 1 for
    MinAtar's 0/1 channels) here, on the module's device; leading batch dims are flattened around
    the convolutions. The linear layer's input size comes from one forward of a zero image.
    """

    takes_images = True

    def __init__(
        self, observation_space: gym.Space, convs: nn.Sequential, features_dim: int, scale: float
    ) -> None:
        super().__init__()
        self.obs_shape = tuple(observation_space.shape)
        self.scale = scale
        self.convs = _ortho(convs)
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, *self.obs_shape)).flatten(1).shape[1]
        self.linear = _ortho(nn.Linear(n_flat, features_dim))
        self.features_dim = features_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[: obs.dim() - 3]
        x = obs.reshape(-1, *self.obs_shape).float() * self.scale
        features = torch.relu(self.linear(self.convs(x).flatten(1)))
        return features.reshape(*lead, self.features_dim)


class NatureCNN(ConvEncoder):
    """Mnih et al. 2015: conv 32 8×8/4, 64 4×4/2, 64 3×3/1 (ReLU), linear 512; pixels ÷ 255."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 512) -> None:
        channels = observation_space.shape[0]
        convs = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
        )
        super().__init__(observation_space, convs, features_dim, scale=1.0 / 255.0)


class MinAtarCNN(ConvEncoder):
    """Young & Tian 2019: conv 16 3×3/1 (ReLU), linear 128, on MinAtar's 0/1 channels (no ÷255)."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 128) -> None:
        convs = nn.Sequential(nn.Conv2d(observation_space.shape[0], 16, 3, stride=1), nn.ReLU())
        super().__init__(observation_space, convs, features_dim, scale=1.0)


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` (IMPALA)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ImpalaCNN(ConvEncoder):
    """Espeholt et al. 2018 (the Procgen encoder): per depth 16, 32, 32 a conv 3×3, max-pool 3×3/2
    and two residual blocks; ReLU, linear 256; pixels ÷ 255."""

    def __init__(
        self, observation_space: gym.Space, depths: tuple[int, ...] = (16, 32, 32), features_dim: int = 256
    ) -> None:
        layers: list[nn.Module] = []
        channels = observation_space.shape[0]
        for depth in depths:
            layers += [
                nn.Conv2d(channels, depth, 3, padding=1),
                nn.MaxPool2d(3, stride=2, padding=1),
                ResidualBlock(depth),
                ResidualBlock(depth),
            ]
            channels = depth
        layers.append(nn.ReLU())
        super().__init__(observation_space, nn.Sequential(*layers), features_dim, scale=1.0 / 255.0)


def encoder_class(factory: Callable[[gym.Space], Encoder]) -> type:
    """The class a config's encoder factory builds (``functools.partial`` from Hydra, or a class)."""
    return getattr(factory, "func", factory)


def check_encoder(factory: Callable[[gym.Space], Encoder], space: gym.Space, normalize_obs: bool) -> None:
    """Before anything is built: an image space needs an image encoder, a vector space a flat one,
    and running normalization is for float vectors; one line naming the fix."""
    cls = encoder_class(factory)
    takes_images = getattr(cls, "takes_images", False)
    if isinstance(space, gym.spaces.Dict):
        check_dict_encoder(cls, space)
        return
    if is_image_space(space) and not takes_images:
        raise ConfigError(
            f"the observation space {space} is an image but network.encoder is {cls.__name__}; "
            "use a CNN network: network=minatar_cnn (MinAtar), network=nature_cnn (Atari) or "
            "network=impala_cnn"
        )
    if not is_image_space(space) and takes_images:
        raise ConfigError(
            f"network.encoder is {cls.__name__}, an image encoder, but the observation space {space} "
            "is not a [C, H, W] integer image; use network=mlp"
        )
    if is_image_space(space) and normalize_obs:
        raise ConfigError(
            "env.normalize_obs=true normalizes float vector observations, but this env's are images "
            "(the encoder scales them); set env.normalize_obs=false"
        )


def check_dict_encoder(cls: type, space: gym.spaces.Dict) -> None:
    """A ``Dict``'s image keys need an image encoder (``network.encoder``), and an image encoder
    needs an image key; one line naming the fix."""
    images = [key for key, sub in space.spaces.items() if key_kind(sub) == "image"]
    if images and not getattr(cls, "takes_images", False):
        raise ConfigError(
            f"observation key {images[0]!r} is an image but network.encoder is {cls.__name__}; use a CNN "
            "network (network=minatar_cnn, nature_cnn or impala_cnn) or leave the key out with "
            "network.obs_keys"
        )
    if not images and getattr(cls, "takes_images", False):
        raise ConfigError(
            f"network.encoder is {cls.__name__}, an image encoder, but no key of the observation space "
            f"{space} is a [C, H, W] integer image; use network=mlp"
        )
