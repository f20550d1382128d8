"""One `build_<name>_graph()` factory per pipeline, wiring agents and tools into a
LangGraph `StateGraph`; each is also listed in `langgraph.json`.
"""

__all__: list[str] = []
