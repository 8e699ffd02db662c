"""A test double of skyrl_gym (skyrl-gym is not installable here): the parts SkyRL uses to build an env,
following skyrl-gym/skyrl_gym/{core.py,envs/registration.py,envs/base_text_env.py} of NovaSky-AI/SkyRL."""

from skyrl_gym.core import Env
from skyrl_gym.envs.registration import make, register, registry

__all__ = ["Env", "make", "register", "registry"]
