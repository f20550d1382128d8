"""One declarative shape for an agent role: a prompt template, an output schema, a token
budget and a version, and the one call that fills the schema.

Every agent in aisle is a `Role` (a structured answer) or a `ChoiceRole` (a
one-token choice read from the logprobs). A role renders its template with the
caller's variables plus the `domain` (what the shop sells, so no prompt hard-codes a
store), sends it as one user message, and returns the validated answer. Calls carry
the role's name (`aisle_agent`, for usage accounting) and the requested schema's name
(`aisle_schema`) in their run metadata, so a test fake can answer by schema, never by
prompt text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, ConfigDict, Field

from aisle.errors import ConfigurationError
from aisle.llm import StructuredAnswer, ainvoke_structured, capabilities_of, choice_probabilities
from aisle.llm.usage import AGENT_KEY, SCHEMA_KEY
from aisle.prompts import render

__all__ = ["ChoiceRole", "Domain", "Role", "roles_version"]

T = TypeVar("T", bound=BaseModel)


class Domain(BaseModel):
    """What the shop sells, as the prompts name it.

    Example:
        >>> Domain(store="an online video-game store").store
        'an online video-game store'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field("an online shop", min_length=1, max_length=80,
                       description="The shop, with its article: 'an online shoe store'.")
    item: str = Field("item", min_length=1, max_length=30, description="Singular item noun.")
    items: str = Field("items", min_length=1, max_length=30, description="Plural item noun.")
    aspects: str = Field("brands, categories, styles, price range", min_length=1,
                         max_length=120,
                         description="What lasting preferences are made of in this shop.")


@dataclass(frozen=True)
class Role(Generic[T]):
    """An agent role whose answer is a validated pydantic object.

    Attributes:
        name: the agent's name (usage accounting, per-agent model overrides).
        template: its prompt template under `prompts/` (e.g. `"arag/nli_generate.j2"`).
        schema: the answer's pydantic model; None when it is built per call (pass
            `schema=` to `ask`, e.g. a ranking that enumerates the candidate ids).
        max_tokens: the generation budget, or a function of the call's schema.
        version: bumped whenever the role's behaviour changes (prompt, schema, budget,
            parsing), so stored eval answers of two versions are never mixed.
        temperature: bound on the call when set; None keeps the model's own.

    Example:
        >>> import asyncio
        >>> from aisle.llm import FakeChatModel
        >>> class City(BaseModel):
        ...     city: str
        >>> role = Role("geo", "chat/system.j2", City, max_tokens=32)
        >>> fake = FakeChatModel(by_schema={"City": {"city": "Paris"}})
        >>> asyncio.run(role.ask(fake, json_schema=False)).value.city
        'Paris'
    """

    name: str
    template: str
    schema: type[T] | None
    max_tokens: int | Callable[[type[BaseModel]], int]
    version: int = 1
    temperature: float | None = None

    def render(self, domain: Domain | None = None, **variables: Any) -> str:
        """The prompt, strictly rendered (a missing variable is an error)."""
        return render(self.template, domain=domain or Domain(), **variables)

    def budget(self, schema: type[BaseModel]) -> int:
        return self.max_tokens(schema) if callable(self.max_tokens) else self.max_tokens

    async def ask(self, model: BaseChatModel, *, domain: Domain | None = None,
                  schema: type[T] | None = None, agent: str | None = None,
                  **variables: Any) -> StructuredAnswer[T]:
        """Render, call, validate (with one repair turn).

        Raises:
            StructuredOutputError: still invalid after the repair turn.
        """
        answer_schema = schema or self.schema
        if answer_schema is None:
            raise ConfigurationError(f"role {self.name!r} builds its schema per call: "
                                     "pass schema=")
        bind: dict[str, Any] = {"max_tokens": self.budget(answer_schema)}
        if self.temperature is not None:
            bind["temperature"] = self.temperature
        prompt = self.render(domain, **variables)
        return await ainvoke_structured(model, [HumanMessage(prompt)], answer_schema,
                                        agent=agent or self.name, **bind)


@dataclass(frozen=True)
class ChoiceRole:
    """An agent role answered by one token: the probabilities of a few choices, read
    from the first token's top logprobs (needs a backend with logprobs).

    Attributes:
        name: the agent's name.
        template: its prompt template.
        choices: the tokens compared, e.g. `("Yes", "No")`.
        version: bumped whenever the role's behaviour changes.
    """

    name: str
    template: str
    choices: tuple[str, ...]
    version: int = 1
    max_top_logprobs: int = 20

    @property
    def schema_name(self) -> str:
        """What a fake sees as the requested schema: the choices joined, `YesNo`."""
        return "".join(self.choices)

    def render(self, domain: Domain | None = None, **variables: Any) -> str:
        return render(self.template, domain=domain or Domain(), **variables)

    async def probabilities(self, model: BaseChatModel, *, domain: Domain | None = None,
                            **variables: Any) -> tuple[dict[str, float] | None, int]:
        """The normalised probability of each choice, or None when none of them is
        among the top tokens; and how many top tokens were asked for."""
        k = max(1, min(self.max_top_logprobs,
                       capabilities_of(model).max_top_logprobs or self.max_top_logprobs))
        prompt = self.render(domain, **variables)
        message = await model.ainvoke(
            [HumanMessage(prompt)],
            config={"metadata": {AGENT_KEY: self.name, SCHEMA_KEY: self.schema_name}},
            logprobs=True, top_logprobs=k, max_tokens=1, temperature=0.0)
        return choice_probabilities(message, list(self.choices)), k


def roles_version(roles: Sequence[Role[Any] | ChoiceRole]) -> dict[str, int]:
    """Each role's version by its template (two roles may share an agent name, as NLI's
    two modes do), for run keys.

    Example:
        >>> roles_version([ChoiceRole("nli", "arag/nli_logprob.j2", ("Yes", "No"), 2)])
        {'arag/nli_logprob.j2': 2}
    """
    return {r.template: r.version for r in roles}
