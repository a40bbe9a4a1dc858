"""docs/workers.md cannot drift from the files it quotes, nor lose a language's commands."""

from __future__ import annotations

from tests.strangers.blocks import ROOT, excerpt_found, marked_blocks


def test_every_excerpt_in_the_docs_is_in_the_file_it_names() -> None:
    excerpts = [block for block in marked_blocks() if block.kind == "excerpt"]

    assert excerpts
    for block in excerpts:
        source = (ROOT / block.name).read_text()
        assert excerpt_found(block.text, source), (
            f"docs/workers.md quotes {block.name} wrongly:\n{block.text}"
        )


def test_the_docs_give_tested_commands_for_go_node_java_and_rust() -> None:
    tested = sorted(block.name for block in marked_blocks() if block.kind == "tested")

    assert tested == ["go", "java", "node", "rust"]
