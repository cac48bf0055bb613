from tests import figures


def test_recorded_figures_are_summed(tmp_path, monkeypatch):
    monkeypatch.setenv(figures.ENV, str(tmp_path))
    figures.record("cases", 2)
    figures.record("cases", 3)
    figures.record("anomalies", 0)
    assert figures.totals() == {"cases": 5, "anomalies": 0}
