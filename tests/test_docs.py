"""The docs stay true: generated documents match the code they describe, links resolve in a
clone, and the commands the README and docs/CNAPS.md show run as written."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.params import markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_parameters_doc_matches_registry() -> None:
    assert (ROOT / "docs" / "PARAMETERS.md").read_text(encoding="utf-8") == markdown(), (
        "docs/PARAMETERS.md is stale: run python tools/gen_params_doc.py")


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text[: text.index("## ")]
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_clone(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name}: {target} is outside the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"
    # the project's working briefs are not in a clone: the docs may not send readers there
    assert "../shared/docs" not in text, f"{doc.name} points at ../shared/docs"


def test_domain_page_has_the_sections_the_code_cites() -> None:
    """Code comments cite DOMAIN.md §1-§7 and stories 1-7."""
    text = (ROOT / "docs" / "DOMAIN.md").read_text(encoding="utf-8")
    for n in range(1, 8):
        assert re.search(rf"^## {n}\. ", text, re.MULTILINE), f"§{n}"
        assert re.search(rf"^{n}\. \*\*", text, re.MULTILINE), f"story {n}"


def test_the_licence_is_an_spdx_string() -> None:
    """setuptools >= 77 warns about the table form on every install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(project["project"]["license"], str)
    (requirement,) = project["build-system"]["requires"]
    version = tuple(int(v) for v in requirement.split("==")[1].split(".")[:1])
    assert version >= (77,), requirement


def test_make_bench_says_how_long_it_takes() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = text[text.index("\nbench:") + 1:].split("\n\n", 1)[0].splitlines()[1:]
    assert "echo" in recipe[0] and "minutes" in recipe[0], recipe[0]


# ---------------------------------------------------------------------- examples


def _generator() -> object:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return generate


def test_examples_are_what_the_script_writes_and_valid_against_the_xsds() -> None:
    messages = _generator().messages()  # type: ignore[attr-defined]
    assert set(messages) == {p.name for p in (ROOT / "examples").glob("*.xml")}
    xsd = resources.files("qingsuan.messages").joinpath("xsd")
    for name, xml in messages.items():
        assert (ROOT / "examples" / name).read_bytes() == xml, (
            f"examples/{name} is stale: run python examples/generate.py")
        namespace = etree.QName(etree.fromstring(xml)).namespace
        message_type = namespace.rsplit(":", 1)[1]
        schema = etree.XMLSchema(etree.fromstring(xsd.joinpath(f"{message_type}.xsd")
                                                  .read_bytes()))
        schema.assertValid(etree.fromstring(xml))


# ---------------------------------------------------------------------- commands as written


def _commands(doc: Path, prefix: str) -> list[str]:
    """The ``qingsuan`` command lines of a doc's sh blocks (comments dropped)."""
    text = doc.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            if line.startswith(prefix):
                lines.append(line.split("  #", 1)[0].split(" # ", 1)[0].strip())
    return lines


def _run(line: str, prefix: str) -> tuple[int, str]:
    args = shlex.split(line)
    assert args[0] == prefix
    result = CliRunner().invoke(app, args[1:])
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        line, result.exception)
    return result.exit_code, result.stdout


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like a clone's top (scenarios/, examples/) to run commands in."""
    for name in ("scenarios", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_cnaps_commands_run_as_written(clone: Path) -> None:
    readme = ROOT / "README.md"
    lines = [line for line in _commands(readme, ".venv/bin/qingsuan")
             if "hvps-queue" in line or line.split()[1:2] == ["cnaps"]]
    assert any("cnaps send examples/pacs008.xml" in line for line in lines), lines
    for line in lines:
        code, out = _run(line, ".venv/bin/qingsuan")
        assert code == 0, (line, out[-2000:])
        if "cnaps send" in line:
            assert "<TxSts>ACSC</TxSts>" in out


def test_the_cnaps_page_session_runs_as_written(clone: Path) -> None:
    expected = {"pacs008.xml": "<TxSts>ACSC</TxSts>", "pacs009.xml": "<TxSts>ACSP</TxSts>",
                "camt056.xml": "<Conf>CNCL</Conf>", "--date": "camt.053",
                "statement": "camt.05", "verify": "chain intact"}
    lines = _commands(ROOT / "docs" / "CNAPS.md", "qingsuan ")
    assert len(lines) == 7, lines
    for line in lines:
        code, out = _run(line, "qingsuan")
        assert code == 0, (line, out[-2000:])
        word = next((k for k in expected if k in line), None)
        if word is not None:
            assert expected[word] in out, (line, out[-2000:])
    # the camt.056 again: the payment is no longer queued, CNAPS refuses, exit 1
    code, out = _run(next(line for line in lines if "camt056" in line), "qingsuan")
    assert code == 1 and "<Conf>RJCR</Conf>" in out
