"""Where and in which precision the chat model runs: the GPU in bf16, else the CPU (bf16 where
oneDNN has native bf16 kernels)."""

from __future__ import annotations

from typing import Any


def pick_device(requested: str) -> str:
    """`auto` is the GPU when torch sees one."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def pick_dtype(requested: str, device: str) -> Any:
    """bf16 on a GPU and on a CPU with native bf16 (AVX512-BF16, AMX), else fp32; unless told."""
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_has_bf16() else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
        requested
    ]


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 matmuls natively here: there bf16 halves a CPU prefill and a batched
    decode step (measured on AVX512-BF16: 207 -> 112 ms and 123 -> 76 ms for SmolLM2-135M)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
