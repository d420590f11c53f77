"""The house rules a newcomer relies on: packages in one direction of dependencies, no cycles, Gradio only
in ``ui/``, texts only in the catalogue, a small top level, and a README that maps the tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "aliyun_image"
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL_MODULES = 10

# Top to bottom: a unit (a package or top-level module of aliyun_image) imports only units on lower rows,
# and units that share a row do not import each other. The entry points (cli) launch the page (ui), so
# cli sits above ui; nothing below ui imports Gradio.
LAYERS: list[set[str]] = [
    {"cli"},
    {"ui"},
    {"runtime"},
    {"generation"},
    {"money", "recipes"},
    {"storage", "dashscope", "emulator"},
    {"jobs"},
    {"catalog", "images"},
    {"config"},
    {"errors", "enums"},
    {"i18n"},
]
RANK = {unit: row for row, units in enumerate(LAYERS) for unit in units}
# The package's face (``aliyun_image/__init__``) and ``python -m aliyun_image`` stand above every row.
FACES = {"aliyun_image", "aliyun_image.__main__"}


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


KNOWN = {module_name(p) for p in modules()}


def imported(me: str, is_package: bool, source: str) -> set[str]:
    """Every ``aliyun_image...`` name module ``me`` imports, absolute (``from . import x`` names ``pkg.x``)."""
    package = me if is_package else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # ``from pkg import mod`` imports the module ``pkg.mod``; ``from pkg import name``, the package
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in KNOWN else base for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("aliyun_image.")}


def imports_of(path: Path) -> set[str]:
    return imported(module_name(path), path.name == "__init__.py", path.read_text(encoding="utf-8"))


def unit_of(name: str) -> str:
    return name.split(".")[1]


def layer_violations(sources: dict[str, str]) -> list[str]:
    """``importer -> imported`` pairs that break :data:`LAYERS`, for ``{module name: source}``."""
    bad = []
    for me, source in sorted(sources.items()):
        if me in FACES:
            continue
        mine = unit_of(me)
        is_package = (PKG / Path(*me.split(".")[1:]) / "__init__.py").exists()
        for target in sorted(imported(me, is_package, source)):
            theirs = unit_of(target)
            # __version__ is set first thing in the face, before it imports anything (client and CLI print it)
            if theirs == mine or target == "aliyun_image.__version__":
                continue
            if mine not in RANK or theirs not in RANK:
                bad.append(f"{me} -> {target} (a unit missing from LAYERS)")
            elif RANK[theirs] <= RANK[mine]:
                bad.append(f"{me} -> {target}")
    return bad


def test_dependencies_run_one_way_down_the_layers():
    bad = layer_violations({module_name(p): p.read_text(encoding="utf-8") for p in modules()})
    assert not bad, "imports against the layers (see LAYERS):\n" + "\n".join(bad)


@pytest.mark.parametrize("module, source, verdict", [
    ("aliyun_image.storage.probe", "from ..generation.service import ImageService\n",
     ["aliyun_image.storage.probe -> aliyun_image.generation.service"]),
    ("aliyun_image.money.probe", "from ..recipes import reuse\n",
     ["aliyun_image.money.probe -> aliyun_image.recipes.reuse"]),
    ("aliyun_image.errors", "import aliyun_image.config\n", ["aliyun_image.errors -> aliyun_image.config"]),
    ("aliyun_image.ui.probe", "from ..generation.service import ImageService\nfrom ..i18n import t\n", []),
])
def test_the_layering_check_catches_imports_that_run_back_up(module, source, verdict):
    """The check itself can fail: an import up or sideways is named, one down is not."""
    assert layer_violations({module: source}) == verdict


def test_no_import_cycle_between_modules():
    graph = {module_name(p): {n for n in imports_of(p) if n in KNOWN} - {module_name(p)} for p in modules()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, " -> ".join(cycle)


def test_only_the_ui_imports_gradio():
    for path in modules():
        if path.relative_to(PKG).parts[0] == "ui":
            continue
        assert not re.search(r"^\s*(import|from)\s+gradio\b", path.read_text(encoding="utf-8"), re.M), path


def test_a_small_top_level():
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_package_has_a_public_face():
    for init in PKG.glob("*/__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} says nothing about its package"
        names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                 if isinstance(t, ast.Name)]
        assert "__all__" in names, f"{init} has no __all__"


def test_the_library_api_is_the_package_itself():
    import aliyun_image as ai

    for name in ("ImageService", "Settings", "Job", "AliyunImageError", "ValidationError", "ApiError"):
        assert name in ai.__all__ and hasattr(ai, name), name


PERSON_TEXT = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
SLOT_NAME = re.compile(r"图(\d+|n|N)")


def test_no_chinese_or_japanese_sentence_outside_the_catalogue():
    """A person's text lives in i18n/locales; the emulator (a stand-in for the service) is exempt."""
    hits = []
    for path in modules():
        if path.relative_to(PKG).parts[0] == "emulator":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # the fusion slots' names (图1...) are what the model reads; the default negative prompt is data
            if PERSON_TEXT.search(SLOT_NAME.sub("", line)) and not line.startswith("DEFAULT_NEGATIVE = "):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:80]}")
    assert not hits, "\n".join(hits)


def test_no_function_over_the_limit():
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = n
    assert not long, f"split these functions into steps (over {MAX_FUNCTION_LINES} lines): {long}"


@pytest.mark.parametrize("section", ["## Layout"])
def test_readme_layout_names_every_package_and_module(section):
    layout = (REPO / "README.md").read_text(encoding="utf-8").split(section, 1)[1]
    names = {p.stem for p in PKG.rglob("*.py") if p.stem not in ("__init__", "__main__")}
    names |= {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", layout))
    assert not missing, f"README's layout section does not mention: {missing}"


def test_all_sql_lives_in_storage_and_the_store_has_no_raw_sql_door():
    """The index's SQL is storage's (records and the charge book name every query): nothing else opens
    SQLite, and the result store hands out no door to run SQL through."""
    from aliyun_image.storage import ResultRecords, ResultStore

    for path in modules():
        if path.relative_to(PKG).parts[0] != "storage":
            assert not re.search(r"^\s*(import|from)\s+sqlite3\b", path.read_text(encoding="utf-8"), re.M), path
    for door in ("rows", "charges", "execute", "_db"):
        assert not hasattr(ResultStore, door), door
    assert not hasattr(ResultRecords, "rows") and not hasattr(ResultRecords, "execute")
