"""The latent code: the assembly rule of METHOD §5, the run's code table, and the category table
as its only source."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pegasus.avatar.latent import ABSENT_ROW, LatentCodes, LatentTable, assemble_rows, latent_size, synthetic_owner
from pegasus.data import parts

PACKAGE = Path(__file__).resolve().parents[2] / "code" / "pegasus"


def _record(subject, role="target", category=None, db_person=None):
    return SimpleNamespace(subject=subject, role=role, category=category, db_person=db_person)


def test_assembly_rule_by_hand():
    categories = ("identity", "hair", "hat", "nose")
    rows = {("anna", "identity"): 1, ("anna", "hair"): 2, ("anna", "nose"): 3, ("ben@anna", "hat"): 4}

    def row_of(owner, category):
        return rows[(owner, category)]

    has = {"identity", "hair", "nose"}
    # her own video: her codes where she has a part, the shared absent code elsewhere
    assert assemble_rows(categories, has, row_of, "anna") == (1, 2, ABSENT_ROW, 3)
    # anna wearing ben's hat: the hat block takes the synthetic video's code
    assert assemble_rows(categories, has, row_of, "anna", swap=("hat", "ben@anna")) == (1, 2, 4, 3)
    with pytest.raises(KeyError):
        assemble_rows(categories, has | {"hat"}, row_of, "anna")  # a part without a code


def test_table_of_a_run_with_people_and_synthetic_videos():
    records = [_record("target"), _record("target", "synthetic", "hair", "db_00"),
               _record("target", "synthetic", "hair", "db_01"), _record("db_00", "db")]
    has = {"target": {"identity", "hair", "eyebrows"}, "db_00": {"identity", "hair", "hat"}}
    table = LatentTable.from_videos(records, lambda person: has[person])
    assert table.categories == tuple(c.name for c in parts.LATENT_CATEGORIES)
    assert table.num_rows == 1 + 3 + 3 + 2  # absent, the target's 3, db_00's 3, two synthetic swaps
    hair = table.categories.index("hair")
    own = table.rows_for("target", "target")
    swapped = table.rows_for("target", "synthetic", "hair", "db_01")
    assert [i for i, (a, b) in enumerate(zip(own, swapped)) if a != b] == [hair]
    assert swapped[hair] == table.row(synthetic_owner("db_01", "target"), "hair")
    assert own[table.categories.index("hat")] == ABSENT_ROW
    assert table.rows_for("db_00", "db")[table.categories.index("hat")] == table.row("db_00", "hat")
    with pytest.raises(KeyError, match="no latent code"):
        table.rows_for("target", "synthetic", "nose", "db_00")  # a swap the run never trained
    assert LatentTable.from_json(table.to_json()) == table


def test_codes_assemble_one_hot_and_code_blocks():
    codes = LatentCodes(num_rows=5, num_categories=3, code_dim=2)
    with torch.no_grad():
        codes.codes.copy_(torch.arange(10, dtype=torch.float32).reshape(5, 2))
    z = codes(torch.tensor([[1, 0, 4]]))
    assert z.shape == (1, latent_size(3, 2)) == (1, 15)
    torch.testing.assert_close(z[0], torch.tensor([1, 0, 0, 2, 3, 0, 1, 0, 0, 1, 0, 0, 1, 8, 9.0]))
    # a mean over frames: the regulariser of two frames is the mean of theirs
    a, b = torch.tensor([[1, 2, 3]]), torch.tensor([[0, 0, 4]])
    torch.testing.assert_close(codes.regulariser(torch.cat([a, b])),
                               (codes.regulariser(a) + codes.regulariser(b)) / 2)


def test_a_category_added_to_the_table_reaches_every_piece(monkeypatch, make, settings):
    """Adding a category is a change of pegasus.data.parts only: the run's table, the latent size,
    the model and the dataset entries follow it."""
    extended = (*parts.LATENT_CATEGORIES, parts.LatentCategory("earrings", frozenset({9}), swappable=True))
    monkeypatch.setattr(parts, "LATENT_CATEGORIES", extended)
    records = [_record("anna"), _record("anna", "synthetic", "earrings", "ben")]
    table = LatentTable.from_videos(records, lambda person: {"identity", "earrings"})
    assert table.categories[-1] == "earrings" and len(table.categories) == 10
    assert table.rows_for("anna", "synthetic", "earrings", "ben")[-1] == table.row("ben@anna", "earrings")
    assert parts.category_classes("earrings") == (parts.SEMANTIC_CLASSES.index(
        next(c for c in parts.SEMANTIC_CLASSES if 9 in c.label_ids)),)
    from pegasus.avatar.index import RunIndex
    from pegasus.avatar.model import PointAvatar
    from pegasus.config import load_config
    from pegasus.data.settings import VideoEntry

    assert not VideoEntry(subject="anna", video="v", role="synthetic", category="earrings", db_person="ben").problems()
    cfg = load_config(Path(__file__).resolve().parents[2] / "confs" / "base.conf",
                      ["model.latent.code_dim=4", "model.points.init_count=50", "model.geometry.hidden_layers=2",
                       "model.geometry.width=16", "model.deformer.hidden_layers=1", "model.deformer.width=16"])
    hm = make.head_model()
    batch = make.batch(hm, 1, 16)
    model = PointAvatar(hm, cfg.model, cfg.loss, RunIndex(("anna",), latent=table), batch.expression,
                        torch.ones(hm.n_expr), batch.shape[0], batch.expression[0], 0.4)
    assert model.latent_codes.latent_dim == 10 * (10 + 4)
    out = model(batch.replace(latent_rows=torch.tensor([table.rows_for("anna", "target")])))
    assert out.rgb.shape == (1, 16, 16, 3)


def test_no_category_name_is_spelled_outside_the_table():
    """The core reads categories from pegasus.data.parts; only generators of parts (synthdb) and
    the table itself name them."""
    names = "|".join(c.name for c in parts.LATENT_CATEGORIES if c.name != "identity")
    literal = re.compile(rf"""["']({names})["']""")
    offenders = []
    for folder in ("avatar", "train", "data", "eval", "config", "cli"):
        for path in (PACKAGE / folder).rglob("*.py"):
            if path.name == "parts.py":
                continue
            offenders += [f"{path.relative_to(PACKAGE)}: {m.group(0)}" for m in literal.finditer(path.read_text())]
    assert not offenders, offenders
