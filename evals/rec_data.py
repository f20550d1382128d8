"""The recommender datasets under the shared data root, by name or by path.

`--dataset` names one of:

- `beauty`, `sports`: `amazon-seq/Beauty.txt`, `amazon-seq/Sports_and_Outdoors.txt`
  (S3-Rec format); any other `amazon-seq/NAME.txt` by its name (case-insensitive);
- `llmrank-games`: the LLMRank Games folder (`aisle.evals.llmrank`);
- a path: an S3-Rec `NAME.txt` file, a folder holding one, or a folder in the LLMRank
  Games layout (`Games.item`, `Games-6k.test.inter`).

LLMRank Games as sequences: each user's history followed by its test target; the
leave-one-out split makes the target the test item, so it is never trained on. Its
histories are short (7.7 items on average), so only a seeded sample of 5,000 users
holds out its last history item for validation; every other user trains on its whole
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aisle.evals._errors import DatasetError
from aisle.evals.llmrank import GamesData, load_games
from aisle.tools.recommenders import SequenceDataset, SplitConfig, load_s3rec
from aisle.tools.recommenders.data import RecDataError

__all__ = ["ALIASES", "GAMES", "GAMES_VALID_USERS", "RecData", "games_dataset", "load_rec_data"]

GAMES = "llmrank-games"
ALIASES = {"beauty": "amazon-seq/Beauty.txt", "sports": "amazon-seq/Sports_and_Outdoors.txt"}
GAMES_VALID_USERS = 5000


@dataclass(frozen=True)
class RecData:
    """A dataset ready to train and evaluate on.

    Attributes:
        dataset: the sequences and catalog.
        split: how `leave_one_out` splits it.
        games: the LLMRank Games files (titles, candidate lists), for that layout only.
        key: how the dataset was named (`beauty`, or the path given).
    """

    dataset: SequenceDataset
    split: SplitConfig
    games: GamesData | None
    key: str

    @property
    def protocol(self) -> str:
        """`candidates` (LLMRank's 20 candidates) or `full` (the whole catalog)."""
        return "candidates" if self.games is not None else "full"

    def title(self, item_id: str) -> str | None:
        return self.games.items.get(item_id) if self.games is not None else None


def games_dataset(games: GamesData, name: str = GAMES) -> SequenceDataset:
    """LLMRank Games as sequences: history then target, the catalog every `Games.item`."""
    ids = set(games.items)
    items = tuple(sorted(ids, key=int)) if all(i.isdigit() for i in ids) else tuple(sorted(ids))
    sequences = {u: (*h, games.targets[u]) for u, h in games.histories.items()}
    return SequenceDataset(name, items, sequences, None, games.root, dict(games.items))


def _is_games(folder: Path) -> bool:
    return (folder / "Games.item").is_file() and (folder / "Games-6k.test.inter").is_file()


def load_rec_data(data_root: Path, dataset: str) -> RecData:
    """Resolve `--dataset` under `--data` (see the module docstring) and load it.

    Raises:
        DatasetError: no such dataset, or its files are malformed.
    """
    name = dataset.strip()
    lowered = name.lower()
    if lowered == GAMES:
        path = data_root / GAMES
    elif lowered in ALIASES:
        path = data_root / ALIASES[lowered]
    else:
        named = [p for p in (data_root / "amazon-seq").glob("*.txt")
                 if p.stem.lower() == lowered] if (data_root / "amazon-seq").is_dir() else []
        path = named[0] if named else Path(name).expanduser()
    try:
        if path.is_dir() and _is_games(path):
            games = load_games(path)
            short = GAMES if lowered == GAMES else path.name.lower()
            return RecData(games_dataset(games, short),
                           SplitConfig(valid_users=GAMES_VALID_USERS), games, name)
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            if len(files) != 1:
                raise DatasetError(f"--dataset {path} is a folder with {len(files)} .txt "
                                   "files; pass the NAME.txt file itself")
            path = files[0]
        if path.is_file():
            short = lowered if lowered in ALIASES else path.stem.lower()
            return RecData(load_s3rec(path, short), SplitConfig(), None, name)
    except RecDataError as e:
        raise DatasetError(str(e)) from e
    known = ", ".join([*ALIASES, GAMES])
    raise DatasetError(f"no dataset {dataset!r} under {data_root} ({path} does not exist); "
                       f"pass one of {known}, an amazon-seq NAME, or a path to an S3-Rec "
                       "NAME.txt or an LLMRank Games folder")
