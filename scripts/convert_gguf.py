"""Convert a GGUF checkpoint into a Hugging Face model directory for vLLM.

Standalone script: it imports only the standard library plus ``torch``,
``transformers`` and ``gguf`` (``accelerate`` must be installed too), never
``aisle``, so it can run under the interpreter of a separate vLLM venv::

    /tmp/vllmvenv/bin/python scripts/convert_gguf.py \\
        --gguf /path/SmolLM2-135M-Instruct.Q4_1.gguf --out /tmp/smollm2-hf

The GGUF weights are dequantized into dense tensors, the model is written as
safetensors in the requested dtype, and the tokenizer is written with the chat
template taken from the GGUF metadata (``tokenizer.chat_template``).  A marker
file holding the source file's sha256 makes re-runs a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARKER_NAME = "gguf_source.json"
DTYPES = ("float16", "bfloat16", "float32")
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Return the hex sha256 digest of a file.

    Args:
        path: File to hash.

    Returns:
        The lowercase hexadecimal digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """Read the conversion marker of an output directory.

    Args:
        out_dir: Output directory of an earlier conversion.

    Returns:
        The marker's content, or ``None`` when it is missing or unreadable.
    """
    try:
        data = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_up_to_date(out_dir: Path, sha256: str, dtype: str) -> bool:
    """Tell whether ``out_dir`` already holds this GGUF converted to ``dtype``.

    Args:
        out_dir: Output directory.
        sha256: Digest of the source GGUF file.
        dtype: Requested weight dtype name.

    Returns:
        True when ``config.json`` exists and the marker matches both values.
    """
    if not (out_dir / "config.json").is_file():
        return False
    marker = read_marker(out_dir)
    return (
        marker is not None and marker.get("gguf_sha256") == sha256 and marker.get("dtype") == dtype
    )


def read_gguf_chat_template(gguf_path: Path) -> str | None:
    """Read the chat template stored in a GGUF file's metadata.

    Args:
        gguf_path: The GGUF file.

    Returns:
        The Jinja template from ``tokenizer.chat_template``, or ``None``.
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, str) and value else None


def _strip_quantization(model: Any) -> None:
    """Drop the GGUF quantization bookkeeping so the model can be saved densely.

    Args:
        model: A ``PreTrainedModel`` loaded with ``gguf_file=``.

    Raises:
        RuntimeError: If a weight is still held in packed GGUF blocks.
    """
    for name, module in model.named_modules():
        if "gguf" in type(module).__name__.lower():
            raise RuntimeError(f"module {name} is still GGUF-packed; cannot save it densely")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def _write_chat_template(out_dir: Path, template: str) -> None:
    """Make sure the saved tokenizer carries ``template``.

    Transformers (>= 4.43) and vLLM read the template from
    ``chat_template.jinja`` next to ``tokenizer_config.json``; write it there
    when ``save_pretrained`` did not.

    Args:
        out_dir: Directory holding the saved tokenizer.
        template: Jinja chat template.
    """
    jinja = out_dir / "chat_template.jinja"
    if jinja.is_file() and jinja.read_text(encoding="utf-8").strip():
        return
    config_path = out_dir / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("chat_template"):
            return
    jinja.write_text(template, encoding="utf-8")


def convert(gguf_path: Path, out_dir: Path, dtype: str = "bfloat16") -> dict[str, Any]:
    """Convert a GGUF file into a Hugging Face model directory.

    The result is written to a temporary sibling directory first and renamed
    into place, so an interrupted run never leaves a half-written ``out_dir``.

    Args:
        gguf_path: Source GGUF file.
        out_dir: Directory to write the model, tokenizer and marker into.
        dtype: One of ``float16``, ``bfloat16`` or ``float32``.

    Returns:
        A summary dict with ``status`` (``"converted"`` or ``"up-to-date"``),
        ``out``, ``dtype``, ``gguf_sha256``, ``seconds`` and ``bytes``.

    Raises:
        FileNotFoundError: If ``gguf_path`` does not exist.
        ValueError: If ``dtype`` is not supported.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    gguf_path = gguf_path.resolve()
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_path}")
    out_dir = out_dir.resolve()
    started = time.monotonic()
    sha256 = sha256_file(gguf_path)
    if is_up_to_date(out_dir, sha256, dtype):
        return _summary("up-to-date", out_dir, dtype, sha256, started)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source_dir, file_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
    template = read_gguf_chat_template(gguf_path)
    if template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = template
    model = AutoModelForCausalLM.from_pretrained(
        source_dir, gguf_file=file_name, dtype=getattr(torch, dtype)
    )
    _strip_quantization(model)
    model = model.to(getattr(torch, dtype))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _make_readable(staging)
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        if template:
            _write_chat_template(staging, template)
        marker = {"gguf": str(gguf_path), "gguf_sha256": sha256, "dtype": dtype}
        (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        for path in staging.iterdir():
            _make_readable(path)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _summary("converted", out_dir, dtype, sha256, started)


def _make_readable(path: Path) -> None:
    """Give ``path`` the permissions a normal file or directory would get.

    ``tempfile.mkdtemp`` (and some writers) create private (0700/0600) entries;
    this applies the process umask to 0777 (directories) or 0666 (files).

    Args:
        path: File or directory to adjust.
    """
    umask = os.umask(0)
    os.umask(umask)
    base = 0o777 if path.is_dir() else 0o666
    path.chmod(base & ~umask)


def _summary(status: str, out_dir: Path, dtype: str, sha256: str, started: float) -> dict[str, Any]:
    """Build the result dict returned by :func:`convert`.

    Args:
        status: ``"converted"`` or ``"up-to-date"``.
        out_dir: Output directory.
        dtype: Weight dtype name.
        sha256: Digest of the source GGUF.
        started: ``time.monotonic()`` value at the start of the run.

    Returns:
        The summary dict.
    """
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "status": status,
        "out": str(out_dir),
        "dtype": dtype,
        "gguf_sha256": sha256,
        "seconds": round(time.monotonic() - started, 2),
        "bytes": size,
    }


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The argument parser.
    """
    parser = argparse.ArgumentParser(
        description="Convert a GGUF checkpoint into a Hugging Face model directory."
    )
    parser.add_argument("--gguf", required=True, type=Path, help="source .gguf file")
    parser.add_argument("--out", required=True, type=Path, help="output model directory")
    parser.add_argument(
        "--dtype", choices=DTYPES, default="bfloat16", help="weight dtype (default bfloat16)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the converter from the command line and print a one-line summary.

    Args:
        argv: Arguments, without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        result = convert(args.gguf, args.out, args.dtype)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"convert_gguf: error: {error}", file=sys.stderr)
        return 1
    print(
        f"convert_gguf: {result['status']} {result['out']} dtype={result['dtype']} "
        f"size={result['bytes'] / 1e6:.1f}MB sha256={result['gguf_sha256'][:12]} "
        f"in {result['seconds']}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
