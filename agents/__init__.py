"""Agent roles: a prompt, an output schema and the call that fills it.

Every role is a `Role` (structured answer) or a `ChoiceRole` (one-token choice from
the logprobs); prompts take the shop's `Domain` as a variable. Each pipeline's agents
live in a subpackage (`aisle.agents.arag`, `aisle.agents.ensemble`).
"""

from aisle.agents._role import ChoiceRole, Domain, Role, roles_version

__all__ = ["ChoiceRole", "Domain", "Role", "roles_version"]
