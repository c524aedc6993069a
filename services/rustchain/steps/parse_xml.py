"""The `parse_xml` step: parse XML text (or a workspace file) into a tree and RustChain's list.

defusedxml parses: it refuses DTD entity declarations and external references (billion laughs,
XXE), which the standard library's parsers would expand or fetch.
"""

from __future__ import annotations

from typing import Annotated, Any
from xml.etree import ElementTree

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import source_text


class ParseXmlParameters(BaseModel):
    """The text to parse (RustChain's `content`), or the path of a file holding it."""

    model_config = PARAMETERS
    content: str | None = None
    path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParseXmlParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("a parse_xml step needs exactly one of 'content' or 'path'")
        return self


MAX_TEXT = 10 * 1024 * 1024
# The tree is the step's output, recorded as JSON: deeper documents are refused, not truncated.
MAX_DEPTH = 100


def depth(root: ElementTree.Element) -> int:
    """How deeply elements nest (the root alone is 1), found without recursion."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        element, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in element)
    return deepest


def local_name(tag: str) -> str:
    """An element's name without its namespace (`{uri}name` and `prefix:name` give `name`)."""
    return tag.rpartition("}")[2].rpartition(":")[2]


def element_tree(element: ElementTree.Element) -> dict[str, Any]:
    """One element as JSON: name, attributes, its own text and its children in order."""
    return {
        "name": local_name(element.tag),
        "attributes": {local_name(k): v for k, v in element.attrib.items()},
        "text": element.text or "",
        "children": [element_tree(child) for child in element],
    }


def flat_elements(root: ElementTree.Element) -> list[dict[str, str]]:
    """RustChain's list: each non-blank text under the element opened last before it (text
    after a child's end tag goes to the last element opened inside that child)."""
    found: list[dict[str, str]] = []

    def add(name: str, text: str | None) -> None:
        if text and text.strip():
            found.append({"element": name, "content": text})

    def visit(element: ElementTree.Element) -> str:
        name = local_name(element.tag)
        add(name, element.text)
        last = name
        for child in element:
            last = visit(child)
            add(last, child.tail)
        return last

    visit(root)
    return found


async def parse_xml(params: ParseXmlParameters, context: StepContext) -> dict[str, Any]:
    """The document as a tree (`root`), plus RustChain's flat `elements` and their count."""
    from defusedxml import DefusedXmlException  # loaded when the step runs
    from defusedxml.ElementTree import fromstring

    text = source_text(context, params.content, params.path, MAX_TEXT)
    try:
        root = fromstring(text)
        if depth(root) > MAX_DEPTH:
            raise StepRunError(f"the XML nests elements more than {MAX_DEPTH} deep")
        elements = flat_elements(root)
        tree = element_tree(root)
    except ElementTree.ParseError as error:
        raise StepRunError(f"invalid XML: {error}") from None
    except DefusedXmlException as error:
        raise StepRunError(f"XML refused: {error} (entities and DTDs are not expanded)") from None
    return {"root": tree, "elements": elements, "element_count": len(elements), "valid": True}


STEP_TYPE = StepDefinition("parse_xml", "Parse XML text", ParseXmlParameters, run=parse_xml)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A file parsed must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
