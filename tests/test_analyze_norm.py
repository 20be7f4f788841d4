"""``renyi-analyze`` says which norm a log's radii are in (issue 11): l1 for Laplace and uniform
noise (from the settings file ``certify`` writes, or from an l1-only bound's column), l2 otherwise;
the table marks l1 bounds, the plot's axis names the norm. Gaussian logs read exactly as before."""

from __future__ import annotations

import json

from renyi_cert import analyze
from renyi_cert.analyze.plots import certified_accuracy_figure

HEADER = "idx\tlabel\tpredict\tradius\tcorrect\ttime\tp1_lower\tp2_upper\t{cols}\tguaranteed\n"


def _log(path, bounds, rows=((0, 3, 3, 0.9), (1, 5, 5, 0.4), (2, 1, 7, 0.0))):
    cols = "\t".join(f"radius_{b}" for b in bounds)
    lines = [HEADER.format(cols=cols)]
    for idx, label, pred, r in rows:
        lines.append("\t".join([str(idx), str(label), str(pred), f"{r}", str(int(label == pred)), "0.1", "0.9", "0.05",
                                *[f"{r}"] * len(bounds), "1"]) + "\n")
    path.write_text("".join(lines))
    return path


def test_the_settings_file_gives_the_norm(tmp_path):
    log = _log(tmp_path / "lap.tsv", ("renyi", "pixeldp"))
    assert analyze.read_log(log).norm == "l2"  # no settings file, no l1-only bound: Gaussian
    (tmp_path / "lap.tsv.json").write_text(json.dumps({"noise": "laplace", "norm": "l1"}))
    read = analyze.read_log(log)
    assert read.norm == "l1"
    table = analyze.markdown_table(analyze.summarize(read, (0.25, 0.5)))
    assert "| lap.tsv | renyi (l1) |" in table and "| lap.tsv | pixeldp (l1) |" in table


def test_an_l1_only_bound_gives_the_norm_without_a_settings_file(tmp_path):
    assert analyze.read_log(_log(tmp_path / "t.tsv", ("renyi", "teng"))).norm == "l1"
    assert analyze.read_log(_log(tmp_path / "y.tsv", ("yang",))).norm == "l1"
    (tmp_path / "bad.tsv.json").write_text("not json")
    assert analyze.read_log(_log(tmp_path / "bad.tsv", ("cohen",))).norm == "l2"  # unreadable settings: the columns


def test_gaussian_tables_are_unchanged_and_the_axis_names_the_norm(tmp_path):
    gauss = analyze.read_log(_log(tmp_path / "g.tsv", ("renyi", "cohen")))
    table = analyze.markdown_table(analyze.summarize(gauss, (0.25,)))
    assert "| g.tsv | renyi | 3 |" in table and "(l" not in table
    lap = analyze.read_log(_log(tmp_path / "l.tsv", ("renyi", "teng")))
    assert certified_accuracy_figure([gauss]).axes[0].get_xlabel().startswith("radius (ℓ2,")
    assert certified_accuracy_figure([lap]).axes[0].get_xlabel().startswith("radius (ℓ1,")
    both = certified_accuracy_figure([gauss, lap], labels=["g", "l"])
    assert both.axes[0].get_xlabel().startswith("radius (ℓ1 and ℓ2,")
    legend = [t.get_text() for t in both.axes[0].get_legend().get_texts()]
    assert legend == ["g (ℓ2): Rényi (Li et al.)", "g (ℓ2): Cohen et al.", "l (ℓ1): Rényi (Li et al.)", "l (ℓ1): Teng et al."]
