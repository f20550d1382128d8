"""Reading the CSV data files that both eval loaders and tools read (bundles, the
clothing catalog), with one error for every way a file can be bad."""

from __future__ import annotations

import csv
from pathlib import Path

from aisle.errors import DatasetError

__all__ = ["read_csv_columns"]


def read_csv_columns(path: Path, columns: tuple[str, str]) -> list[tuple[int, tuple[str, str]]]:
    """(line, cells) of the two named columns, as written; blank lines skipped.

    The line is where the record ends (a quoted cell may span several lines).
    """
    if not path.is_file():
        raise DatasetError(f"missing data file {path}")
    rows: list[tuple[int, tuple[str, str]]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path} is empty; expected a header line "
                                   f"{','.join(columns)}")
            found = [name.strip() for name in header]
            missing = [c for c in columns if c not in found]
            if missing:
                raise DatasetError(f"{path}: no column {', '.join(map(repr, missing))}; "
                                   f"expected {','.join(columns)}, found {','.join(found)}")
            first, second = (found.index(c) for c in columns)
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if len(record) != len(found):
                    raise DatasetError(f"{path}:{reader.line_num}: expected {len(found)} "
                                       f"fields ({','.join(found)}), got {len(record)}")
                rows.append((reader.line_num, (record[first], record[second])))
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path} is not UTF-8 text: {e}") from e
    except csv.Error as e:
        raise DatasetError(f"{path}: malformed CSV: {e}") from e
    return rows
