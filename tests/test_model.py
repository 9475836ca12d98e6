"""Tests for backuppolicy.core.model, backuppolicy.core.durations and backuppolicy.core.exceptions."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import backuppolicy as bp
from backuppolicy.core.durations import Duration
from backuppolicy.core.model import TAG_HOLD, ensure_aware

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


class TestRecoveryPoint:
    def test_naive_created_at_is_rejected_with_field_name(self):
        """A naive datetime names the field and says how to fix it."""
        with pytest.raises(
            bp.PolicyError, match=r"^created_at: expected a timezone-aware datetime"
        ):
            bp.RecoveryPoint(id="s", target="t", created_at=datetime(2026, 1, 1))

    def test_status_accepts_strings_and_rejects_unknown(self):
        """Statuses convert from their values; unknown values list the valid ones."""
        assert bp.Status.FAILED == bp.RecoveryPoint("s", "t", NOW, status="failed").status
        with pytest.raises(bp.PolicyError, match="status: expected one of completed, pending"):
            bp.RecoveryPoint("s", "t", NOW, status="done")

    def test_empty_id_and_bad_tags_are_rejected(self):
        """Ids must be non-empty; tags must map str to str."""
        with pytest.raises(bp.PolicyError, match="^id: expected a non-empty string"):
            bp.RecoveryPoint("", "t", NOW)
        with pytest.raises(bp.PolicyError, match=r"tags\['k'\]"):
            bp.RecoveryPoint("s", "t", NOW, tags={"k": 1})  # type: ignore[dict-item]
        with pytest.raises(bp.PolicyError, match="size_bytes"):
            bp.RecoveryPoint("s", "t", NOW, size_bytes=-1)

    def test_points_are_hashable_and_compare_by_value(self):
        """Points with tags still hash, so they can live in sets."""
        a = bp.RecoveryPoint("s", "t", NOW, tags={"k": "v"})
        b = bp.RecoveryPoint("s", "t", NOW, tags={"k": "v"})
        assert {a} == {b}
        assert a != a.evolve(tags={"k": "w"})

    def test_good_held_age(self):
        """is_good, held and age describe the point."""
        hold = bp.LegalHold(reason="litigation", reference="case-17", since=NOW)
        point = bp.RecoveryPoint(
            "s", "t", NOW - timedelta(days=2), legal_hold=hold, status="partial"
        )
        assert (False, True, timedelta(days=2)) == (point.is_good, point.held, point.age(NOW))

    def test_created_utc_converts(self):
        """created_utc normalises any zone to UTC."""
        local = datetime(2026, 7, 1, 6, 0, tzinfo=ZoneInfo("Europe/London"))
        point = bp.RecoveryPoint("s", "t", local)
        assert datetime(2026, 7, 1, 5, 0, tzinfo=UTC) == point.created_utc


class TestLegalHold:
    @given(
        reason=st.text(max_size=20),
        reference=st.text(max_size=20).filter(lambda s: "|" not in s),
        since=st.none() | st.datetimes(timezones=st.just(UTC)),
    )
    def test_tag_round_trip(self, reason, reference, since):
        """Any hold survives encoding as a tag value and decoding again."""
        hold = bp.LegalHold(reason=reason, reference=reference, since=since)
        assert hold == bp.LegalHold.from_tag(hold.to_tag())

    def test_foreign_tag_value_still_means_held(self):
        """A hold tag written by hand becomes the reason."""
        assert bp.LegalHold(reason="keep forever") == bp.LegalHold.from_tag("keep forever")

    def test_describe(self):
        """The description names the reference first."""
        hold = bp.LegalHold(reason="litigation", reference="case-17")
        assert "legal hold: case-17 (litigation)" == hold.describe()
        assert TAG_HOLD == "backuppolicy:legal-hold"


class TestEnsureAware:
    def test_rejects_non_datetimes(self):
        """Strings are not datetimes."""
        with pytest.raises(bp.PolicyError, match="^now: expected a timezone-aware datetime"):
            ensure_aware("2026-01-01", field="now")  # type: ignore[arg-type]


class TestDuration:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            ("35d", Duration(days=35)),
            ("1y2m3d4h", Duration(years=1, months=2, days=3, hours=4)),
            ("1y1d1m", Duration(years=1, months=1, days=1)),
            ("2w", Duration(weeks=2)),
            ("90min", Duration(minutes=90)),
            (" 24H ", Duration(hours=24)),
        ],
    )
    def test_parse(self, spec, expected):
        """The restic spelling and our extensions parse."""
        assert expected == Duration.parse(spec)

    @pytest.mark.parametrize("spec", ["", "35", "d", "1d1d", "-1d", "1.5d", "soon", "1x"])
    def test_parse_rejects_with_field(self, spec):
        """Garbage names the field and what is accepted."""
        with pytest.raises(bp.PolicyError, match=r"^retention\.max_age: expected a duration like"):
            Duration.parse(spec, field="retention.max_age")

    def test_coerce(self):
        """timedelta and mappings coerce; bad parts name the sub-field."""
        assert Duration(days=1, hours=2, minutes=3) == Duration.coerce(
            timedelta(hours=26, minutes=3)
        )
        assert Duration(days=3) == Duration.coerce({"days": 3})
        with pytest.raises(bp.PolicyError, match=r"^rpo\.dayz: expected one of"):
            Duration.coerce({"dayz": 3}, field="rpo")
        with pytest.raises(bp.PolicyError, match=r"^rpo\.days: expected an integer >= 0"):
            Duration.coerce({"days": -3}, field="rpo")
        with pytest.raises(bp.PolicyError, match="a whole number of minutes"):
            Duration.coerce(timedelta(seconds=30))
        with pytest.raises(bp.PolicyError):
            Duration.coerce(3.5)

    def test_month_end_rolls_over_like_go(self):
        """31 March minus one month is 3 March (2 March in a leap year), as Go's AddDate."""
        assert datetime(2026, 3, 3, tzinfo=UTC) == Duration(months=1).before(
            datetime(2026, 3, 31, tzinfo=UTC)
        )
        assert datetime(2024, 3, 2, tzinfo=UTC) == Duration(months=1).before(
            datetime(2024, 3, 31, tzinfo=UTC)
        )

    def test_before_year_one_is_unbounded(self):
        """A window that reaches before year 1 has no start."""
        assert Duration(years=9999).before(NOW) is None

    def test_days_are_calendar_days_across_dst(self):
        """One day before a local noon after the DST change is the previous local noon (23 h)."""
        london = ZoneInfo("Europe/London")
        after = datetime(2026, 3, 29, 12, 0, tzinfo=london)
        assert datetime(2026, 3, 28, 12, 0, tzinfo=london) == Duration(days=1).before(after)
        before = Duration(days=1).before(after)
        assert before is not None
        assert timedelta(hours=23) == after.astimezone(UTC) - before.astimezone(UTC)

    def test_hours_are_elapsed_time_across_dst(self):
        """24 hours before a local noon after the DST change is 11:00 local the day before."""
        london = ZoneInfo("Europe/London")
        after = datetime(2026, 3, 29, 12, 0, tzinfo=london)
        before = Duration(hours=24).before(after)
        assert before is not None
        assert timedelta(hours=24) == after.astimezone(UTC) - before.astimezone(UTC)

    @given(
        d=st.builds(
            Duration,
            years=st.integers(0, 5),
            months=st.integers(0, 30),
            weeks=st.integers(0, 10),
            days=st.integers(0, 400),
            hours=st.integers(0, 100),
            minutes=st.integers(0, 100),
        )
    )
    def test_str_round_trips(self, d):
        """str() is a spec that parses back to the same duration."""
        assert d == Duration.parse(str(d)) or (d.is_zero and str(d) == "0d")

    @given(
        d=st.builds(Duration, days=st.integers(0, 100), hours=st.integers(0, 48)),
        moment=st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ),
    )
    def test_after_inverts_before_for_exact_parts(self, d, moment):
        """For days and hours in UTC, after(before(x)) == x."""
        before = d.before(moment)
        assert before is not None
        assert moment == d.after(before)

    def test_describe_and_approx(self):
        """Human words and a fixed approximation for display."""
        assert "1 year 2 months" == Duration(years=1, months=2).describe()
        assert timedelta(days=395) == Duration(years=1, months=1).approx_timedelta()
        assert Duration(days=3).is_exact
        assert not Duration(months=1).is_exact


