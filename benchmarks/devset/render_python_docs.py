"""Render topics of the Python documentation that ships inside the standard library
(`pydoc_data.topics`) to text files: the development set's corpus, documents the assistant was
never tuned on.

Run: `python -m benchmarks.devset.render_python_docs` (rewrites benchmarks/devset/python_docs/).
The committed files were rendered from Python 3.11; another version words some topics differently,
so re-render only together with a review of python_docs.yaml.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "python_docs"

SKIPPED = {
    # whole topics repeated inside others: keeping both would make "the expected source" ambiguous
    "compound": "repeats if, while, for, try, with, function and class",
    "specialnames": "repeats customization, attribute-access, sequence-types, numeric-types",
    "execmodel": "repeats naming and exceptions",
    "typesseq-mutable": "repeats a part of typesseq",
    "augassign": "repeats a part of assignment",
    "in": "repeats a part of comparisons",
    "id-classes": "repeats a part of identifiers",
    "else": "repeats a part of if",
    "dynamic-features": "repeats a part of naming",
}


def render(out: Path = OUT) -> list[Path]:
    """One `TOPIC.txt` per topic, its first line the topic's title; returns the files written."""
    from pydoc_data.topics import topics

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        old.unlink()
    written = []
    for name in sorted(topics):
        if name in SKIPPED:
            continue
        text = topics[name].strip().replace("\r\n", "\n")
        path = out / f"{name}.txt"
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    files = render(args.out)
    size = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {size / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
