"""GeminiReranker judging image and PDF-page candidates (issue 15 §4).

The real SDK against the emulator: media go to the judge inline, inside their passage's
tags; the emulator's judge reads an image by its embedded description and a PDF by its text
layer (its documented stand-in for vision), so a text query can rank a picture first.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, MediaResource, Node, NodeWithScore, TextNode

from llama_index_gemini_embed._rerank.postprocessor import GeminiReranker
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import pdf_with_pages, png_with_description

QUERY = "red bicycle at night"


async def no_sleep(seconds: float) -> None:
    """Backoff waits are skipped."""


def make(emu: Emulator, **kwargs: Any) -> GeminiReranker:
    kwargs.setdefault("sleep", no_sleep)
    kwargs.setdefault("top_n", None)
    return GeminiReranker(api_key=emu.api_key, base_url=emu.base_url, **kwargs)


def judge_bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith(":generateContent") and r.body]


def inline_parts(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(MIME type, bytes) of each inline part, as sent (the SDK: snake case, URL-safe)."""
    out = []
    for content in body["contents"]:
        for part in content["parts"]:
            blob = part.get("inlineData") or part.get("inline_data")
            if blob is not None:
                mime = blob.get("mimeType") or blob.get("mime_type")
                out.append((mime, base64.urlsafe_b64decode(blob["data"])))
    return out


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.node_id for n in nodes]


def test_images_are_judged_by_what_they_show(emulator: Emulator, tmp_path: Path) -> None:
    bike = png_with_description("a red bicycle parked in the street at night")
    cat = png_with_description("a grey cat asleep on a sofa")
    (tmp_path / "bike.png").write_bytes(bike)
    nodes = [
        NodeWithScore(node=TextNode(id_="text", text="Opening hours of the museum."), score=0.9),
        NodeWithScore(node=ImageNode(id_="cat", image=base64.b64encode(cat).decode()), score=0.8),
        NodeWithScore(node=ImageNode(id_="bike", image_path=str(tmp_path / "bike.png")), score=0.7),
        NodeWithScore(
            node=Node(id_="res", image_resource=MediaResource(data=cat, mimetype="image/png")),
            score=0.6,
        ),
    ]
    result = make(emulator).postprocess_nodes(nodes, query_str=QUERY)
    assert ids(result)[0] == "bike" and sorted(ids(result)) == sorted(ids(nodes))
    assert result[0].score is not None and result[0].score > 0.5
    (body,) = judge_bodies(emulator)
    media = inline_parts(body)
    assert [mime for mime, _ in media] == ["image/png"] * 3
    assert media[1][1] == bike  # in candidate order
    texts = [p.get("text", "") for p in body["contents"][0]["parts"]]
    assert texts[0].startswith("<query>") and texts[-1].startswith("\n</passage>")


def test_a_pdf_page_range_is_sent_and_named(emulator: Emulator, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(pdf_with_pages(["quarterly sales table", "a red bicycle at night"]))
    page = Node(
        id_="pdf",
        text_resource=MediaResource(text=""),
        metadata={
            "modality": "pdf",
            "file_path": str(pdf),
            "file_name": "report.pdf",
            "mime_type": "application/pdf",
            "page_start": 1,
            "page_end": 2,
        },
    )
    nodes = [
        NodeWithScore(node=TextNode(id_="t", text="Train timetables."), score=0.9),
        NodeWithScore(node=page, score=0.5),
    ]
    result = make(emulator).postprocess_nodes(nodes, query_str=QUERY)
    assert ids(result) == ["pdf", "t"]
    (body,) = judge_bodies(emulator)
    ((mime, data),) = inline_parts(body)
    assert mime == "application/pdf" and data == pdf.read_bytes()
    prompt = "".join(p.get("text", "") for p in body["contents"][0]["parts"])
    assert "Attached: pages 1-2 of PDF report.pdf" in prompt


def test_media_stay_within_the_request_budget_and_no_node_is_dropped(
    emulator: Emulator, tmp_path: Path
) -> None:
    small = png_with_description("a red bicycle at night", size=8)
    big = png_with_description("a red bicycle at night", size=200)
    budget = len(big) + len(small) // 2  # two smalls + big do not fit in one request
    nodes = [
        NodeWithScore(node=ImageNode(id_=f"s{i}", image=base64.b64encode(small).decode()))
        for i in range(2)
    ]
    nodes.append(NodeWithScore(node=ImageNode(id_="big", image=base64.b64encode(big).decode())))
    nodes.append(
        NodeWithScore(
            node=ImageNode(
                id_="missing", image_path=str(tmp_path / "gone.png"), metadata={"title": "Bike"}
            )
        )
    )
    huge = png_with_description("a red bicycle at night", size=400)
    nodes.append(
        NodeWithScore(
            node=ImageNode(
                id_="huge", image=base64.b64encode(huge).decode(), metadata={"title": "Huge"}
            )
        )
    )
    reranker = make(emulator, max_media_bytes_per_request=budget)
    result = reranker.postprocess_nodes(nodes, query_str=QUERY)
    assert sorted(ids(result)) == sorted(ids(nodes))  # never a node dropped
    bodies = judge_bodies(emulator)
    assert len(bodies) >= 2  # split by bytes, not only by count
    for body in bodies:
        sent = sum(len(data) for _, data in inline_parts(body))
        assert sent <= budget
    report = reranker.last_report
    assert report is not None
    assert any("gone.png" in p and "judged by its text" in p for p in report.problems), report
    assert any("over max_media_bytes_per_request" in p for p in report.problems)
    assert report.judged == len(nodes)


def test_text_only_when_media_are_switched_off(emulator: Emulator) -> None:
    bike = png_with_description("a red bicycle at night")
    nodes = [NodeWithScore(node=ImageNode(id_="bike", image=base64.b64encode(bike).decode()))]
    make(emulator, max_media_bytes_per_request=0).postprocess_nodes(nodes, query_str=QUERY)
    (body,) = judge_bodies(emulator)
    assert inline_parts(body) == []


def test_a_negative_media_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_media_bytes_per_request=-1 is invalid"):
        GeminiReranker(api_key="k", max_media_bytes_per_request=-1)
