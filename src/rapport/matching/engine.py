"""Probabilistic matching of person records with Splink (Fellegi-Sunter), trained without labels.

The engine knows nothing of the database: it takes records (``{"unique_id": …, **FIELDS}``, None for
unknown; optionally a ``gender``, not compared but guarding the decision), trains a model on them, and
scores candidate pairs. Splink runs on an embedded DuckDB by default, or on Spark when given a master URL
(``local[2]``, ``spark://host:7077``).

    >>> model = train(records)
    >>> pairs = score(records, model, min_probability=0.8)
    >>> pairs[0].probability, [(e.comparison, e.level, e.match_weight) for e in pairs[0].evidence]

The model is Splink's settings dictionary with its trained m and u probabilities; ``model.to_json()`` is
what a run keeps, so that later runs can score with it again (``MatchModel.from_json``). The comparisons,
blocking rules and training blocks are in :mod:`rapport.matching.design`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from rapport.matching import design
from rapport.matching.design import COLUMNS, FIELDS, Columns, RecordError

__all__ = ["FIELDS", "Evidence", "MatchModel", "MatchingError", "ScoredPair", "score", "train"]

logger = logging.getLogger(__name__)

#: pairs sampled at random to estimate u (how often strangers agree by chance): enough for levels as
#: rare as one in a million, and the same few seconds however many records there are
U_MAX_PAIRS = 2e6
#: pairs one expectation-maximisation block looks at, at most (Splink samples records beyond that)
EM_MAX_PAIRS = 2e6
#: records from which on EM blocks are sampled down to EM_MAX_PAIRS
EM_SAMPLE_FROM = 50_000


class MatchingError(ValueError):
    """The records, the thresholds or the model cannot be used; the message says why."""


@dataclass(frozen=True)
class Evidence:
    """What one comparison of one pair found: the level it fell in, and the weight that level carries
    (log2 of its Bayes factor m/u: positive for the same person, negative against, 0 when unknown)."""

    comparison: str
    level: str
    match_weight: float


@dataclass(frozen=True)
class ScoredPair:
    """A candidate pair (``left_id`` < ``right_id``), how likely it is one person, and the evidence.

    ``hold`` says why the pair must not be merged on its own, however likely (first names that differ as
    their email addresses do, or genders that differ: see :func:`design.hold`); None when nothing holds
    it back. A pair held back goes to a steward instead.
    """

    left_id: str
    right_id: str
    probability: float
    match_weight: float
    evidence: tuple[Evidence, ...]
    hold: str | None = None


class MatchModel:
    """A trained Splink model: its settings dictionary with the m and u probability of every level."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        comparisons = settings.get("comparisons")
        if not isinstance(comparisons, list) or not comparisons:
            raise MatchingError("a match model needs Splink settings with a list of comparisons")
        if any(not isinstance(c, dict) or "comparison_levels" not in c for c in comparisons):
            raise MatchingError("every comparison of a match model needs its comparison_levels")
        prior = settings.get("probability_two_random_records_match")
        if not isinstance(prior, int | float) or not 0 < prior < 1:
            raise MatchingError("a match model needs a probability_two_random_records_match between 0 and 1")
        self._settings = deepcopy(dict(settings))

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of Splink's settings dictionary."""
        return deepcopy(self._settings)

    @property
    def dialect(self) -> str:
        """The SQL dialect the comparisons are written in (``duckdb`` or ``spark``)."""
        return str(self._settings.get("sql_dialect", "duckdb"))

    @property
    def prior(self) -> float:
        """The probability that two records drawn at random are one person."""
        return float(self._settings["probability_two_random_records_match"])

    def levels(self) -> dict[str, list[tuple[str, float | None, float | None]]]:
        """Per comparison, its levels as (label, m, u), most alike first, the null level left out."""
        return {
            str(c.get("output_column_name")): [
                (
                    str(level.get("label_for_charts", "")),
                    level.get("m_probability"),
                    level.get("u_probability"),
                )
                for level in c["comparison_levels"]
                if not level.get("is_null_level")
            ]
            for c in self._settings["comparisons"]
        }

    def to_json(self) -> str:
        """Splink's settings dictionary, m and u probabilities included, as JSON."""
        return json.dumps(self._settings, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MatchModel:
        """The model that :meth:`to_json` wrote."""
        try:
            settings = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise MatchingError(f"a match model must be JSON: {exc}") from exc
        if not isinstance(settings, dict):
            raise MatchingError("a match model must be a JSON object of Splink settings")
        return cls(settings)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MatchModel) and self._settings == other._settings

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"MatchModel(prior={self.prior:.3g}, comparisons={len(self._settings['comparisons'])})"


