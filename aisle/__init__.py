"""aisle: LLM agent graphs for e-commerce recommendation and content.

The runtime every part uses lives here: model backends (`aisle.llm`), settings,
the response cache and usage accounting, the CLI. Pipelines live in
`aisle.graphs`, their agents in `aisle.agents`, tools in `aisle.tools`, evals in
`aisle.evals`.
"""

from aisle.errors import AisleError
from aisle.llm import invoke_structured, load_chat_model, track_usage
from aisle.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "AisleError",
    "Settings",
    "__version__",
    "get_settings",
    "invoke_structured",
    "load_chat_model",
    "track_usage",
]
