"""MCPToolEnv: a SkyRL environment for skyrl's MCP tool-plan rows. Importing it registers the env with
skyrl_gym when skyrl_gym is installed."""

import importlib.util

from .env import ENV_ID, MCPToolEnv, Settings, register

__all__ = ["ENV_ID", "MCPToolEnv", "Settings", "register"]

if importlib.util.find_spec("skyrl_gym") is not None:
    register()
