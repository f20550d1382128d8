"""Loader for the LLMRank Amazon Games files (Hou et al., ECIR 2024).

Files (see `../shared/data/llmrank-games/README.md`): `Games.item` (`item_id<TAB>title`),
`Games-6k.test.inter` (`user_id<TAB>history ids<TAB>target id`) and `Games.<retriever>`
(`user_id<TAB>100 candidate ids`) for the 200 evaluation users.

Protocol (the paper's): per user, drop the ground-truth item from the retriever's
candidates, keep the first 19, add the ground truth and shuffle with a fixed seed:
20 candidates to rank.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.evals._errors import DatasetError

__all__ = ["DatasetError", "EvalCase", "GamesData", "load_games"]

RETRIEVERS = ("random", "pop", "bpr", "sasrec", "gru4rec")


@dataclass(frozen=True)
class EvalCase:
    """One user to rank for: history (oldest first), the held-out target, candidates."""

    user_id: str
    history: tuple[str, ...]
    target: str
    candidates: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.user_id


@dataclass(frozen=True)
class GamesData:
    """The item titles and per-user interactions of one LLMRank dataset folder."""

    root: Path
    items: dict[str, str]
    histories: dict[str, tuple[str, ...]]
    targets: dict[str, str]

    def title(self, item_id: str) -> str:
        try:
            return self.items[item_id]
        except KeyError:
            raise DatasetError(f"item id {item_id!r} is not in {self.root / 'Games.item'}") \
                from None

    def as_items(self, ids: Sequence[str]) -> list[dict[str, str]]:
        """Ids as the `{"id", "title"}` items the agents see."""
        return [{"id": i, "title": self.title(i)} for i in ids]

    def arag_input(self, case: EvalCase, max_history: int = 20) -> dict[str, Any]:
        """A case as ARAG's graph input: the user, the last `max_history` history items
        (oldest first) and the candidates."""
        return {"user_id": case.user_id,
                "history": self.as_items(case.history[-max_history:]),
                "candidates": self.as_items(case.candidates)}

    def retriever_candidates(self, retriever: str) -> dict[str, tuple[str, ...]]:
        """Candidate lists of one retriever file, validated against the item file."""
        path = self.root / f"Games.{retriever}"
        if not path.is_file():
            known = ", ".join(r for r in RETRIEVERS if (self.root / f"Games.{r}").is_file())
            raise DatasetError(f"no candidate file {path}; available: {known}")
        out: dict[str, tuple[str, ...]] = {}
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DatasetError(f"{path}:{lineno}: expected 'user_id<TAB>ids', got {line!r}")
            ids = tuple(parts[1].split())
            unknown = [i for i in ids if i not in self.items]
            if unknown:
                raise DatasetError(f"{path}:{lineno}: candidate ids not in Games.item: "
                                   f"{unknown[:5]}")
            out[parts[0]] = ids
        return out

    def cases(self, retriever: str = "random", *, n_users: int | None = None,
              n_candidates: int = 20, seed: int = 2023,
              users: list[str] | None = None) -> list[EvalCase]:
        """Evaluation cases under the paper's protocol, in the retriever file's user order.

        Args:
            retriever: which `Games.<retriever>` candidate file to use.
            n_users: the first N users (all 200 by default).
            n_candidates: list length including the ground truth (20 in the paper).
            seed: shuffle seed; each user's shuffle depends only on it and the user id.
            users: explicit user ids instead of the first N.

        Raises:
            DatasetError: unknown user id, or a user without enough candidates.
        """
        lists = self.retriever_candidates(retriever)
        chosen = users if users is not None else list(lists)[:n_users]
        cases = []
        for user in chosen:
            if user not in lists:
                raise DatasetError(f"user id {user!r} has no candidates in Games.{retriever}")
            if user not in self.targets:
                raise DatasetError(f"user id {user!r} is not in Games-6k.test.inter")
            target = self.targets[user]
            others = [c for c in lists[user] if c != target][: n_candidates - 1]
            if len(others) < n_candidates - 1:
                raise DatasetError(f"user {user!r} has only {len(others)} candidates besides "
                                   f"the target in Games.{retriever}")
            pool = [*others, target]
            random.Random(f"{seed}:{user}").shuffle(pool)
            cases.append(EvalCase(user, self.histories[user], target, tuple(pool)))
        return cases


def load_games(root: str | Path) -> GamesData:
    """Read `Games.item` and `Games-6k.test.inter` from a folder.

    Raises:
        DatasetError: a file is missing or a line is malformed.
    """
    root = Path(root)
    item_file, inter_file = root / "Games.item", root / "Games-6k.test.inter"
    for f in (item_file, inter_file):
        if not f.is_file():
            raise DatasetError(f"missing data file {f}")
    items: dict[str, str] = {}
    for lineno, line in enumerate(item_file.read_text().splitlines()[1:], 2):
        item_id, sep, title = line.partition("\t")
        if not sep or not item_id.strip():
            raise DatasetError(f"{item_file}:{lineno}: expected 'item_id<TAB>title'")
        items[item_id.strip()] = title.strip()
    histories: dict[str, tuple[str, ...]] = {}
    targets: dict[str, str] = {}
    for lineno, line in enumerate(inter_file.read_text().splitlines()[1:], 2):
        parts = line.split("\t")
        if len(parts) != 3:
            raise DatasetError(f"{inter_file}:{lineno}: expected 3 tab-separated fields")
        user, hist, target = parts[0], tuple(parts[1].split()), parts[2].strip()
        histories[user] = hist
        targets[user] = target
    return GamesData(root, items, histories, targets)
