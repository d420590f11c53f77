"""The house rules a newcomer relies on: small rooms, no import cycles, a README that maps the tree."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "aliyun_image"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def modules():
    return sorted(PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_over_the_limit():
    big = {str(p.relative_to(REPO)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"split these modules (over {MAX_MODULE_LINES} lines): {big}"


def test_no_function_over_the_limit():
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = n
    assert not long, f"split these functions into steps (over {MAX_FUNCTION_LINES} lines): {long}"


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Package modules ``path`` imports (``from . import x`` counts as importing ``x``)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found |= {m for m in (base, *(f"{base}.{a.name}" for a in node.names)) if m in known}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
    return found - {me}


def test_no_import_cycle():
    known = {module_name(p) for p in modules()}
    graph = {module_name(p): imports_of(p, known) for p in modules()}
    # depth-first search for a back edge; report the cycle it closes
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, " -> ".join(cycle)


def test_the_service_never_imports_gradio():
    for path in modules():
        if "ui" in path.relative_to(PKG).parts or path.name == "webapp.py":
            continue
        assert not re.search(r"^\s*(import|from)\s+gradio\b", path.read_text(), re.M), path


def test_readme_layout_names_every_module():
    readme = REPO / "README.md"
    layout = readme.read_text().split("## Layout", 1)[1]
    names = {p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "__main__")}
    names |= {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    names |= {p.stem for p in (PKG / "ui").glob("*.py") if p.stem != "__init__"}
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", layout))
    assert not missing, f"README's layout section does not mention: {missing}"
