"""Purchase behaviour: BG/NBD for "still active" and expected purchases, Gamma-Gamma for spend.

BG/NBD (Fader, Hardie & Lee, 2005, "Counting Your Customers the Easy Way"): while active, a
customer buys at a Poisson rate λ ~ Gamma(r, α); after every purchase they drop out with
probability p ~ Beta(a, b). Per customer we need x (repeat purchases), t_x (time of the last
purchase) and T (time since the first), all measured from the first purchase.

Gamma-Gamma (Fader, Hardie & Lee, 2005, "RFM and CLV"): a customer's spend per purchase is
Gamma(p, ν) with ν ~ Gamma(q, γ), independent of how often they buy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


def _bgnbd_log_likelihood(params: np.ndarray, x, t_x, T) -> np.ndarray:
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def unique_rows(*columns) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of equal-length columns (sorted), each row's index among them and
    how many rows each distinct one stands for. Customers with the same (x, t_x, T) have
    the same likelihood and predictions: computed once per distinct row, in time that
    depends on how many distinct ones there are (bounded by the days of history), not on
    the number of customers."""
    arrays = [np.asarray(c) for c in columns]
    codes = []
    sizes = []
    for column in arrays:
        values, inverse = np.unique(column, return_inverse=True)
        codes.append(inverse.astype(np.int64))
        sizes.append(max(len(values), 1))
    if float(np.prod([float(s) for s in sizes])) < 2.0**62:
        key = np.zeros(len(arrays[0]) if arrays else 0, dtype=np.int64)
        for code, size in zip(codes, sizes, strict=True):
            key = key * size + code
        _keys, first, inverse, counts = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
    else:  # too many distinct values for one integer key
        _rows, first, inverse, counts = np.unique(
            np.stack(codes, axis=1),
            axis=0,
            return_index=True,
            return_inverse=True,
            return_counts=True,
        )
    return [column[first] for column in arrays], inverse.reshape(-1), counts


