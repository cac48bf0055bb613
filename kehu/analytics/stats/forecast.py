"""Monthly forecasts with an interval: exponential smoothing (ETS) from statsmodels.

With two or more years of history the model has an additive trend and a yearly season;
with less, a damped trend only; with under six months, the mean with a naive interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Forecast:
    mean: list[float]
    lower: list[float]
    upper: list[float]
    method: str


def forecast_monthly(history, *, horizon: int = 3, level: float = 0.8) -> Forecast:
    """Forecast ``horizon`` months after ``history`` (oldest first) with a ``level`` interval."""
    y = np.asarray(history, dtype=float)
    if len(y) < 6:
        mean = float(y.mean()) if len(y) else 0.0
        spread = float(y.std(ddof=1)) if len(y) > 1 else abs(mean)
        z = _z(level)
        return Forecast(
            [mean] * horizon,
            [max(mean - z * spread, 0.0)] * horizon,
            [mean + z * spread] * horizon,
            "mean",
        )
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = len(y) >= 24
    model = ETSModel(
        pd.Series(y),
        error="add",
        trend="add",
        damped_trend=not seasonal,
        seasonal="add" if seasonal else None,
        seasonal_periods=12 if seasonal else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series
        fitted = model.fit(disp=False)
        prediction = fitted.get_prediction(start=len(y), end=len(y) + horizon - 1)
        frame = prediction.summary_frame(alpha=1 - level)
    mean = np.maximum(frame["mean"].to_numpy(), 0.0)
    lower = np.maximum(frame["pi_lower"].to_numpy(), 0.0)
    upper = np.maximum(frame["pi_upper"].to_numpy(), 0.0)
    return Forecast(
        [float(v) for v in mean],
        [float(v) for v in lower],
        [float(v) for v in upper],
        "ets_seasonal" if seasonal else "ets_damped",
    )


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))
