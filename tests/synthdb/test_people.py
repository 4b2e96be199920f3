"""The synthetic population: parts catalogue, sampling rules, determinism."""
from __future__ import annotations

from dataclasses import replace

import pytest

from pegasus.config import ConfigError
from pegasus.data.parts import LATENT_CATEGORIES, category
from pegasus.headmodel.standin import IDENTITY_COMPONENTS
from pegasus.synthdb.people import CATALOGUE, Variant, identity_components, sample_population


@pytest.fixture(scope="module")
def settings(tiny_config_factory, tmp_path_factory):
    cfg = tiny_config_factory(tmp_path_factory.mktemp("people"), "synth_db.n_db=9", "synth_db.seed=3")
    return cfg.synth_db


def test_catalogue_covers_every_part_category_in_code_order():
    parts = [c.name for c in LATENT_CATEGORIES if c.is_part]
    assert list(CATALOGUE) == parts
    for name, options in CATALOGUE.items():
        assert len(options.styles) >= 3, name
        assert options.absent is None or options.absent in options.styles
        assert not options.worn or options.absent is not None


def test_population_names_roles_and_order(settings):
    people = sample_population(settings, IDENTITY_COMPONENTS)
    assert [p.name for p in people] == ["target", *[f"db_{k:02d}" for k in range(9)], "new_person"]
    assert [p.role for p in people] == ["target"] + ["db"] * 9 + ["new_person"]


def test_target_and_new_person_wear_nothing_and_have_hair(settings):
    people = sample_population(settings, IDENTITY_COMPONENTS)
    for person in (people[0], people[-1]):
        assert person.has_part("hair")
        assert not person.has_part("hat") and not person.has_part("eyeglasses")


def test_db_people_differ_from_the_target_in_every_part(settings):
    target, *db, new_person = sample_population(settings, IDENTITY_COMPONENTS)
    for person in [*db, new_person]:
        for name, options in CATALOGUE.items():
            if options.worn:
                continue
            own, theirs = target.part(name), person.part(name)
            assert theirs.style != own.style, (person.name, name)
            if theirs.colour is not None and own.colour is not None:
                assert theirs.colour != own.colour, (person.name, name)
        assert person.identity != target.identity


def test_db_variants_cycle_through_all_styles_and_accessories_are_balanced(settings):
    target, *db, _ = sample_population(settings, IDENTITY_COMPONENTS)
    for name, options in CATALOGUE.items():
        seen = {p.part(name).style for p in db}
        if options.worn:
            wearers = sum(p.has_part(name) for p in db)
            assert abs(wearers - settings.db_accessory_fraction * len(db)) <= 1, name
        else:
            assert seen == set(options.styles) - {target.part(name).style}, name


def test_population_is_deterministic_and_stable_when_it_grows(settings):
    first = sample_population(settings, IDENTITY_COMPONENTS)
    again = sample_population(settings, IDENTITY_COMPONENTS)
    assert first == again
    smaller = sample_population(replace(settings, n_db=3), IDENTITY_COMPONENTS)
    assert smaller[:4] == first[:4] and smaller[-1] == first[-1]
    other_seed = sample_population(replace(settings, seed=settings.seed + 1), IDENTITY_COMPONENTS)
    assert other_seed[0] != first[0]


def test_with_part_changes_one_part_only(settings):
    target, donor, *_ = sample_population(settings, IDENTITY_COMPONENTS)
    swapped = target.with_part("nose", donor.part("nose"))
    assert swapped.part("nose") == donor.part("nose")
    assert swapped.identity == target.identity
    assert [v for n, v in swapped.parts if n != "nose"] == [v for n, v in target.parts if n != "nose"]
    coefficients = swapped.shape_coefficients()
    assert {k: v for k, v in coefficients.items() if not k.startswith("nose")} == {
        k: v for k, v in target.shape_coefficients().items() if not k.startswith("nose")}
    with pytest.raises(KeyError, match="no part category 'identity'"):
        target.with_part("identity", Variant("x"))


def test_identity_components_exclude_part_components_and_check_the_model():
    names = identity_components(IDENTITY_COMPONENTS)
    assert "head_width" in names and "nose_width" not in names and "ear_size" not in names
    with pytest.raises(ValueError, match="nose_length"):
        identity_components([n for n in IDENTITY_COMPONENTS if n != "nose_length"])


def test_settings_errors_name_the_keys(tiny_config_factory, tmp_path):
    with pytest.raises(ConfigError) as err:
        tiny_config_factory(tmp_path, "synth_db.gt_categories=[hair, identity, wings]", "synth_db.n_db=0",
                            "synth_db.new_person=target")
    text = str(err.value)
    for expected in ("synth_db.n_db", "'identity' has no part labels", "wings", "synth_db.target, new_person"):
        assert expected in text
    assert category("hair").is_part
