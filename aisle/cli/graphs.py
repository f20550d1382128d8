"""`aisle graphs list`: the registered graphs (the registry `langgraph.json` also lists)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from aisle.cli._common import JSON_OPTION, aisle_errors, console, json_stdout

app = typer.Typer(help="The registered agent graphs.", no_args_is_help=True)


@app.command("list")
def list_graphs(as_json: bool = JSON_OPTION) -> None:
    """Each registered graph: its agents, input and context schemas, langgraph.json entry."""
    from pydantic import TypeAdapter

    from aisle.graphs import graph_specs

    with aisle_errors(), json_stdout(as_json) as emit:
        graphs: list[dict[str, Any]] = [
            {"name": spec.name, "description": spec.description,
             "agents": list(spec.agent_names), "langgraph_path": spec.langgraph_path,
             "input_schema": TypeAdapter(spec.input_schema).json_schema(),
             "context_schema": spec.context_schema.model_json_schema()}
            for spec in graph_specs()]
        if as_json:
            emit({"graphs": graphs})
            return
    table = Table(title="Graphs (aisle.graphs.get_graph_spec(NAME))")
    for col in ("name", "agents", "input", "langgraph.json", "description"):
        table.add_column(col)
    for g in graphs:
        table.add_row(g["name"], ", ".join(g["agents"]),
                      ", ".join(g["input_schema"].get("properties", {})),
                      escape(g["langgraph_path"]), escape(g["description"]))
    console.print(table)
