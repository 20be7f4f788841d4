"""python -m renyi_cert.compare_pixeldp: the grid, its summary, the files, the errors."""

import csv
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

import renyi_cert as rc
from renyi_cert import compare_pixeldp as cp
from renyi_cert.noise import Laplace


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
        (["--noise", "laplace", "--scale", "0"], "argument --scale: scale ('0') must be finite and > 0"),
        (["--noise", "laplace", "--scale", "-2"], "argument --scale: scale ('-2') must be finite and > 0"),
        (["--noise", "laplace", "--scale", "inf"], "argument --scale: scale ('inf') must be finite and > 0"),
        (["--noise", "cauchy"], "argument --noise: noise ('cauchy') must be one of gaussian, laplace"),
        (["--noise", "uniform"], "argument --noise: noise ('uniform') must be one of gaussian, laplace: uniform "
                                 "noise has no Renyi certificate to compare"),
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


# ------------------------------------------------------------------ the Gaussian default, byte for byte

# What the command printed and wrote for `--grid 40 --sigma 0.5` before it had --noise (commit e1c4094):
# the summary table and the SHA-256 of radii.csv. A deliberate change to the Gaussian radii changes both:
# the hash was regenerated once since, after the order -> 1 accuracy fix of renyi_cert._kernels, which
# moved 8 order_star cells (to mpmath's maximising order at the printed 10 digits); the summary stayed.
_GAUSSIAN_SUMMARY_BEFORE = """\
grid points (valid)   755 (resolution 40, p1 + p2 >= 0.2, sigma = 0.5)
Renyi > PixelDP       100.00 % of points
PixelDP > Renyi       0 points
Renyi / PixelDP       min 1.341, median 2.593, max 4.256
Renyi >= 2 x PixelDP  87.68 % of points
Renyi / Cohen         min 0.6981, max 0.9003
maximising order      1.0000 .. 1.4999 (limit order -> 1 at 11.9 % of points)
"""
_GAUSSIAN_CSV_SHA256_BEFORE = "8ec3cc5fbb1465f574661c1dc571255ffb212e708eedf82b9a4e5b3c1f02eaa1"


def _summary_lines(out: str) -> str:
    """stdout without the timing line and the 'wrote <path>' lines."""
    return "".join(line + "\n" for line in out.splitlines() if not line.startswith(("computed ", "wrote ")))


def test_gaussian_default_is_unchanged_byte_for_byte(tmp_path, capsys):
    assert cp.main(["--grid", "40", "--sigma", "0.5", "--out", str(tmp_path / "default")]) == 0
    default_out = capsys.readouterr().out
    assert _summary_lines(default_out) == _GAUSSIAN_SUMMARY_BEFORE
    assert hashlib.sha256((tmp_path / "default" / "radii.csv").read_bytes()).hexdigest() == _GAUSSIAN_CSV_SHA256_BEFORE
    # --noise gaussian is the default: the same stdout and the same bytes in every file but the PDF
    # (whose metadata holds its creation time)
    assert cp.main(["--noise", "gaussian", "--grid", "40", "--sigma", "0.5", "--out", str(tmp_path / "named")]) == 0
    assert _summary_lines(capsys.readouterr().out) == _GAUSSIAN_SUMMARY_BEFORE
    for name in ("radii.csv", "comparison.png"):
        assert (tmp_path / "named" / name).read_bytes() == (tmp_path / "default" / name).read_bytes()


@pytest.mark.parametrize("argv, folder", [([], "compare_pixeldp"), (["--noise", "gaussian"], "compare_pixeldp"),
                                          (["--noise", "laplace"], "compare_laplace")])
