"""`aisle demo`: the shopping assistant as a chat page (Gradio), on localhost.

Each browser session is a thread of the `assistant` graph, kept by LangGraph's SQLite
checkpointer (a restarted demo keeps the conversations its sessions hold the ids of).
Replies stream in: while a graph runs, the status line says which agent is working
(`NLI agent: 12/20 items scored`, from the recommend tool's `custom` stream), and the
chat model's tokens appear as they come. Recommendations render as a numbered list of
titles with the item ranker's reason for each and the evidence behind it
(`#recommendations`).

Offline: the theme uses system fonts (no Google Fonts request), Gradio's analytics are
off, and nothing else is fetched from outside the machine (the browser test checks
every request the page makes goes to the demo's own address).
"""

from __future__ import annotations

import asyncio
import html
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

__all__ = ["NODE_STATUS", "build_demo", "recommendations_html", "status_text"]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

NODE_STATUS = {
    "route": "Router: reading your message",
    "plan_tool": "Calling a tool",
    "tools": "Tool: working",
    "respond": "Writing the reply",
    "chat": "Chat agent: answering",
    "user_understanding": "User-understanding agent: done",
    "context_summary": "Context-summary agent: done",
    "item_ranker": "Item-ranker agent: done",
    "fusion": "Fusing the agents' orders",
    "ranker_reasons": "Item-ranker agent: writing its reasons",
    "retrieve": "Finding candidates",
    "recommender_scores": "Recommender: scored the candidates",
}


def status_text(event: dict[str, Any]) -> str:
    """A custom-stream progress event as the status line."""
    if event.get("agent") == "nli" and "done" in event:
        return f"NLI agent: {event['done']}/{event['total']} items scored"
    return NODE_STATUS.get(str(event.get("agent")), f"{event.get('agent')}: working")


def recommendations_html(result: dict[str, Any] | None) -> str:
    """The last recommend result as an ordered list (empty when there is none)."""
    if not result or result.get("status") != "ok" or "items" not in result \
            or "title" in result:
        return "<div id='recommendations' class='empty'>No recommendations yet.</div>"
    # Catalog titles carry HTML entities ("&amp;"): decode, then escape once.
    rows = "".join(
        f"<li><b>{html.escape(html.unescape(str(i['title'])))}</b>"
        + (f"<br><span class='reason'>{html.escape(html.unescape(str(i['reason'])))}</span>"
           if i.get("reason") else "")
        + f"<br><small class='evidence'>{html.escape(str(i['why']))}</small></li>"
        for i in result["items"])
    who = html.escape(str(result.get("user_id") or "you"))
    return (f"<div id='recommendations'><h3>For {who}</h3><ol>{rows}</ol>"
            f"<p><small>{html.escape(str(result.get('profile') or ''))}</small></p></div>")


class _Assistant:
    """The graph with its checkpointer, opened on the event loop Gradio runs handlers on."""

    def __init__(self, context: dict[str, Any], db: Path) -> None:
        from aisle.graphs.assistant import AssistantContext

        self.context = AssistantContext.model_validate(context)
        self.db = db
        self._graph: Any = None
        self._lock = asyncio.Lock()

    async def graph(self) -> Any:
        async with self._lock:
            if self._graph is None:
                import aiosqlite
                from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

                from aisle.graphs.assistant import build_assistant_graph

                self.db.parent.mkdir(parents=True, exist_ok=True)
                saver = AsyncSqliteSaver(await aiosqlite.connect(self.db, timeout=30.0))
                await saver.setup()
                self._graph = build_assistant_graph(saver)
            return self._graph

    async def turn(self, message: str, history: list[dict[str, Any]], thread: str
                   ) -> AsyncIterator[tuple[list[dict[str, Any]], str, str]]:
        """`(chat history, status line, recommendations html)` as the turn runs."""
        graph = await self.graph()
        config = {"configurable": {"thread_id": thread}}
        history = [*history, {"role": "user", "content": message},
                   {"role": "assistant", "content": ""}]
        status, recs = NODE_STATUS["route"], recommendations_html(None)
        yield history, status, recs
        try:
            async for mode, chunk in graph.astream(
                    {"messages": [HumanMessage(message)]}, config, context=self.context,
                    stream_mode=["custom", "updates", "messages"]):
                if mode == "custom":
                    status = status_text(chunk)
                elif mode == "updates":
                    for node in chunk:
                        status = NODE_STATUS.get(node, status)
                elif mode == "messages":
                    token, meta = chunk
                    if isinstance(token, AIMessageChunk) and meta.get("langgraph_node") == \
                            "chat" and token.content:
                        history[-1]["content"] += str(token.content)
                yield history, status, recs
            state = await graph.aget_state(config)
        except Exception as e:  # shown to the user; the page keeps working
            history[-1]["content"] = f"Sorry, something went wrong: {e}"
            yield history, "Failed", recs
            return
        last = state.values["messages"][-1]
        if isinstance(last, AIMessage):
            history[-1]["content"] = str(last.content)
        yield history, "Done", recommendations_html(state.values.get("result"))


def build_demo(context: dict[str, Any], db: Path) -> Any:
    """The Gradio app (`launch()` it, or mount it)."""
    import gradio as gr

    assistant = _Assistant(context, db)

    with gr.Blocks(title="aisle shopping assistant", analytics_enabled=False) as demo:
        gr.Markdown("## aisle shopping assistant\nAsk for recommendations (\"what should "
                    "user 40610 play next?\"), a product's attributes, or a title for a "
                    "set of products.")
        thread = gr.State(lambda: str(uuid.uuid4()))
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Chat", elem_id="chat", height=420)
                box = gr.Textbox(placeholder="Type a message and press Enter",
                                 show_label=False, elem_id="message")
                status = gr.Markdown("Ready", elem_id="status")
            with gr.Column(scale=2):
                recs = gr.HTML(recommendations_html(None), elem_id="recs-panel")

        async def on_message(message: str, history: list[dict[str, Any]], thread_id: str
                             ) -> AsyncIterator[tuple[Any, ...]]:
            if not message.strip():
                yield history, "Type a message first", gr.skip(), ""
                return
            async for h, s, r in assistant.turn(message, history or [], thread_id):
                yield h, s, r, ""

        box.submit(on_message, [box, chat, thread], [chat, status, recs, box])
    return demo


def theme() -> Any:
    """Gradio's default look with system fonts: no font is fetched from outside."""
    import gradio as gr

    system: list[Any] = [gr.themes.Font("system-ui"), "sans-serif"]
    mono: list[Any] = [gr.themes.Font("ui-monospace"), "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)