class _BgNbdData:
    """The BG/NBD sample arranged for a log-likelihood whose expensive part is computed once
    per distinct (x, t_x, T) and per distinct x, not once per customer.

    Each customer's term is the same floating-point value ``_bgnbd_log_likelihood`` gives,
    and the terms are summed in the same order, so the optimiser takes the same path and
    ends at the same parameters, to the last digit (it stops within its tolerance of the
    optimum, and where it stops depends on those digits)."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.n = len(x)
        self.x_values, self.x_of = np.unique(x, return_inverse=True)
        (ux, ut, uT), self.row_of, _counts = unique_rows(x, t_x, T)
        self.once = ux <= 0  # no repeat purchase: a4 is -inf, the log-sum is a3
        self.rx, self.x_index = np.unique(ux, return_inverse=True)
        self.rT, self.T_index = np.unique(uT, return_inverse=True)
        self.rt, self.t_index = np.unique(ut, return_inverse=True)
        # a3 and a4 on an (x, T) and an (x, t_x) grid when those are small (days of
        # history), else per distinct row.
        self.grid = len(self.rx) * (len(self.rT) + len(self.rt)) <= max(4 * len(ux), 1 << 16)
        if self.grid:
            self.T_cell = self.x_index * len(self.rT) + self.T_index
            self.t_cell = self.x_index * len(self.rt) + self.t_index

    def log_likelihood(self, params) -> float:
        r, alpha, a, b = params
        xv = self.x_values
        a1 = special.gammaln(r + xv) - special.gammaln(r) + r * np.log(alpha)
        a2 = (
            special.gammaln(a + b)
            + special.gammaln(b + xv)
            - special.gammaln(b)
            - special.gammaln(a + b + xv)
        )
        rx = r + self.rx
        log_T = np.log(alpha + self.rT)
        log_t = np.log(alpha + self.rt)
        with np.errstate(divide="ignore"):
            k = np.log(a) - np.log(np.maximum(b + self.rx - 1, 1e-12))
        if self.grid:
            a3 = (-np.outer(rx, log_T)).ravel().take(self.T_cell)
            a4 = (k[:, None] - np.outer(rx, log_t)).ravel().take(self.t_cell)
        else:
            per = rx.take(self.x_index)
            a3 = -per * log_T.take(self.T_index)
            a4 = k.take(self.x_index) - per * log_t.take(self.t_index)
        a4[self.once] = -np.inf
        terms = (a1 + a2).take(self.x_of)
        terms += np.logaddexp(a3, a4).take(self.row_of)
        return float(terms.sum())


def bgnbd_fit(x, t_x, T, *, penalizer: float = 0.0) -> BgNbdParams:
    """Maximum-likelihood parameters. ``penalizer`` adds an L2 pull on log-parameters for
    small or degenerate samples."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if not (len(x) == len(t_x) == len(T)) or len(x) == 0:
        raise ValueError("x, t_x and T must be non-empty and of equal length")
    scale = 1.0 / max(T.max(), 1e-9)  # fit on a unit time scale for numerical stability
    data = _BgNbdData(x, t_x * scale, T * scale)

    def negative(log_params):
        params = np.exp(log_params)
        value = -data.log_likelihood(params) / data.n
        return value + penalizer * float(np.sum(log_params**2))

    best = None
    for start in (np.zeros(4), np.log([0.5, 0.5, 1.0, 2.0]), np.log([1.0, 0.1, 0.5, 5.0])):
        result = optimize.minimize(
            negative,
            start,
            method="Nelder-Mead",
            options={"maxiter": 20000, "xatol": 1e-7, "fatol": 1e-10},
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    r, alpha, a, b = np.exp(best.x)
    return BgNbdParams(r=float(r), alpha=float(alpha / scale), a=float(a), b=float(b))


def bgnbd_p_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Probability each customer is still active at T."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-12))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
    return 1.0 / (1.0 + odds)


def bgnbd_expected_purchases(params: BgNbdParams, t: float, x, t_x, T) -> np.ndarray:
    """Expected number of purchases in the next ``t`` time units, per customer."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < 1e-9:
        a = 1.0 + 1e-6  # the closed form has a removable singularity at a = 1
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    numerator = ((a + b + x - 1) / (a - 1)) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        extra = np.where(
            x > 0,
            (a / np.maximum(b + x - 1, 1e-12)) * ((alpha + T) / (alpha + t_x)) ** (r + x),
            0.0,
        )
    return np.nan_to_num(numerator / (1 + extra), nan=0.0, posinf=0.0)


def bgnbd_expected_population(params: BgNbdParams, t) -> np.ndarray:
    """Expected purchases in (0, t] of a customer just acquired (for calibration plots)."""
    t = np.asarray(t, dtype=float)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < 1e-9:
        a = 1.0 + 1e-6
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return ((a + b - 1) / (a - 1)) * (1 - (alpha / (alpha + t)) ** r * hyp)


def bgnbd_simulate(params: BgNbdParams, T, *, rng: np.random.Generator):
    """Draw (x, t_x) for customers observed for ``T`` each; for tests and calibration."""
    T = np.asarray(T, dtype=float)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    p = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i]) if lam[i] > 0 else np.inf
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


def gamma_gamma_fit(frequency, monetary) -> GammaGammaParams:
    """Fit on customers with at least one repeat purchase: ``monetary`` is their mean spend."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if len(x) < 3:
        raise ValueError("Gamma-Gamma needs at least three customers with repeat purchases")
    scale = float(np.median(m))
    ms = m / scale
    # Each customer's term is the textbook expression below, term by term in the same order
    # (so the same floating-point value: where the likelihood is flat, as when spend hardly
    # varies between customers, the optimiser's end point depends on the last digits);
    # what depends on x alone is computed once per distinct x and gathered.
    x_values, x_index = np.unique(x, return_inverse=True)
    log_ms = np.log(ms)
    xm = x * ms

    def negative(log_params):
        p, q, gamma = np.exp(log_params)
        px = p * x_values
        by_x = (
            special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(gamma)
        )
        # gammaln(px + q) - gammaln(px) - gammaln(q) + q log γ + (px - 1) log m
        #   + px log x - (px + q) log(x m + γ)
        ll = by_x.take(x_index)
        ll += (px - 1).take(x_index) * log_ms
        ll += (px * np.log(x_values)).take(x_index)
        ll -= (px + q).take(x_index) * np.log(xm + gamma)
        return -ll.sum() / len(x)

    best = None
    for start in (np.zeros(3), np.log([5.0, 5.0, 5.0]), np.log([2.0, 10.0, 1.0])):
        result = optimize.minimize(
            negative,
            start,
            method="Nelder-Mead",
            options={"maxiter": 20000, "xatol": 1e-7, "fatol": 1e-10},
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    p, q, gamma = np.exp(best.x)
    return GammaGammaParams(p=float(p), q=float(q), gamma=float(gamma * scale))


def gamma_gamma_expected_spend(params: GammaGammaParams, frequency, monetary) -> np.ndarray:
    """Expected spend per purchase; customers without repeat purchases get the population mean."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    p, q, gamma = params.p, params.q, params.gamma
    population = (
        p * gamma / (q - 1) if q > 1 else float(np.mean(m[m > 0])) if np.any(m > 0) else 0.0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = (p * (gamma + x * m)) / (p * x + q - 1)
    return np.where(x > 0, conditional, population)
