"""python -m renyi_cert.compare_pixeldp: the grid, its summary, the files, the errors."""

import csv
from pathlib import Path

import numpy as np
import pytest

import renyi_cert as rc
from renyi_cert import compare_pixeldp as cp


def test_grid_is_the_valid_domain_and_matches_the_scalar_functions():
    grid = cp.compute_grid(sigma=0.5, resolution=80, min_total=0.2)
    total = grid.p1 + grid.p2
    assert np.all(grid.p1 > grid.p2) and np.all(total <= 1 + 1e-12) and np.all(total >= 0.2)
    i = len(grid.p1) // 3
    assert grid.renyi[i] == rc.radius(grid.p1[i], grid.p2[i], 0.5)
    assert grid.pixeldp[i] == rc.pixeldp_radius(grid.p1[i], grid.p2[i], 0.5)
    assert grid.cohen[i] == rc.cohen_radius(grid.p1[i], grid.p2[i], 0.5)


def test_summary_on_the_paper_domain():
    s = cp.summarize(cp.compute_grid(resolution=200, min_total=0.2))
    # the paper's Figure 4 claim: Renyi above PixelDP everywhere on p1 + p2 >= 0.2 ...
    assert s.renyi_above_pixeldp == 1.0 and s.pixeldp_above_renyi == 0
    assert s.ratio_pixeldp_min > 1.0 and s.ratio_pixeldp_max > 2.0  # ... "more than twice as high" in places
    # ... and below Cohen's tight bound everywhere
    assert s.ratio_cohen_max < 1.0
    assert 1.0 <= s.order_star_min and s.order_star_max <= 1.5 + 1e-9


def test_summary_maps_where_pixeldp_wins():
    s = cp.summarize(cp.compute_grid(resolution=200, min_total=0.0))
    assert s.pixeldp_above_renyi > 0
    assert s.max_total_where_pixeldp_wins < 0.12  # docs/numerics.md, section 6: only for small p1 + p2 (about 0.11)


def test_main_writes_csv_and_figures(tmp_path, capsys):
    assert cp.main(["--grid", "60", "--sigma", "0.25", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Renyi > PixelDP" in out and "Renyi / Cohen" in out and "maximising order" in out
    for name in ("radii.csv", "comparison.png", "comparison.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "radii.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"p1", "p2", "renyi", "pixeldp", "cohen", "order_star", "pixeldp_epsilon"}
    r = rows[len(rows) // 2]
    assert float(r["renyi"]) == pytest.approx(rc.radius(float(r["p1"]), float(r["p2"]), 0.25), rel=1e-9)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sigma", "-1"], "argument --sigma: sigma ('-1') must be finite and > 0"),
        (["--sigma", "abc"], "argument --sigma: sigma ('abc') must be a number > 0"),
        (["--grid", "1"], "grid resolution (1) must be an integer >= 2"),
        (["--grid", "x"], "grid resolution ('x') must be an integer >= 2"),
        (["--min-total", "1.5"], "min-total ('1.5') must be in [0, 1]"),
        (["--min-total", "y"], "min-total ('y') must be a number in [0, 1]"),
    ],
)
def test_cli_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cp.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cp.main(["--grid", "10", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert f"--out ('{blocker / 'sub' / 'radii.csv'}') cannot be created: '{blocker}' is a file, not a folder" in err
    assert "Renyi > PixelDP" not in err  # refused before any work


@pytest.mark.parametrize("argv, points", [(["--grid", "2"], 1), (["--grid", "4", "--min-total", "0.95"], 1),
                                          (["--grid", "4", "--min-total", "1.0"], 1)])
def test_too_few_points_for_the_figure_is_refused_before_writing(argv, points, tmp_path, capsys):
    out = tmp_path / "out"
    assert cp.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"leaves {points} valid grid point(s)" in err and "the figure needs at least 3" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written
    # without the figure, one point is enough for the summary and the CSV
    assert cp.main([*argv, "--out", str(out), "--no-plot"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["radii.csv"]


def test_min_total_one_draws_the_line_p1_plus_p2_equal_one(tmp_path, capsys):
    assert cp.main(["--grid", "20", "--min-total", "1.0", "--out", str(tmp_path)]) == 0
    assert "9 (resolution 20, p1 + p2 >= 1" in capsys.readouterr().out
    for name in ("radii.csv", "comparison.png", "comparison.pdf"):
        assert (tmp_path / name).stat().st_size > 0


def test_outputs_are_replaced_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    (tmp_path / "comparison.png").write_bytes(b"previous png")

    def disk_full(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cp.main(["--grid", "10", "--out", str(tmp_path)])
    assert (tmp_path / "comparison.png").read_bytes() == b"previous png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.png", "radii.csv"]


def test_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cp, "compute_grid", interrupted)
    try:
        rc = cp.main(["--grid", "10", "--out", str(tmp_path / "o")])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped compare_pixeldp (expected one line and exit status 130)")
    assert rc == 130
    err = capsys.readouterr().err
    assert err.startswith("python -m renyi_cert.compare_pixeldp: interrupted") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_compute_grid_errors():
    with pytest.raises(ValueError, match=r"resolution \(1\) must be an integer >= 2"):
        cp.compute_grid(resolution=1)
    with pytest.raises(ValueError, match=r"min_total \(-0.1\) must be in \[0, 1\]"):
        cp.compute_grid(min_total=-0.1)
    with pytest.raises(ValueError, match=r"sigma \(0.0\) must be > 0"):
        cp.compute_grid(sigma=0.0, resolution=10)
