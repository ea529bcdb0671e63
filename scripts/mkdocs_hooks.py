"""mkdocs hook: drop nav entries whose page does not exist (yet).

Pages that other work adds (docs/reliability.md, docs/dask.md) are listed in mkdocs.yml; until a
page exists its entry is removed here, so ``mkdocs build --strict`` passes either way. Every other
strict check (broken links, docstrings, pages outside the nav) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

OPTIONAL = {"reliability.md", "dask.md"}


def _prune(items: list, docs: Path) -> list:
    kept = []
    for item in items:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                value = _prune(value, docs)
                if value:
                    kept.append({title: value})
                continue
            if isinstance(value, str) and value in OPTIONAL and not (docs / value).is_file():
                continue
        elif isinstance(item, str) and item in OPTIONAL and not (docs / item).is_file():
            continue
        kept.append(item)
    return kept


def on_config(config):
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config
