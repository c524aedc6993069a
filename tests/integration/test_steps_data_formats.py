"""parse_xml and csv_process against real text and workspace files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from tests.integration.step_run_helpers import run_step


def test_parse_xml_gives_a_tree_and_rustchains_flat_list(tmp_path: Path) -> None:
    xml = '<r:a xmlns:r="urn:x" id="1">x<b k="v">y</b>z<c/>  </r:a>'

    output = run_step("parse_xml", tmp_path, content=xml)

    assert output["root"] == {
        "name": "a",
        "attributes": {"id": "1"},
        "text": "x",
        "children": [
            {"name": "b", "attributes": {"k": "v"}, "text": "y", "children": []},
            {"name": "c", "attributes": {}, "text": "", "children": []},
        ],
    }
    # RustChain's list: text after </b> belongs to b, the element opened last; blanks vanish.
    assert output["elements"] == [
        {"element": "a", "content": "x"},
        {"element": "b", "content": "y"},
        {"element": "b", "content": "z"},
    ]
    assert output["element_count"] == 3 and output["valid"] is True


def test_parse_xml_reads_a_workspace_file_and_reports_malformed_xml(tmp_path: Path) -> None:
    (tmp_path / "d.xml").write_text("<a><b>1</b></a>")

    assert run_step("parse_xml", tmp_path, path="d.xml")["element_count"] == 1
    with pytest.raises(StepRunError, match="invalid XML: mismatched tag"):
        run_step("parse_xml", tmp_path, content="<a><b></a>")


def test_parse_xml_refuses_entity_expansion_and_external_entities(tmp_path: Path) -> None:
    (tmp_path.parent / "secret.txt").write_text("secret")
    laughs = '<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    external = f'<!DOCTYPE x [<!ENTITY s SYSTEM "file://{tmp_path.parent}/secret.txt">]><x>&s;</x>'

    for hostile in (laughs, external):
        with pytest.raises(StepRunError, match="XML refused"):
            run_step("parse_xml", tmp_path, content=hostile)


def test_parse_xml_refuses_documents_nested_deeper_than_its_bound(tmp_path: Path) -> None:
    assert run_step("parse_xml", tmp_path, content="<a>" * 100 + "</a>" * 100)["valid"]
    with pytest.raises(StepRunError, match="more than 100 deep"):
        run_step("parse_xml", tmp_path, content="<a>" * 50_000 + "</a>" * 50_000)


def test_parse_xml_runtime_refuses_paths_the_policy_denies(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("<a>s</a>")

    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        run_step("parse_xml", tmp_path, policy=Policy(), path=".env")
    with pytest.raises(WorkspaceEscapeError):
        run_step("parse_xml", tmp_path, path="../outside.xml")


def test_csv_process_gives_headers_and_records_as_rustchain_did(tmp_path: Path) -> None:
    text = 'name,note\nann,"a, quoted ""word"""\n\nbob,\n'

    output = run_step("csv_process", tmp_path, content=text)

    assert output == {
        "headers": ["name", "note"],
        "records": [["ann", 'a, quoted "word"'], ["bob", ""]],
        "row_count": 2,
    }
    assert run_step("csv_process", tmp_path, content="") == {
        "headers": [],
        "records": [],
        "row_count": 0,
    }


def test_csv_process_reads_a_file_with_a_delimiter_and_refuses_ragged_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n")

    assert run_step("csv_process", tmp_path, path="t.tsv", delimiter="\t")["records"] == [
        ["1", "2"]
    ]
    with pytest.raises(StepRunError, match="line 3: found record with 1 fields"):
        run_step("csv_process", tmp_path, content="a,b\n1,2\n3\n")
    with pytest.raises(StepRunError, match="invalid CSV"):
        run_step("csv_process", tmp_path, content='a,b\n"1"x,2\n')


def test_csv_process_runtime_refuses_paths_the_policy_denies(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        run_step("csv_process", tmp_path, policy=Policy(), path="src/.git/config")
    with pytest.raises(WorkspaceEscapeError):
        run_step("csv_process", tmp_path, path="/etc/passwd")
