"""MCPToolEnv: a SkyRL environment for skyrl's MCP tool-plan rows. Importing it registers the env with
skyrl_gym when skyrl_gym is installed."""

from .env import ENV_ID, MCPToolEnv, Settings, register

__all__ = ["ENV_ID", "MCPToolEnv", "Settings", "register"]

try:
    import skyrl_gym  # noqa: F401
except ImportError:
    pass
else:
    register()
