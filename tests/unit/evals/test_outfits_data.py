"""The shipped characters file, the twins and keys, the loader's errors on small
hand-written files, and the wearer's validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from aisle.errors import ConfigurationError
from aisle.evals.outfits_data import (
    AGE_GROUPS,
    GENDERS,
    SOURCES,
    AgeGroup,
    Character,
    DatasetError,
    Gender,
    Source,
    character_key,
    gender_swapped,
    load_characters,
    validate_wearer,
    with_twins,
)

HOLMES = Character(name="Sherlock Holmes", source="literature", work="A Study in Scarlet",
                   gender="male", age="adult", note="Victorian London consulting detective")

GOOD_ENTRY = """\
- name: Mario
  source: game
  work: Super Mario Bros.
  gender: male
  age: adult
  note: Plumber
"""


@pytest.fixture(scope="module")
def shipped() -> list[Character]:
    return load_characters()


def test_tuples_match_the_literals() -> None:
    assert get_args(Gender) == GENDERS
    assert get_args(AgeGroup) == AGE_GROUPS
    assert get_args(Source) == SOURCES


def test_shipped_file_loads(shipped: list[Character]) -> None:
    assert len(shipped) >= 29
    assert not any(c.twin for c in shipped)
    assert len({c.name for c in shipped}) == len(shipped)
    names = {c.name for c in shipped}
    assert {"Sherlock Holmes", "Lara Croft", "Mario", "Hermione Granger",
            "Wednesday Addams", "Gandalf"} <= names


def test_shipped_file_is_balanced(shipped: list[Character]) -> None:
    genders = Counter(c.gender for c in shipped)
    assert abs(genders["female"] - genders["male"]) <= max(2, len(shipped) // 10)
    sources = Counter(c.source for c in shipped)
    assert {"film", "literature", "game"} <= set(sources)
    assert min(sources[s] for s in ("film", "literature", "game")) >= 8
    ages = Counter(c.age for c in shipped)
    assert all(ages[a] >= 3 for a in AGE_GROUPS), ages


def test_shipped_file_is_read_from_the_package(shipped: list[Character]) -> None:
    here = Path(__file__).resolve().parents[3] / "evals" / "outfits_characters.yaml"
    assert load_characters(here) == shipped


def test_holmes_as_written(shipped: list[Character]) -> None:
    assert next(c for c in shipped if c.name == "Sherlock Holmes") == HOLMES


def test_twins() -> None:
    twin = gender_swapped(HOLMES)
    assert (twin.name, twin.gender, twin.age, twin.twin) == ("Sherlock Holmes", "female",
                                                             "adult", True)
    assert gender_swapped(twin) == HOLMES
    mario = Character(name="Mario", source="game", work="Super Mario Bros.", gender="male",
                      age="adult", note="Plumber")
    doubled = with_twins([HOLMES, mario])
    assert [(c.name, c.gender, c.twin) for c in doubled] == [
        ("Sherlock Holmes", "male", False), ("Sherlock Holmes", "female", True),
        ("Mario", "male", False), ("Mario", "female", True)]


def test_keys_are_stable_and_unique_with_twins(shipped: list[Character]) -> None:
    assert character_key(HOLMES) == "sherlock-holmes-male-adult"
    assert character_key(gender_swapped(HOLMES)) == "sherlock-holmes-female-adult"
    keys = [character_key(c) for c in with_twins(shipped)]
    assert len(set(keys)) == len(keys) == 2 * len(shipped)
    assert all(k == k.lower() and " " not in k for k in keys)


def test_character_is_frozen_and_validated() -> None:
    with pytest.raises(ValidationError):
        HOLMES.name = "Mycroft"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="at most 80"):
        HOLMES.model_validate({**HOLMES.model_dump(), "name": "x" * 81})
    with pytest.raises(ValidationError):
        HOLMES.model_validate({**HOLMES.model_dump(), "name": "   "})
    assert Character.model_validate({**HOLMES.model_dump(), "name": " Holmes "}).name == "Holmes"


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD_ENTRY + GOOD_ENTRY.replace("Plumber", "Hero"),
     r":7: entry 2 \('Mario'\): duplicate name, entry 1"),
    (GOOD_ENTRY + GOOD_ENTRY.replace("name: Mario", "name: ' mario '"),
     r"entry 2 \('mario'\): duplicate name, entry 1"),
    (GOOD_ENTRY.replace("gender: male", "gender: robot"),
     r":1: entry 1 \('Mario'\): gender: Input should be 'female' or 'male', got 'robot'"),
    (GOOD_ENTRY.replace("age: adult", "age: 42"), r"entry 1 \('Mario'\): age: .*got 42"),
    (GOOD_ENTRY.replace("source: game", "source: opera"), r"source: .*got 'opera'"),
    (GOOD_ENTRY.replace("  note: Plumber\n", ""), r"entry 1 \('Mario'\): missing note"),
    (GOOD_ENTRY + "  twin: true\n", r"unknown key\(s\) twin"),
    (GOOD_ENTRY.replace("name: Mario", "name: ''"), r"entry 1: name: .*at least 1"),
    (GOOD_ENTRY + "- just a string\n", r"entry 2: expected a mapping"),
    ("- name: [unclosed\n", r":2:1: not valid YAML: expected ',' or '\]'.*flow sequence"),
    ("- name: Mario\n  - age: adult\n", r":2:3: not valid YAML: "),
    ("name: Mario\n", r"should be a non-empty YAML list of characters"),
    ("", r"should be a non-empty YAML list"),
])
def test_bad_files_raise_naming_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "characters.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=expected) as caught:
        load_characters(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no characters file .*nowhere\.yaml"):
        load_characters(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(("gender", "age", "expected"), [
    ("female", "child", ("female", "child")),
    ("male", "senior", ("male", "senior")),
    (" Female ", "TEEN", ("female", "teen")),
])
def test_validate_wearer(gender: str, age: str, expected: tuple[str, str]) -> None:
    assert validate_wearer(gender, age) == expected


@pytest.mark.parametrize(("gender", "age", "expected"), [
    ("nonbinary", "adult", r"unknown wearer gender 'nonbinary'; use one of female, male$"),
    ("", "adult", r"unknown wearer gender ''"),
    ("female", "toddler",
     r"unknown wearer age group 'toddler'; use one of child, teen, adult, senior$"),
])
def test_validate_wearer_rejects(gender: str, age: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        validate_wearer(gender, age)
