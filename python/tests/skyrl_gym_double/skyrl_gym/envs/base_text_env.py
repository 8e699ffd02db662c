from typing import Any, Dict, List, Optional, TypedDict

from skyrl_gym.core import Env


class BaseTextEnvStepOutput(TypedDict):
    observations: List[Dict[str, str]]
    reward: float
    done: bool
    metadata: Dict[str, Any]
    postprocessed_action: Optional[str]


class BaseTextEnv(Env):
    def __init__(self):
        super().__init__()
        self.turns = 0
        self.max_turns = 1
        self.tool_groups = []
        self.tool_to_toolgroup = {}

    def init(self, prompt):
        return prompt, {}

    def close(self):
        pass

    def get_metrics(self):
        return {}