def test_default_output_folder_per_noise(argv, folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cp.main([*argv, "--grid", "8", "--no-plot"]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")) == [f"runs/{folder}/radii.csv"]


# ------------------------------------------------------------------------------- --noise laplace


def test_laplace_csv_matches_the_radii_and_the_closed_forms(tmp_path, capsys):
    b = 0.5
    assert cp.main(["--noise", "laplace", "--scale", str(b), "--grid", "30", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Laplace b = 0.5, l1 radii" in out and "Renyi > Teng" in out and "Renyi / PixelDP" in out
    for name in ("radii.csv", "comparison.png", "comparison.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "radii.csv") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["p1", "p2", "renyi", "teng", "pixeldp"]
        rows = [{k: float(v) for k, v in row.items()} for row in reader]
    assert len(rows) == cp.grid_points(30, 0.2)[0].size
    lap = Laplace(b)
    # sample points: both sides of p1 = 1/2, the line p2 = 1 - p1, small p2 (the CSV has 10 digits)
    picks = [rows[i] for i in range(0, len(rows), 17)]
    picks += [r for r in rows if r["p1"] + r["p2"] >= 1 - 1e-9][:3] + [r for r in rows if r["p2"] < 0.02][:3]
    assert any(r["p1"] <= 0.5 for r in picks) and any(r["p1"] > 0.5 for r in picks)
    for r in picks:
        p1, p2 = r["p1"], min(r["p2"], 1 - r["p1"])  # 10 digits can put p1 + p2 a hair above 1
        assert r["renyi"] == pytest.approx(lap.radius(p1, p2), rel=1e-8)
        assert r["teng"] == pytest.approx(-b * math.log(2 * (1 - p1)) if p1 > 0.5 else 0.0, rel=1e-8)
        assert r["pixeldp"] == pytest.approx(b / 2 * math.log(p1 / p2), rel=1e-8)


def test_laplace_grid_matches_the_noise_module_and_scales_with_b():
    g1 = cp.compute_laplace_grid(scale=1.0, resolution=24, min_total=0.0)
    g3 = cp.compute_laplace_grid(scale=3.0, resolution=24, min_total=0.0)
    lap = Laplace(3.0)
    np.testing.assert_array_equal(g3.renyi, lap.radius(g3.p1, g3.p2))
    np.testing.assert_array_equal(g3.teng, lap.radius(g3.p1, g3.p2, bound="teng"))
    np.testing.assert_array_equal(g3.pixeldp, lap.radius(g3.p1, g3.p2, bound="pixeldp"))
    for name in ("renyi", "teng", "pixeldp"):
        np.testing.assert_allclose(getattr(g3, name), 3.0 * getattr(g1, name), rtol=1e-14)


def test_laplace_summary_claims_hold_on_a_small_grid():
    grid = cp.compute_laplace_grid(scale=1.0, resolution=40, min_total=0.0)
    s = cp.summarize_laplace(grid)
    r, t, d = grid.renyi, grid.teng, grid.pixeldp
    line = grid.p1 + grid.p2 >= 1 - 1e-12
    gap = 1 - grid.p1 - grid.p2
    # checked here directly: Renyi >= Teng everywhere, equal on p2 = 1 - p1, above off it (by >= b gap for p1 > 1/2)
    assert np.all(r >= t * (1 - 1e-12))
    assert line.sum() == 19 and np.all(np.abs(r[line] - t[line]) <= 1e-12 * t[line])
    assert np.all(r[~line] > t[~line] * (1 + 1e-12))
    steep = ~line & (grid.p1 > 0.5)
    assert np.all(r[steep] - t[steep] >= gap[steep])
    # ... and the summary says the same
    assert s.renyi_below_teng == 0 and s.equal_teng_off_line == 0
    assert s.equal_teng == s.line_points == 19 and s.line_max_rel_diff < 1e-14
    assert s.renyi_above_teng == pytest.approx((~line).mean()) and s.off_line_points == (~line).sum()
    assert s.smallest_gap == pytest.approx(1 / 80) and s.excess_per_gap_min >= 1.0
    assert 1.0 < s.ratio_teng_min <= s.ratio_teng_median <= s.ratio_teng_max
    assert s.teng_zero == pytest.approx(np.mean(grid.p1 <= 0.5)) and s.renyi_max_where_teng_zero > 0
    # PixelDP: the fractions, and each listed column's threshold is exact
    assert s.pixeldp_above_renyi == pytest.approx(np.mean(d > r))
    assert s.renyi_above_pixeldp == pytest.approx(np.mean(r > d))
    assert s.pixeldp_wins_low_p1 == 1.0 and s.pixeldp_not_threshold == 0
    assert [c for c, _ in s.pixeldp_thresholds] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    for c, top in s.pixeldp_thresholds:
        col = np.isclose(grid.p1, c)
        wins = d[col] > r[col]
        np.testing.assert_array_equal(wins, grid.p2[col] <= top if not math.isnan(top) else False)
    text = cp.format_laplace_summary(s, grid)
    assert "every point with p2 < 1 - p1 (1 - p1 - p2 >= 0.0125 on this grid)" in text
    assert "19 points: all on the line p2 = 1 - p1, and no other" in text
    assert re.search(r"^Renyi < Teng +0 points$", text, re.M)
    assert re.search(r"^PixelDP > Renyi, p1 <= 1/2 +at 100\.00 % of those points$", text, re.M)


def test_laplace_summary_reports_a_violation_instead_of_claiming_it_away():
    grid = cp.compute_laplace_grid(scale=1.0, resolution=20, min_total=0.2)
    i = int(np.flatnonzero((grid.p1 > 0.6) & (grid.p1 + grid.p2 < 0.9))[0])
    renyi = grid.renyi.copy()
    renyi[i] = grid.teng[i] * 0.5  # a (fake) point where Renyi is below Teng
    s = cp.summarize_laplace(cp.LaplaceGrid(**{**grid.__dict__, "renyi": renyi}))
    assert s.renyi_below_teng == 1
    text = cp.format_laplace_summary(s, grid)
    assert "every point with p2 < 1 - p1" not in text
    assert re.search(r"^Renyi < Teng +1 points$", text, re.M)


def test_laplace_figure_is_labelled_l1():
    fig = cp.laplace_figure(cp.compute_laplace_grid(scale=2.0, resolution=20, min_total=0.2))
    labels = [ax.get_ylabel() for ax in fig.axes] + [ax.get_title() for ax in fig.axes]
    assert "Certified ℓ1 radius, Rényi bound (Laplace noise)" in labels
    assert "Rényi ℓ1 radius (b = 2)" in labels and "Rényi / Teng" in labels and "certified ℓ1 radius" in labels
    assert "ℓ1" in fig.get_suptitle() and "Teng" in fig.get_suptitle()


def test_laplace_on_the_line_p1_plus_p2_equal_one(tmp_path, capsys):
    assert cp.main(["--noise", "laplace", "--grid", "20", "--min-total", "1.0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^Renyi > Teng +0\.00 % of points$", out, re.M)
    assert "9 points: all on the line p2 = 1 - p1, and no other" in out
    for name in ("radii.csv", "comparison.png", "comparison.pdf"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--noise", "laplace", "--sigma", "0.5"],
         "--sigma (0.5) is the Gaussian noise level and does not apply to --noise laplace: give the Laplace noise "
         "scale as --scale"),
        (["--scale", "2"], "--scale (2) is the Laplace noise scale and needs --noise laplace (the Gaussian noise "
                           "level is --sigma)"),
        (["--noise", "gaussian", "--scale", "0.25"],
         "--scale (0.25) is the Laplace noise scale and needs --noise laplace"),
    ],
)
def test_noise_options_that_do_not_fit_are_refused_before_work(argv, message, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        pytest.fail("the grid was computed before the options were checked")

    monkeypatch.setattr(cp, "compute_grid", no_work)
    monkeypatch.setattr(cp, "compute_laplace_grid", no_work)
    out = tmp_path / "out"
    assert cp.main([*argv, "--grid", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"python -m renyi_cert.compare_pixeldp: error: {message}" in err and "Traceback" not in err
    assert not out.exists()


def test_compute_laplace_grid_errors():
    with pytest.raises(ValueError, match=r"scale \(0.0\) must be > 0"):
        cp.compute_laplace_grid(scale=0.0, resolution=10)
    with pytest.raises(ValueError, match=r"scale \(-1.0\) must be > 0"):
        cp.compute_laplace_grid(scale=-1.0, resolution=10)
    with pytest.raises(ValueError, match=r"resolution \(1\) must be an integer >= 2"):
        cp.compute_laplace_grid(resolution=1)
    with pytest.raises(ValueError, match="has no valid point"):
        cp.summarize_laplace(cp.LaplaceGrid(*(np.empty(0),) * 5, scale=1.0, resolution=2, min_total=1.0))
