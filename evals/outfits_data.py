"""Famous characters for character-based outfit generation (LVA-COG, Forouzandehmehr et
al., arXiv 2402.05941), their gender-swapped twins, and the wearer's validated profile.

The characters ship with aisle in `outfits_characters.yaml` (beside this module): a
YAML list of entries with `name`, `source` (film, literature, game, tv, comics), `work`,
`gender` and `age` (the character's canonical ones) and a short `note` on the era or
setting. An outfit is asked for a character *and* a wearer (gender, age group); the
eval asks for each character once with its canonical gender and once with the other
one (`with_twins`), so a method is scored on dressing a wearer unlike the character too.
`Gender`, `AgeGroup` and their values are the catalog's (`aisle.tools.outfit_catalog`),
re-exported here.

Example:
    >>> characters = load_characters()
    >>> holmes = next(c for c in characters if c.name == "Sherlock Holmes")
    >>> character_key(holmes), character_key(gender_swapped(holmes))
    ('sherlock-holmes-male-adult', 'sherlock-holmes-female-adult')
    >>> validate_wearer("female", "teen")
    ('female', 'teen')
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from aisle.errors import ConfigurationError
from aisle.evals._errors import DatasetError
from aisle.tools.outfit_catalog import AGE_GROUPS, GENDERS, AgeGroup, Gender

__all__ = [
    "AGE_GROUPS",
    "CHARACTERS_FILE",
    "GENDERS",
    "SOURCES",
    "AgeGroup",
    "Character",
    "DatasetError",
    "Gender",
    "Source",
    "character_key",
    "gender_swapped",
    "load_characters",
    "validate_wearer",
    "with_twins",
]

Source = Literal["film", "literature", "game", "tv", "comics"]
"""Where a character (and its iconic look) comes from."""

SOURCES: tuple[Source, ...] = ("film", "literature", "game", "tv", "comics")

CHARACTERS_FILE = "outfits_characters.yaml"
"""The shipped characters, a resource of the `aisle.evals` package."""

_FIELDS = ("name", "source", "work", "gender", "age", "note")
"""The keys every entry of a characters file has, and the only ones."""

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class Character(BaseModel):
    """A famous character an outfit should evoke.

    Attributes:
        name: how the character is usually called (1-80 characters, stripped).
        source: where it comes from, one of `SOURCES`.
        work: the title it (and its iconic look) comes from.
        gender: its canonical gender, one of `GENDERS` (the other one for a twin).
        age: its canonical age group, one of `AGE_GROUPS`.
        note: one short neutral line on the era or setting.
        twin: whether this is the gender-swapped twin of a character (`gender_swapped`).

    Raises:
        pydantic.ValidationError: a field is empty, too long or not one of its values.

    Example:
        >>> c = Character(name="Mario", source="game", work="Super Mario Bros.",
        ...               gender="male", age="adult", note="Plumber")
        >>> c.twin, c.gender
        (False, 'male')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: _Name
    source: Source
    work: _Text
    gender: Gender
    age: AgeGroup
    note: _Text
    twin: bool = False


