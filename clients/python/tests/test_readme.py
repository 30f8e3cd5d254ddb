"""The Python snippets of the READMEs compile, and name only calls the client has."""

import ast
import re
from pathlib import Path

import pytest

import rumor

HERE = Path(__file__).resolve().parent
DOCS = [HERE.parent / "README.md", HERE.parents[2] / "README.md"]


def snippets():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        if doc == DOCS[1]:  # the main README: its "From Python" section only
            start = text.index("## From Python")
            text = text[start:text.index("\n## ", start + 1)]
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(block, id=f"{doc.parent.name}-{i}")


@pytest.mark.parametrize("code", list(snippets()))
def test_snippet(code):
    tree = ast.parse(code)
    # Every client.<method>(...) the snippet calls exists.
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            obj = node.func.value
            if isinstance(obj, ast.Name) and obj.id == "client":
                assert hasattr(rumor.Client, node.func.attr), f"no Client.{node.func.attr}"
            if isinstance(obj, ast.Name) and obj.id == "rumor":
                assert hasattr(rumor, node.func.attr), f"no rumor.{node.func.attr}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "rumor":
            assert hasattr(rumor, node.attr), f"no rumor.{node.attr}"