def _columns(records: Sequence[Mapping[str, object]]) -> Columns:
    try:
        return design.prepare(records)
    except RecordError as exc:
        raise MatchingError(str(exc)) from exc


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink talks to a notebook user ("level not observed, unable to train m value", "consider
    increasing max_pairs"): what matters of it, the engine logs itself. Only Splink's errors pass."""
    splink_logger = logging.getLogger("splink")
    level = splink_logger.level
    splink_logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        splink_logger.setLevel(level)


# -- backends --------------------------------------------------------------------------------------------

_spark_lock = threading.Lock()


def _spark_session(master: str) -> Any:
    """A Spark session on ``master`` with Splink's similarity functions (one per process, reused)."""
    try:
        from pyspark.sql import SparkSession
        from splink.backends.spark import similarity_jar_location
    except ImportError as exc:
        raise MatchingError(f"matching on Spark ({master}) needs the pyspark package: {exc}") from exc
    with _spark_lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        builder = (
            SparkSession.builder.master(master)
            .appName("rapport-matching")
            .config("spark.jars", similarity_jar_location())
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2" if master.startswith("local") else "200")
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        if master.startswith("local"):  # nothing listens beyond this machine
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: no java, a bad master URL …
            raise MatchingError(f"could not start Spark on {master!r}: {exc}") from exc
        session.sparkContext.setLogLevel("ERROR")
        return session


def _interrupted_query(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from or while handling, says that DuckDB stopped its
    query because it was interrupted: at a SIGINT (Ctrl-C) it raises a plain RuntimeError that says only
    so, and when its connection is interrupted, an InterruptException."""
    import duckdb

    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, duckdb.InterruptException) or (
            type(cause) is RuntimeError and str(cause) == "Query interrupted"
        ):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


@contextmanager
def _database(spark_master: str | None) -> Iterator[Any]:
    """A Splink database API: a fresh in-memory DuckDB, or the Spark session on ``spark_master``."""
    if not spark_master:
        import duckdb
        from splink.backends.duckdb import DuckDBAPI

        connection = duckdb.connect(":memory:")
        try:
            yield DuckDBAPI(connection)
        except Exception as exc:
            # Ctrl-C during a query interrupts the query, and Splink reports that as its SQL failing: it
            # is the interrupt it was
            if _interrupted_query(exc):
                raise KeyboardInterrupt from exc
            raise
        finally:
            connection.close()
        return
    from splink.backends.spark import SparkAPI

    session = _spark_session(spark_master)
    api = SparkAPI(  # type: ignore[no-untyped-call]
        spark_session=session,
        break_lineage_method="persist",
        # on one machine, Splink's default (half of spark.sql.shuffle.partitions) makes tiny tasks
        num_partitions_on_repartition=2 if spark_master.startswith("local") else None,
    )
    try:
        yield api
    finally:
        for table in session.catalog.listTables():
            if table.isTemporary and table.name.startswith(("__splink", *_TABLES)):
                session.catalog.dropTempView(table.name)
        session.catalog.clearCache()


#: the tables the engine registers (dropped from a shared Spark session afterwards)
_TABLES = ("records_", "fresh_", "others_")


def _register(api: Any, columns: Mapping[str, list[str | None]], name: str) -> Any:
    """Put the columns into the backend as a table and return Splink's handle on it."""
    import pyarrow as pa

    table = pa.table({column: pa.array(columns[column], type=pa.string()) for column in COLUMNS})
    if api.sql_dialect.sql_dialect_str == "spark":
        table = api.spark.createDataFrame(table)
    return api.register(table, table_name=f"{name}_{uuid.uuid4().hex[:12]}")


def _subset(columns: Mapping[str, list[str | None]], keep: list[bool]) -> Columns:
    return {name: [v for v, k in zip(values, keep, strict=True) if k] for name, values in columns.items()}


# -- training --------------------------------------------------------------------------------------------


def _check_trainable(columns: Columns) -> None:
    count = len(columns["unique_id"])
    if count < 2:
        raise MatchingError(f"training needs at least 2 records to compare, got {count}")
    if design.informative(columns) < 2:
        raise MatchingError(
            "training needs at least 2 records with a name, birth date, address, phone, email or "
            "customer number; these records have nothing to compare"
        )


def _prior(linker: Any, settings: Mapping[str, Any], columns: Columns) -> float:
    """The pairs the sure rules find, divided by the share of true pairs they find and by all pairs.

    When they find none (few duplicates, or a tiny set), as if they had found half a pair: a small prior,
    so that only strong evidence merges.
    """
    from splink import block_on

    count = len(columns["unique_id"])
    total = count * (count - 1) / 2
    recall = min(1.0, max(0.05, design.sure_rules_recall(settings, columns)))
    rules = [block_on(*rule_columns) for rule_columns, _ in design.SURE_RULES]
    try:
        linker.training.estimate_probability_two_random_records_match(rules, recall=recall)
        prior = float(linker._settings_obj._probability_two_random_records_match)
    except ValueError as exc:  # more sure pairs than that share allows: a tiny set
        logger.info("prior not estimated from the sure rules: %s", exc)
        prior = 0.0
    if prior <= 0:
        prior = 0.5 / (recall * total)
    return min(prior, 0.5)


def train(
    records: Sequence[Mapping[str, str | None]], *, seed: int = 42, spark_master: str | None = None
) -> MatchModel:
    """Train a model on ``records`` without labels (Splink on DuckDB, or on Spark at ``spark_master``).

    u (how often strangers agree by chance) comes from pairs drawn at random (seeded); m (how often one
    person's records agree) from expectation maximisation on two blocks, checked against defaults; the
    prior (how likely two records drawn at random are one person) from pairs that nearly always match.
    """
    from splink import Linker

    columns = _columns(records)
    _check_trainable(columns)
    count = len(columns["unique_id"])
    with _quiet_splink(), _database(spark_master) as api:
        table = _register(api, columns, "records")
        linker = Linker(table, design.settings_creator(1e-4), log_level=None)
        linker.training.estimate_u_using_random_sampling(
            max_pairs=U_MAX_PAIRS, seed=seed, num_chunks=1, min_count_per_level=None
        )
        for rule in design.em_rules():
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule,
                    estimate_without_term_frequencies=True,
                    max_pairs=EM_MAX_PAIRS if count > EM_SAMPLE_FROM else None,
                    record_sample_proportion=0.05,
                )
            except Exception as exc:  # a block without pairs, or EM that cannot start
                logger.info("expectation maximisation on %s skipped: %s", rule, exc)
        settings: dict[str, Any] = linker.misc.save_model_to_json()
        for note in design.settle(settings, sampled_pairs=min(U_MAX_PAIRS, count * (count - 1) / 2)):
            logger.info("training: %s", note)
        settings["probability_two_random_records_match"] = _prior(linker, settings, columns)
    return MatchModel(settings)


# -- scoring ---------------------------------------------------------------------------------------------


def _settings_for(model: MatchModel, dialect: str) -> dict[str, Any]:
    """The model's settings in ``dialect``: as saved, or rebuilt there with the saved m, u and prior."""
    if model.dialect == dialect:
        return model.settings
    fresh: dict[str, Any] = design.settings_creator(model.prior).create_settings_dict(dialect)
    saved = {c.get("output_column_name"): c for c in model.settings["comparisons"]}
    for comparison in fresh["comparisons"]:
        old = saved.get(comparison["output_column_name"])
        labels = [level.get("label_for_charts") for level in comparison["comparison_levels"]]
        if old is None or labels != [level.get("label_for_charts") for level in old["comparison_levels"]]:
            raise MatchingError(
                f"the model was trained on {model.dialect} with other comparisons than this version of "
                f"Rapport uses; train it again to score on {dialect}"
            )
        for level, trained in zip(comparison["comparison_levels"], old["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability"):
                if trained.get(key) is not None:
                    level[key] = trained[key]
    fresh["sql_dialect"] = dialect
    return fresh


def _level_labels(settings: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """Per comparison, Splink's level number (gamma: -1 for null, then counting down to 0) -> label."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in settings["comparisons"]:
        levels = comparison["comparison_levels"]
        rank = sum(1 for level in levels if not level.get("is_null_level"))
        names: dict[int, str] = {}
        for level in levels:
            label = str(level.get("label_for_charts") or level.get("sql_condition"))
            if level.get("is_null_level"):
                names[-1] = label
            else:
                rank -= 1
                names[rank] = label
        labels[str(comparison["output_column_name"])] = names
    return labels


def _weight(value: float | None) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)


def _pairs(frame: Any, labels: Mapping[str, Mapping[int, str]], guards: design.Guards) -> list[ScoredPair]:
    """Splink's predictions as scored pairs. The evidence of a pair depends only on the level each
    comparison fell in, so each distinct pattern of levels is turned into evidence once; whether a pair
    is held back from merging on its own also depends on its records' ``guards`` (see design.hold)."""
    table = frame.as_pyarrow_table()
    names = list(labels)
    data = {
        column: table.column(column).to_pylist()
        for column in ("unique_id_l", "unique_id_r", "match_probability", "match_weight")
    }
    levels = zip(*(table.column(f"gamma_{name}").to_pylist() for name in names), strict=True)
    weights = zip(*(table.column(f"mw_{name}").to_pylist() for name in names), strict=True)
    del table
    patterns: dict[tuple[tuple[int, ...], tuple[float, ...]], tuple[Evidence, ...]] = {}
    households: dict[tuple[int, ...], bool] = {}
    pairs: list[ScoredPair] = []
    with design.collector_paused():
        for left, right, probability, weight, gammas, mws in zip(
            data["unique_id_l"], data["unique_id_r"], data["match_probability"], data["match_weight"],
            levels, weights, strict=True,
        ):  # fmt: skip
            evidence = patterns.get((gammas, mws))
            if evidence is None:
                evidence = patterns[gammas, mws] = tuple(
                    Evidence(name, labels[name].get(gamma, str(gamma)), _weight(mw))
                    for name, gamma, mw in zip(names, gammas, mws, strict=True)
                )
            household = households.get(gammas)
            if household is None:
                household = households[gammas] = design.may_be_household(
                    {e.comparison: e.level for e in evidence}
                )
            held = design.hold(household, left, right, guards)
            low, high = (left, right) if left <= right else (right, left)
            pairs.append(ScoredPair(low, high, float(probability), _weight(weight), evidence, held))
    return pairs


def score(
    records: Sequence[Mapping[str, str | None]],
    model: MatchModel,
    *,
    min_probability: float,
    only_ids: Collection[str] | None = None,
    spark_master: str | None = None,
) -> list[ScoredPair]:
    """Every candidate pair of ``records`` at least ``min_probability`` likely, the likeliest first.

    Candidates are pairs that share a blocking key. With ``only_ids``, only pairs with at least one of
    those records (new or changed profiles, matched against all the others).
    """
    from splink import Linker

    if isinstance(min_probability, bool) or not isinstance(min_probability, int | float):
        raise MatchingError(f"min_probability must be a number between 0 and 1, got {min_probability!r}")
    if not 0 <= min_probability <= 1:
        raise MatchingError(f"min_probability must lie between 0 and 1, got {min_probability}")
    columns = _columns(records)
    ids = columns["unique_id"]
    if len(ids) < 2:
        return []
    guards = design.Guards(columns, [record.get("gender") for record in records])
    scope = None if only_ids is None else {str(uid) for uid in only_ids}.intersection(ids)
    if scope is not None and not scope:
        return []
    # Splink filters on the match weight, log2(p / (1 - p)): infinite at 1, which its SQL cannot hold. The
    # largest probability below 1 asks for the same pairs (none lies between), and those short of 1 are
    # left out below.
    threshold = None if min_probability <= 0 else min(float(min_probability), math.nextafter(1.0, 0.0))
    with _quiet_splink(), _database(spark_master) as api:
        settings = _settings_for(model, api.sql_dialect.sql_dialect_str)
        labels = _level_labels(settings)
        everyone = _register(api, columns, "records")
        try:
            linker = Linker(everyone, settings, log_level=None)
        except Exception as exc:  # Splink refuses the settings: not a model of this engine
            raise MatchingError(f"the match model cannot be used: {exc}") from exc
        if scope is None or len(scope) == len(ids):
            frames = [linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")]
        else:
            inside = [uid in scope for uid in ids]
            fresh = _register(api, _subset(columns, inside), "fresh")
            frames = [
                linker.inference.predict_within(
                    fresh, threshold_match_probability=threshold, warning_mode="never"
                )
            ]
            if not all(inside):
                others = _register(api, _subset(columns, [not k for k in inside]), "others")
                frames.append(
                    linker.inference.predict_between(
                        fresh, others, threshold_match_probability=threshold, warning_mode="never"
                    )
                )
        pairs = [
            pair
            for frame in frames
            for pair in _pairs(frame, labels, guards)
            if pair.probability >= min_probability
        ]
    pairs.sort(key=lambda p: (-p.probability, p.left_id, p.right_id))
    return pairs
