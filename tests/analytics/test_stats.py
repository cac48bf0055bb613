"""The statistical models on synthetic data drawn from known parameters."""

import numpy as np
import pytest

from kehu.analytics.stats import churn, clv, forecast, recommend, rfm


def test_bgnbd_recovers_known_parameters():
    rng = np.random.default_rng(7)
    true = clv.BgNbdParams(r=0.8, alpha=20.0, a=0.9, b=3.0)
    T = rng.uniform(200, 730, size=6000)
    x, t_x = clv.bgnbd_simulate(true, T, rng=rng)
    fit = clv.bgnbd_fit(x, t_x, T)
    # Stated tolerance: 10% on the purchase process (r, alpha), 25% on dropout (a, b), which
    # the data pins down less tightly.
    assert fit.r == pytest.approx(true.r, rel=0.10)
    assert fit.alpha == pytest.approx(true.alpha, rel=0.10)
    assert fit.a == pytest.approx(true.a, rel=0.25)
    assert fit.b == pytest.approx(true.b, rel=0.25)


def test_bgnbd_predictions_are_calibrated_on_a_holdout():
    """Predicted purchases in the next period match what simulated customers then did."""
    rng = np.random.default_rng(11)
    true = clv.BgNbdParams(r=1.2, alpha=30.0, a=0.7, b=2.5)
    n, T, horizon = 5000, 365.0, 180.0
    lam = rng.gamma(true.r, 1 / true.alpha, size=n)
    p = rng.beta(true.a, true.b, size=n)
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1 / lam[i])
            if t > T + horizon:
                break
            if t <= T:
                x[i] += 1
                t_x[i] = t
            else:
                later[i] += 1
            alive = rng.random() >= p[i]
    fit = clv.bgnbd_fit(x, t_x, np.full(n, T))
    expected = clv.bgnbd_expected_purchases(fit, horizon, x, t_x, np.full(n, T))
    assert expected.sum() == pytest.approx(later.sum(), rel=0.10)
    # And by group: frequent buyers are predicted to buy more, as they did.
    frequent = x >= 3
    assert expected[frequent].mean() == pytest.approx(later[frequent].mean(), rel=0.20)


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    params = clv.BgNbdParams(r=1.0, alpha=10.0, a=0.8, b=2.0)
    assert clv.bgnbd_p_alive(params, [0], [0], [100])[0] == 1.0
    recent, silent = clv.bgnbd_p_alive(params, [5, 5], [95, 10], [100, 100])
    assert recent > silent


def test_gamma_gamma_recovers_known_parameters():
    rng = np.random.default_rng(3)
    true = clv.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    n = 4000
    nu = rng.gamma(true.q, 1 / true.gamma, size=n)
    frequency = rng.integers(1, 10, size=n)
    monetary = np.array([rng.gamma(true.p, 1 / nu[i], size=frequency[i]).mean() for i in range(n)])
    fit = clv.gamma_gamma_fit(frequency, monetary)
    # p and gamma trade off against each other; the mean spend they imply is pinned down.
    assert fit.p * fit.gamma / (fit.q - 1) == pytest.approx(
        true.p * true.gamma / (true.q - 1), rel=0.03
    )
    assert fit.q == pytest.approx(true.q, rel=0.10)
    assert fit.p == pytest.approx(true.p, rel=0.25)
    # Conditional expectations track each customer's true mean spend (p / nu) better than
    # their own noisy observed average does.
    expected = clv.gamma_gamma_expected_spend(fit, frequency, monetary)
    truth = true.p / nu
    assert np.mean(np.abs(expected - truth)) < np.mean(np.abs(monetary - truth))


