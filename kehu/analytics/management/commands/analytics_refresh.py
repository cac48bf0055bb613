"""``manage.py analytics_refresh [--as-of YYYY-MM-DD]``: run every analytics job now."""

from __future__ import annotations

import argparse
import datetime

from django.core.management.base import BaseCommand, CommandError

from kehu.analytics.models import AnalyticsRun, RunKind, RunStatus


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD).") from None


def _number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _summary(run: AnalyticsRun) -> list[str]:
    """The figures worth reading of one run's metrics."""
    metrics = run.metrics or {}
    if run.kind == RunKind.FIGURES:
        return [
            f"{metrics.get('rows', 0)} monthly rows, {metrics.get('from')} to {metrics.get('to')}"
        ]
    if run.kind == RunKind.AGGREGATES:
        rows = metrics.get("rows") or {}
        return [", ".join(f"{name} {count}" for name, count in sorted(rows.items()))]
    if run.kind == RunKind.ASSOCIATIONS:
        return [
            f"{metrics.get('pairs', 0)} product pairs from {metrics.get('customers', 0)} customers"
        ]
    if run.kind == RunKind.FORECAST:
        lines = []
        for metric, entry in (metrics.get("series", {}).get("all") or {}).items():
            months = ", ".join(
                f"{month[:7]} {mean:,.0f} [{lower:,.0f}, {upper:,.0f}]"
                for month, mean, lower, upper in zip(
                    metrics.get("future", []),
                    entry["mean"],
                    entry["lower"],
                    entry["upper"],
                    strict=False,
                )
            )
            lines.append(f"{metric} ({entry['method']}): {months}")
        lines.append(f"{len(metrics.get('series', {}))} scopes")
        return lines
    if run.kind == RunKind.CUSTOMERS:
        lines = [f"{metrics.get('customers', 0)} customers scored"]
        bgnbd = metrics.get("bgnbd")
        if bgnbd:
            lines.append(
                "BG/NBD r={} alpha={} a={} b={}".format(
                    *(_number(bgnbd[k]) for k in ("r", "alpha", "a", "b"))
                )
            )
        spend = metrics.get("gamma_gamma")
        if spend:
            lines.append(
                "Gamma-Gamma p={} q={} gamma={}".format(
                    *(_number(spend[k]) for k in ("p", "q", "gamma"))
                )
            )
        calibration = metrics.get("calibration")
        if calibration:
            lines.append(
                f"holdout from {calibration['split']}: predicted "
                f"{calibration['predicted_total']:.0f} purchases, actual "
                f"{calibration['actual_total']:.0f}"
            )
        churn = metrics.get("churn") or {}
        if churn.get("status") == "ok":
            auc, baseline = _number(churn["auc"]), _number(churn["baseline_auc"])
            lines.append(
                f"churn AUC {auc} (recency only {baseline}),"
                f" Brier {_number(churn['brier'])}, {churn['holdout_customers']} holdout "
                f"customers, {churn['holdout_churn_rate']:.0%} churned"
            )
        elif churn:
            lines.append(f"churn: {churn.get('status')}")
        segments = metrics.get("segments")
        if segments:
            lines.append("segments: " + ", ".join(f"{k} {v}" for k, v in sorted(segments.items())))
        return lines
    return []


class Command(BaseCommand):
    help = (
        "Run every analytics job now (stored totals, figures, customers, recommendations, "
        "forecast)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=_date,
            default=None,
            help="Compute as of this date (YYYY-MM-DD); default today.",
        )

    def handle(self, *args, **options):
        from kehu.analytics.services import analytics_refresh_all

        runs = analytics_refresh_all(as_of=options["as_of"])
        failed = 0
        for run in runs:
            seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
            self.stdout.write(f"{run.kind}: {run.status} in {seconds:.1f} s (as of {run.as_of})")
            if run.status == RunStatus.SUCCEEDED:
                for line in _summary(run):
                    self.stdout.write(f"  {line}")
            else:
                failed += 1
                self.stdout.write(f"  {run.error.strip().splitlines()[0] if run.error else ''}")
        if failed:
            raise CommandError(f"{failed} of {len(runs)} analytics jobs failed.")
