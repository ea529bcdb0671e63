"""Every ```python block of README.md and docs/*.md runs, page by page, in a temporary folder.

Blocks of a page share one namespace, in order (a block may use what an earlier one defined). A
page whose blocks import a package that is not installed (an optional extra such as torch or dask)
is skipped with that reason. A block preceded by ``<!-- docs-test: skip REASON -->`` is not run; use
it only for code that cannot run here (it is listed in the skip reasons). Bash blocks are not run.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
_SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line number, code, skip reason or None)`` of each python block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        if lang in ("python", "py", "python3"):
            previous = next((ln for ln in reversed(lines[: start - 1]) if ln.strip()), "")
            skip = _SKIP.search(previous)
            blocks.append((start, "\n".join(body) + "\n", skip["reason"] or "marked skip" if skip else None))
    return blocks


def _missing_modules(code: str) -> list[str]:
    """Top-level packages the code imports that are not installed."""
    missing = []
    for node in ast.walk(ast.parse(code)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in missing and importlib.util.find_spec(top) is None:
                missing.append(top)
    return missing


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]

# Pages whose examples do not run yet, with the reason; their owners are making them runnable.
# Non-strict: a page that starts passing shows as XPASS and should be removed from here.
PENDING = {
}


def _param(page: Path):
    reason = PENDING.get(page.name)
    marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
    return pytest.param(page, marks=marks, id=page.relative_to(ROOT).as_posix())


def test_the_extractor_finds_the_examples():
    names = {p.name for p in PAGES_WITH_CODE}
    assert {"README.md", "quickstart.md", "streaming.md", "training.md", "deploy.md"} <= names
    assert all(code.strip() for p in PAGES_WITH_CODE for _, code, _ in python_blocks(p))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("page", [_param(p) for p in PAGES_WITH_CODE])
def test_page_examples_run(page: Path, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    missing = sorted({m for _, code, skip in blocks if skip is None for m in _missing_modules(code)})
    if missing:
        pytest.skip(f"{page.name} needs {', '.join(missing)}, not installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs_example__"}
    import fastgru as fg

    # an example may change process-wide settings (threads, batch invariance): later tests must not see them
    threads, invariant = fg.get_num_threads(), fg.get_batch_invariant()
    try:
        for lineno, code, skip in blocks:
            if skip is not None:
                continue
            exec(compile(code, f"{page.relative_to(ROOT)}:{lineno}", "exec"), namespace)  # noqa: S102
    finally:
        fg.set_num_threads(threads)
        fg.set_batch_invariant(invariant)