def load_characters(path: Path | None = None) -> list[Character]:
    """The characters of a characters file, in file order.

    Args:
        path: a YAML file in the format of the shipped `outfits_characters.yaml`; None
            reads the shipped one.

    Returns:
        One `Character` per entry (none of them a twin).

    Raises:
        DatasetError: the file is missing or not YAML, is not a list of mappings, or an
            entry misses a key, has an unknown one or an invalid value, or repeats a name
            (compared as `character_key` slugs, so "Mr. Bean" repeats "Mr Bean"). The
            message names the file, and the entry's number, line and name.

    Example:
        >>> characters = load_characters()
        >>> len(characters) >= 32, {c.source for c in characters} >= {"film", "game"}
        (True, True)
    """
    if path is None:
        label = f"{CHARACTERS_FILE} (shipped with aisle.evals)"
        text = resources.files("aisle.evals").joinpath(CHARACTERS_FILE).read_text("utf-8")
    else:
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DatasetError(f"no characters file {path}; pass an existing YAML file, or "
                               f"none for the shipped {CHARACTERS_FILE}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"cannot read characters file {path}: {e}") from e
    return _parse(text, label)


def gender_swapped(character: Character) -> Character:
    """The same character with the other gender, marked as a twin.

    Swapping a twin gives back the character as written (`twin=False`).

    Example:
        >>> c = Character(name="Alice", source="literature", work="Alice in Wonderland",
        ...               gender="female", age="child", note="Victorian girl")
        >>> t = gender_swapped(c)
        >>> t.gender, t.twin, t.name
        ('male', True, 'Alice')
        >>> gender_swapped(t) == c
        True
    """
    other: Gender = "male" if character.gender == "female" else "female"
    return character.model_copy(update={"gender": other, "twin": not character.twin})


def with_twins(characters: Iterable[Character]) -> list[Character]:
    """Each character followed by its gender-swapped twin.

    Example:
        >>> c = Character(name="Neo", source="film", work="The Matrix", gender="male",
        ...               age="adult", note="Hacker")
        >>> [(x.gender, x.twin) for x in with_twins([c])]
        [('male', False), ('female', True)]
    """
    return [version for c in characters for version in (c, gender_swapped(c))]


def character_key(character: Character) -> str:
    """A stable slug naming a character as asked for: name, gender and age group.

    The name is lower-cased, accents are dropped and every run of other characters
    becomes one hyphen; a character and its twin differ in the gender part.

    Example:
        >>> c = Character(name="Chun-Li", source="game", work="Street Fighter II",
        ...               gender="female", age="adult", note="Martial artist")
        >>> character_key(c)
        'chun-li-female-adult'
        >>> character_key(c.model_copy(update={"name": "Amélie Poulain (2001)"}))
        'amelie-poulain-2001-female-adult'
    """
    return f"{_slug(character.name)}-{character.gender}-{character.age}"


def validate_wearer(gender: str, age: str) -> tuple[Gender, AgeGroup]:
    """The wearer's gender and age group, checked against `GENDERS` and `AGE_GROUPS`.

    Surrounding spaces and letter case are ignored.

    Args:
        gender: the wearer's gender, e.g. from a CLI flag.
        age: the wearer's age group.

    Returns:
        `(gender, age)` as their canonical values.

    Raises:
        ConfigurationError: either is not one of its documented values (the message
            lists them).

    Example:
        >>> validate_wearer(" Male ", "SENIOR")
        ('male', 'senior')
        >>> validate_wearer("robot", "adult")
        Traceback (most recent call last):
        ...
        aisle.errors.ConfigurationError: unknown wearer gender 'robot'; use one of female, male
    """
    wanted = gender.strip().casefold()
    canonical_gender = next((g for g in GENDERS if g == wanted), None)
    if canonical_gender is None:
        raise ConfigurationError(f"unknown wearer gender {gender!r}; use one of "
                                 f"{', '.join(GENDERS)}")
    wanted = age.strip().casefold()
    canonical_age = next((a for a in AGE_GROUPS if a == wanted), None)
    if canonical_age is None:
        raise ConfigurationError(f"unknown wearer age group {age!r}; use one of "
                                 f"{', '.join(AGE_GROUPS)}")
    return canonical_gender, canonical_age


def _slug(text: str) -> str:
    # NFKD splits accented letters into letter + combining mark; the marks are dropped.
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "-", plain.casefold()).strip("-")


def _parse(text: str, label: str) -> list[Character]:
    """Characters from a file's text; `label` names the file in errors."""
    loader = yaml.SafeLoader(text)
    try:
        # Composing first keeps each entry's node, whose mark gives its line.
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        raise DatasetError(_yaml_problem(label, e)) from e
    finally:
        loader.dispose()
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{label} should be a non-empty YAML list of characters "
                           f"(entries with {', '.join(_FIELDS)}), got {type(raw).__name__}")
    lines = [node.start_mark.line + 1 for node in root.value]

    characters: list[Character] = []
    seen: dict[str, int] = {}
    for number, (entry, line) in enumerate(zip(raw, lines, strict=True), start=1):
        where = f"{label}:{line}: entry {number}"
        character = _entry(entry, where)
        slug = _slug(character.name)
        if slug in seen:
            raise DatasetError(f"{where} ({character.name!r}): duplicate name, entry "
                               f"{seen[slug]} has the same one; give each character once")
        seen[slug] = number
        characters.append(character)
    return characters


def _entry(entry: Any, where: str) -> Character:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected a mapping with {', '.join(_FIELDS)}, got "
                           f"{type(entry).__name__}")
    name = entry.get("name")
    where = f"{where} ({name!r})" if isinstance(name, str) and name.strip() else where
    missing = [k for k in _FIELDS if k not in entry]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(missing)}; every entry has "
                           f"{', '.join(_FIELDS)}")
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(unknown)}; an entry has "
                           f"only {', '.join(_FIELDS)} (twins are derived, not written)")
    try:
        return Character.model_validate(entry)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise DatasetError(f"{where}: {field}: {first['msg']}, got {first['input']!r}"
                           f"{more}") from e


def _yaml_problem(label: str, error: yaml.YAMLError) -> str:
    """`file:line:column: not valid YAML: problem (context)` on one line."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or not problem:
        return f"{label} is not valid YAML: {' '.join(str(error).split())}"
    context = getattr(error, "context", None)
    return (f"{label}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"
            f"{f' ({context})' if context else ''}")
