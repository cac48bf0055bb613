"""Churn risk: a logistic regression on behavioural features, trained on history.

Training uses a time-based split: features as of an earlier cutoff with the outcome observed
in the window after it, evaluated on a later cutoff the model never saw. Logistic regression
on standardised features keeps every prediction explainable: a feature's contribution is its
coefficient times its standardised value, so the top factors of each customer can be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler


@dataclass
class ChurnModel:
    feature_names: list[str]
    scaler: StandardScaler
    classifier: LogisticRegression

    def predict(self, features) -> np.ndarray:
        return self.classifier.predict_proba(
            self.scaler.transform(np.asarray(features, dtype=float))
        )[:, 1]

    def contributions(self, features) -> np.ndarray:
        """Per customer and feature: coefficient × standardised value (log-odds units)."""
        scaled = self.scaler.transform(np.asarray(features, dtype=float))
        return scaled * self.classifier.coef_[0]

    def top_factor_table(self, features, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Per customer, the indices of the ``k`` features with the largest contributions,
        largest first, and those contributions (one array operation for every row)."""
        contributions = self.contributions(features)
        order = np.argsort(-contributions, axis=1)[:, :k]
        return order, np.take_along_axis(contributions, order, axis=1)

    def top_factors(self, features, k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` features pushing each customer's risk up the most."""
        order, values = self.top_factor_table(features, k)
        return [
            [(self.feature_names[i], v) for i, v in zip(row, weights, strict=True) if v > 0]
            for row, weights in zip(order.tolist(), values.tolist(), strict=True)
        ]

    def coefficients(self) -> dict[str, float]:
        return {
            name: float(c)
            for name, c in zip(self.feature_names, self.classifier.coef_[0], strict=True)
        }


def churn_fit(features, labels, feature_names: list[str], *, seed: int = 0) -> ChurnModel:
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels, dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("training data needs both churned and retained customers")
    scaler = StandardScaler().fit(x)
    classifier = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    classifier.fit(scaler.transform(x), y)
    return ChurnModel(list(feature_names), scaler, classifier)


@dataclass
class Evaluation:
    auc: float
    brier: float
    baseline_auc: float | None
    calibration: list[tuple[float, float]] = field(default_factory=list)  # (predicted, observed)
    n: int = 0
    positive_rate: float = 0.0


def churn_evaluate(
    model: ChurnModel, features, labels, *, baseline_scores=None, bins: int = 10
) -> Evaluation:
    """AUC, Brier score and a reliability curve on a holdout; optionally a baseline's AUC."""
    y = np.asarray(labels, dtype=int)
    scores = model.predict(features)
    if len(np.unique(y)) < 2:
        raise ValueError("the holdout needs both outcomes to measure AUC")
    observed, predicted = calibration_curve(y, scores, n_bins=bins, strategy="quantile")
    return Evaluation(
        auc=float(roc_auc_score(y, scores)),
        brier=float(brier_score_loss(y, scores)),
        baseline_auc=float(roc_auc_score(y, baseline_scores))
        if baseline_scores is not None
        else None,
        calibration=[(float(p), float(o)) for p, o in zip(predicted, observed, strict=True)],
        n=int(len(y)),
        positive_rate=float(y.mean()),
    )
