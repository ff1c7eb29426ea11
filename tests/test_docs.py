"""The docs stay true: generated documents match the code they describe."""

from pathlib import Path

from qingsuan.params import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_parameters_doc_matches_registry() -> None:
    assert (ROOT / "docs" / "PARAMETERS.md").read_text(encoding="utf-8") == markdown(), (
        "docs/PARAMETERS.md is stale: run python tools/gen_params_doc.py")


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text[: text.index("## ")]
    assert "make demo" in head and "make test" in head
