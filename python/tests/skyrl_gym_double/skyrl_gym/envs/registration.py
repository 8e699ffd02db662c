import copy
import importlib
from dataclasses import dataclass, field
from typing import Any, Dict

from skyrl_gym.core import Env


@dataclass
class EnvSpec:
    id: str
    entry_point: Any = None
    kwargs: Dict[str, Any] = field(default_factory=dict)


registry: Dict[str, EnvSpec] = {}


def register(id, entry_point=None, kwargs=None):
    assert entry_point is not None, "`entry_point` must be provided"
    if id in registry:
        raise RuntimeError(f"An environment with name `{id}` is already registered")
    registry[id] = EnvSpec(id=id, entry_point=entry_point, kwargs=kwargs or {})


def make(id, **kwargs):
    spec = registry.get(id)
    if spec is None:
        raise RuntimeError(f"No registered env with id: {id}")
    spec_kwargs = copy.deepcopy(spec.kwargs)
    spec_kwargs.update(kwargs)
    creator = spec.entry_point
    if isinstance(creator, str):
        module, attr = creator.split(":")
        creator = getattr(importlib.import_module(module), attr)
    env = creator(**spec_kwargs)
    if not isinstance(env, Env):
        raise TypeError(f"The environment must inherit from the skyrl_gym.Env class, actual class: {type(env)}")
    return env
