"""Agent roles: a prompt, an output schema and the call that fills it.

Each pipeline's agents live in a subpackage (`aisle.agents.arag`, ...).
"""

__all__: list[str] = []