class TestExceptions:
    def test_tree_and_builtins(self):
        """Every error derives from the root and from its matching builtin."""
        assert issubclass(bp.PolicyError, ValueError)
        assert issubclass(bp.BackendNotFoundError, LookupError)
        assert issubclass(bp.ResourceNotFoundError, bp.BackendError)
        assert issubclass(bp.ResourceNotFoundError, LookupError)
        assert issubclass(bp.PermissionDeniedError, PermissionError)
        assert issubclass(bp.ProtectedPointError, bp.BackupPolicyError)
        for cls in (bp.PolicyError, bp.BackendError, bp.VerificationError, bp.ThrottledError):
            assert issubclass(cls, bp.BackupPolicyError)

    def test_structured_attributes(self):
        """Errors carry their data as attributes."""
        exc = bp.PolicyError.for_field("a.b", "an int", "x", hint="Try 3.")
        assert ("a.b", "an int", "x") == (exc.path, exc.expected, exc.got)
        assert "a.b: expected an int (got 'x'). Try 3." == str(exc)
        backend = bp.ThrottledError(
            "m", backend="db", operation="Op", resource="r", code="Throttling"
        )
        assert ("db", "Op", "r", "Throttling") == (
            backend.backend,
            backend.operation,
            backend.resource,
            backend.code,
        )
        assert "res" == bp.VerificationError("m", result="res").result
        assert "p" == bp.ProtectedPointError("m", point="p").point


class TestPackage:
    def test_all_is_sorted_and_complete(self):
        """__all__ is sorted and names exactly the public attributes of the package.

        The façade imports them on first use: ``dir()`` lists them, reading one imports it.
        """
        public = {
            name
            for name in dir(bp)
            if not name.startswith("_") and not isinstance(getattr(bp, name), type(sys))
        }
        assert sorted(bp.__all__) == bp.__all__
        assert public | {"__version__"} == set(bp.__all__)

    def test_import_does_not_import_boto3(self):
        """`import backuppolicy` keeps boto3 out, so the core stays light."""
        code = "import sys, backuppolicy; print('boto3' in sys.modules, 'botocore' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert "False False" == out.strip()