def test_rfm_quintiles_and_segments():
    scores = rfm.quintile_scores([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert list(scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(rfm.quintile_scores([5, 5, 5, 5])) == [3, 3, 3, 3]  # ties share a score
    result = rfm.rfm_score([1, 400, 2, 300], [20, 1, 1, 30], [9000, 100, 8000, 200])
    assert result.segments == ["champions", "hibernating", "promising_big", "need_attention"]


def _churn_data(rng, n):
    recency = rng.uniform(0, 365, size=n)
    followups = rng.poisson(3, size=n).astype(float)
    overdue = rng.binomial(1, 0.2, size=n).astype(float)
    noise = rng.normal(size=n)
    # Planted signal: follow-ups and overdue payments matter beyond recency.
    logit = -1.0 + 0.004 * recency - 0.6 * followups + 1.5 * overdue
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    return np.column_stack([recency, followups, overdue, noise]), churned.astype(int)


def test_churn_model_beats_recency_baseline_on_a_planted_signal():
    rng = np.random.default_rng(5)
    names = ["recency_days", "followups_90d", "overdue", "noise"]
    x_train, y_train = _churn_data(rng, 4000)
    x_test, y_test = _churn_data(rng, 2000)
    model = churn.churn_fit(x_train, y_train, names)
    baseline = churn.churn_fit(x_train[:, :1], y_train, names[:1])
    evaluation = churn.churn_evaluate(
        model, x_test, y_test, baseline_scores=baseline.predict(x_test[:, :1])
    )
    assert evaluation.auc > evaluation.baseline_auc + 0.05
    assert evaluation.brier < 0.25
    predicted, observed = zip(*evaluation.calibration, strict=True)
    assert np.max(np.abs(np.array(predicted) - np.array(observed))) < 0.12
    coefficients = model.coefficients()
    assert coefficients["followups_90d"] < 0 < coefficients["overdue"]
    factors = model.top_factors([[300, 0, 1, 0]])[0]
    assert {name for name, _ in factors} >= {"overdue", "followups_90d"}


def test_recommendations_find_planted_pairs():
    rng = np.random.default_rng(9)
    baskets = {}
    for customer in range(600):
        items = set(rng.choice(range(10, 60), size=3, replace=False).tolist())
        if customer % 3 == 0:
            items |= {1, 2}  # planted: 1 and 2 are bought together
        baskets[customer] = items
    rules = recommend.associations(baskets, min_support=5)
    assert rules[1][0].target == 2 and rules[1][0].lift > 2
    top = recommend.recommend({1, 11}, rules, k=3)
    assert top[0][0] == 2 and top[0][2] == 1
    assert all(target not in {1, 11} for target, _, _ in top)


def test_forecast_follows_trend_and_season_with_an_interval():
    months = np.arange(36)
    history = 100 + 2 * months + 20 * np.sin(2 * np.pi * months / 12)
    result = forecast.forecast_monthly(history, horizon=3)
    expected = 100 + 2 * np.arange(36, 39) + 20 * np.sin(2 * np.pi * np.arange(36, 39) / 12)
    assert result.method == "ets_seasonal"
    assert np.allclose(result.mean, expected, rtol=0.08)
    assert all(
        lo <= m <= hi for lo, m, hi in zip(result.lower, result.mean, result.upper, strict=True)
    )
    short = forecast.forecast_monthly([10, 12, 11], horizon=2)
    assert short.method == "mean" and short.mean == [11.0, 11.0]


@pytest.mark.parametrize("days", [True, False])
def test_bgnbd_likelihood_by_distinct_customers_is_the_per_customer_sum_exactly(days):
    """The fit sums the log-likelihood from distinct (x, t_x, T) rows; it must be the same
    float as the per-customer sum (the optimiser's end point depends on the last digits)."""
    rng = np.random.default_rng(5)
    T = rng.uniform(0, 730, size=3001)
    x = np.minimum(rng.poisson(2, size=len(T)), (T > 0) * 30).astype(float)
    t_x = np.where(x > 0, rng.random(len(T)) * T, 0.0)
    if days:  # whole days, as the customers job passes them: the grid path
        T, t_x = np.floor(T), np.floor(t_x)
    scale = 1 / T.max()
    data = clv._BgNbdData(x, t_x * scale, T * scale)
    assert data.grid  # small: terms on the (x, T) and (x, t_x) grids
    data.grid = days  # and per distinct row, as for a large sample of fractional times
    for params in ([1.2, 0.3, 0.05, 10.0], [0.5, 2.0, 1.0, 0.5], [0.7, 0.01, 3.0, 0.9]):
        reference = clv._bgnbd_log_likelihood(np.array(params), x, t_x * scale, T * scale)
        assert data.log_likelihood(params) == reference.sum()


def test_unique_rows_finds_distinct_rows_their_positions_and_counts():
    (a, b), inverse, counts = clv.unique_rows(np.array([3, 1, 3, 1, 2]), np.array([0, 5, 0, 6, 0]))
    assert a.tolist() == [1, 1, 2, 3] and b.tolist() == [5, 6, 0, 0]
    assert a[inverse].tolist() == [3, 1, 3, 1, 2] and b[inverse].tolist() == [0, 5, 0, 6, 0]
    assert counts.tolist() == [1, 1, 1, 2]


def test_co_purchase_counts_in_chunks_give_the_rules_of_whole_baskets():
    rng = np.random.default_rng(9)
    products = [11, 12, 15, 20, 21, 30]
    baskets = {c: set(rng.choice(products, size=rng.integers(1, 5)).tolist()) for c in range(300)}
    baskets.update({c: {11, 12} for c in range(300, 340)})  # planted pair
    pairs = np.array(sorted((c, p) for c, items in baskets.items() for p in items))
    counter = recommend.CoPurchases(np.array(products))
    # Chunks end at customer boundaries; a pair given twice in a chunk counts once.
    for part in np.split(pairs, np.searchsorted(pairs[:, 0], [50, 51, 200])):
        counter.add(np.r_[part[:1, 0], part[:, 0]], np.r_[part[:1, 1], part[:, 1]])
    customers, items, together = counter.counts()
    assert customers == len(baskets)
    assert recommend.associations_from_counts(
        customers, items, together, min_support=3
    ) == recommend.associations(baskets, min_support=3)
    with pytest.raises(ValueError, match="catalogue"):
        counter.add(np.array([1]), np.array([99]))
