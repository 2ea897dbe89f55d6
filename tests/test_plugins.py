"""A fifth head and its tab need one module each plus registration, no other edit:
a toy head and a toy tab from the test folder show up in ``load_head`` and in the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedsuite.app.ui import TABS, AppContext
from embedsuite.heads import HEADS, load_head
from embedsuite.testing import FakeEncoder
from tests.plugins import toy_head, toy_tab

TEXTS = ["a wonderful warm film", "great acting and a lovely story", "dull and far too long",
         "a boring mess of a plot"]
LABELS = ["pos", "pos", "neg", "neg"]


@pytest.fixture
def registered() -> Iterator[None]:
    toy_head.register()
    toy_tab.register()
    yield
    HEADS.unregister(toy_head.KIND)
    TABS.unregister(toy_tab.NAME)


def test_a_toy_head_saves_and_loads_through_load_head(registered: None, tmp_path: Path,
                                                      fake_encoder: FakeEncoder) -> None:
    head = toy_head.ToyCentroidHead(fake_encoder).fit(TEXTS, LABELS)
    folder = head.save(tmp_path / "toy")
    back = load_head(folder, fake_encoder)
    assert isinstance(back, toy_head.ToyCentroidHead)
    assert back.predict(TEXTS) == head.predict(TEXTS)
    assert [r["label"] for r in back.predict(TEXTS)] == LABELS  # type: ignore[index]
    # the base contract comes for free: params, clone, fitted checks
    from sklearn.base import clone
    from sklearn.utils.validation import check_is_fitted

    twin = clone(head)
    assert twin.encoder is fake_encoder and twin.get_params() == head.get_params()
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(twin)
    check_is_fitted(back)


def test_a_toy_tab_shows_in_the_app(registered: None, fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.blocks import build_demo

    ctx = AppContext(encoder_name="fake")
    ctx.resources["toy-head"] = toy_head.ToyCentroidHead(fake_encoder).fit(TEXTS, LABELS)
    demo = build_demo(ctx=ctx)
    labels = [c.get("props", {}).get("label") for c in demo.config["components"]]
    assert toy_tab.TITLE in labels
    fn = next(f for f in demo.fns.values() if f.api_name == "toy_classify")
    assert fn.fn("a lovely warm story")["label"] == "pos"
