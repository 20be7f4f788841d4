"""Tests of renyi_cert.analyze: reading certification logs, certified accuracy, ACR, plots, CLI."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from renyi_cert import analyze
from renyi_cert.analyze import (
    LogFormatError,
    average_certified_radius,
    certified_accuracy,
    main,
    markdown_table,
    parse_radii,
    parse_time,
    read_log,
    summarize,
)

from _peer import COHEN_025, COHEN_050, needs_peer  # noqa: E402

OUR_HEADER = "idx\tlabel\tpredict\tradius\tcorrect\ttime\tp1_lower\tp2_upper\tradius_renyi\tradius_cohen\tradius_pixeldp"


def write(tmp_path, text, name="log.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------- peer data


@needs_peer
@pytest.mark.parametrize(
    "path, published",
    [
        # Cohen, Rosenfeld & Kolter (2019), locuslab/smoothing analysis/markdown/vary_noise_cifar10,
        # certified accuracy at r = 0.25/0.5/0.75/1.0 (two decimals, as published).
        (COHEN_025, (0.60, 0.43, 0.27, 0.00)),
        (COHEN_050, (0.55, 0.41, 0.32, 0.23)),
    ],
)
def test_reproduces_cohen_published_table(path, published):
    log = read_log(path)
    assert len(log) == 500 and log.bounds == ("radius",) and log.p1_lower is None
    acc = certified_accuracy(log, [0.25, 0.5, 0.75, 1.0])
    assert tuple(np.round(acc, 2)) == published


@needs_peer
def test_boundary_counts_as_certified():
    # Cohen's ApproximateAccuracy uses `radius >= r`. In the sigma 0.50 log one correct row has
    # radius exactly 1.0, so >= gives 117/500 and > would give 116/500 (counted directly below).
    log = read_log(COHEN_050)
    assert certified_accuracy(log, [1.0])[0] == 117 / 500
    assert np.sum((log.correct == 1) & (log.radii["radius"] > 1.0)) == 116


@needs_peer
def test_peer_summary_statistics_match_direct_counts():
    log = read_log(COHEN_025)
    (s,) = summarize(log, [0.0, 0.5])
    rad, ok = log.radii["radius"], log.correct == 1
    assert s.clean_accuracy == np.mean(ok)
    assert s.abstain_rate == np.mean(log.predict == -1)
    assert s.average_certified_radius == pytest.approx(np.sum(rad[ok]) / 500, rel=1e-12)
    # a correct row never has radius 0 here, so certified accuracy at r = 0 is the clean accuracy
    assert s.certified_accuracy[0] == s.clean_accuracy
    # time column is in seconds in these logs
    assert log.time[0] == 15.4


@needs_peer
def test_cli_on_peer_data(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([str(COHEN_025), str(COHEN_050), "--radii", "0.25,0.5,0.75,1.0", "--digits", "2",
               "--labels", "s025,s050", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| s025 | radius | 500 |" in text
    assert "0.60 | 0.43 | 0.27 | 0.00 |" in text
    assert "0.55 | 0.41 | 0.32 | 0.23 |" in text
    for name in ("certified_accuracy.md", "certified_accuracy.png", "certified_accuracy.pdf"):
        assert (out / name).stat().st_size > 0
    assert (out / "certified_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "certified_accuracy.pdf").read_bytes()[:5] == b"%PDF-"


# ---------------------------------------------------------------------------------- our format


def test_our_format_each_bound_column(tmp_path):
    text = "\n".join([
        OUR_HEADER,
        "0\t3\t3\t0.9\t1\t1.5\t0.99\t0.01\t0.9\t1.1\t0.4",
        "1\t2\t5\t0.3\t0\t1.5\t0.7\t0.3\t0.3\t0.35\t0.1",
        "2\t1\t-1\t0.0\t0\t1.5\t0.4\t0.5\t0.0\t0.0\t0.0",
        "3\t4\t4\t0.5\t1\t0:00:01.500000\t0.9\t0.1\t0.5\t0.6\t0.2",
    ]) + "\n"
    log = read_log(write(tmp_path, text))
    assert log.bounds == ("renyi", "cohen", "pixeldp")
    np.testing.assert_array_equal(log.p1_lower, [0.99, 0.7, 0.4, 0.9])
    # rows 0 and 3 are correct; renyi radii 0.9, 0.5
    np.testing.assert_array_equal(certified_accuracy(log, [0, 0.5, 0.6, 0.9, 1.0], "renyi"), [0.5, 0.5, 0.25, 0.25, 0])
    np.testing.assert_array_equal(certified_accuracy(log, [1.1], "cohen"), [0.25])
    assert average_certified_radius(log, "renyi") == pytest.approx((0.9 + 0.5) / 4)
    assert average_certified_radius(log, "pixeldp") == pytest.approx((0.4 + 0.2) / 4)
    summ = summarize(log, [0.5])
    assert [s.bound for s in summ] == ["renyi", "cohen", "pixeldp"]
    assert all(s.abstain_rate == 0.25 and s.clean_accuracy == 0.5 for s in summ)
    assert summ[0].mean_time == 1.5
    table = markdown_table(summ)
    assert table.splitlines()[0].startswith("| log | bound | n | clean acc | abstain | ACR | r = 0.5 |")
    assert "| log.tsv | cohen | 4 | 0.500 | 0.250 | 0.425 | 0.500 |" in table


def test_unknown_bound_is_named(tmp_path):
    log = read_log(write(tmp_path, OUR_HEADER + "\n0\t3\t3\t0.9\t1\t1.5\t0.99\t0.01\t0.9\t1.1\t0.4\n"))
    with pytest.raises(ValueError, match=r"bound \('macer'\) must be one of 'renyi', 'cohen', 'pixeldp'"):
        certified_accuracy(log, [0.5], "macer")


def test_infinite_radius_is_read(tmp_path):
    log = read_log(write(tmp_path, OUR_HEADER + "\n0\t3\t3\tinf\t1\t1\t1\t0\tinf\t inf\t2.0\n"))
    assert certified_accuracy(log, [1e9], "renyi")[0] == 1.0
    assert average_certified_radius(log, "renyi") == np.inf


@pytest.mark.parametrize(
    "cell, seconds",
    [("15.4", 15.4), ("0:00:15.432100", 15.4321), ("1:02:03", 3723.0), ("2 days, 1:00:00.5", 2 * 86400 + 3600.5),
     ("1 day, 0:00:01", 86401.0)],
)
def test_parse_time(cell, seconds):
    # str(datetime.timedelta(...)) formats, as written by Cohen et al.'s newer certify.py
    assert parse_time(cell) == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize("cell, msg", [("abc", r"time \('abc'\) must be seconds or H:MM:SS"),
                                       ("-1", r"time \('-1'\) must be a finite number of seconds >= 0"),
                                       ("1:2:3", r"time \('1:2:3'\) must be seconds or H:MM:SS")])
def test_parse_time_errors(cell, msg):
    with pytest.raises(ValueError, match=msg):
        parse_time(cell)


# -------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"certification log '.*nope\.tsv' does not exist"):
        read_log(tmp_path / "nope.tsv")


def test_directory_is_refused(tmp_path):
    with pytest.raises(LogFormatError, match="is a directory"):
        read_log(tmp_path)


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tcorrect\n0\t1\t1\t1\n")
    with pytest.raises(LogFormatError, match=r"missing column\(s\) 'radius', 'time'"):
        read_log(path)


def test_missing_extra_columns_are_named(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\tradius_renyi\n0\t1\t1\t1\t1\t1\t1\n")
    with pytest.raises(LogFormatError, match=r"missing column\(s\) 'p1_lower', 'p2_upper'"):
        read_log(path)


def test_non_numeric_cell_names_line_and_column(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n1\t1\t1\tabc\t1\t1\n")
    with pytest.raises(LogFormatError, match=r"line 3, column 'radius': 'abc' is not a number"):
        read_log(path)


def test_non_integer_cell(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1.5\t1\t0.5\t1\t1\n")
    with pytest.raises(LogFormatError, match=r"line 2, column 'label': '1.5' is not an integer"):
        read_log(path)


def test_bad_correct_value(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t2\t1\n")
    with pytest.raises(LogFormatError, match=r"line 2, column 'correct': 2 must be 0 or 1"):
        read_log(path)


def test_negative_radius(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t-0.5\t1\t1\n")
    with pytest.raises(LogFormatError, match=r"line 2, column 'radius': -0.5 must be >= 0"):
        read_log(path)


def test_ragged_row(tmp_path):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\n")
    with pytest.raises(LogFormatError, match=r"line 2 has 5 cells, the header has 6 columns"):
        read_log(path)


def test_empty_and_header_only(tmp_path):
    with pytest.raises(LogFormatError, match="the file is empty"):
        read_log(write(tmp_path, "", "empty.tsv"))
    with pytest.raises(LogFormatError, match="no data rows after the header"):
        read_log(write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n", "head.tsv"))


def test_bad_radii():
    with pytest.raises(ValueError, match=r"radii \('0.5,x'\): 'x' is not a number"):
        parse_radii("0.5,x")
    with pytest.raises(ValueError, match=r"radii \('-1'\): '-1' must be finite and >= 0"):
        parse_radii("-1")
    with pytest.raises(ValueError, match=r"radii \('0.5,,1'\) must be a comma-separated list of numbers >= 0"):
        parse_radii("0.5,,1")
    assert parse_radii("0, 0.25,1") == (0.0, 0.25, 1.0)


def test_markdown_table_rejects_mixed_grids(tmp_path):
    log = read_log(write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n"))
    a = summarize(log, [0.5])
    b = summarize(log, [0.25])
    with pytest.raises(ValueError, match="must share one radius grid"):
        markdown_table(a + b)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing.tsv")]) == 2
    assert "missing.tsv' does not exist" in capsys.readouterr().err


def test_cli_bad_radii(tmp_path, capsys):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")
    assert main([str(path), "--radii", "0.5,foo"]) == 2
    assert "argument --radii: radii ('0.5,foo'): 'foo' is not a number" in capsys.readouterr().err


def test_cli_label_count(tmp_path, capsys):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")
    assert main([str(path), "--labels", "a,b"]) == 2
    assert "--labels ('a,b') has 2 entries for 1 file(s)" in capsys.readouterr().err


def test_cli_bad_max_radius(tmp_path, capsys):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")
    assert main([str(path), "--max-radius", "-1"]) == 2
    assert "argument --max-radius: max-radius ('-1') must be finite and > 0" in capsys.readouterr().err


def test_cli_unknown_flag(capsys):
    assert main(["x.tsv", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_cli_bad_column(tmp_path, capsys):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\n0\t1\t1\t0.5\t1\n")
    assert main([str(path)]) == 2
    assert "missing column(s) 'time'" in capsys.readouterr().err


def test_public_names_are_reexported():
    # the package's steps live in submodules; the names users import stay on renyi_cert.analyze
    from renyi_cert.analyze import cli, logs, plots, stats

    assert analyze.read_log is logs.read_log and analyze.CertificationLog is logs.CertificationLog
    assert analyze.LogFormatError is logs.LogFormatError
    assert analyze.summarize is stats.summarize and analyze.markdown_table is stats.markdown_table
    assert analyze.DEFAULT_RADII == stats.DEFAULT_RADII == (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert analyze.plot_certified_accuracy is plots.plot_certified_accuracy
    assert analyze.main is cli.main and analyze.parse_radii is cli.parse_radii
    assert set(analyze.__all__) <= set(dir(analyze))


def test_cli_bad_digits(tmp_path, capsys):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")
    assert main([str(path), "--digits", "13"]) == 2
    assert "argument --digits: digits (13) must be an integer in 0..12" in capsys.readouterr().err


def test_core_does_not_import_torch():
    # renyi_cert.analyze is part of the torch-free core
    import subprocess

    code = "import sys, renyi_cert.analyze; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert analyze.COHEN_COLUMNS == ("idx", "label", "predict", "radius", "correct", "time")


# ----------------------------------------------------------------------------- trust (issue 7)

GUARANTEED_HEADER = OUR_HEADER + "\tguaranteed"


def test_guaranteed_column_is_read_and_marks_the_label(tmp_path, capsys):
    text = "\n".join([GUARANTEED_HEADER,
                      "0\t3\t3\t0.9\t1\t1.5\t0.99\t0.01\t0.9\t1.1\t0.4\t0",
                      "1\t2\t2\t0.3\t1\t1.5\t0.7\t0.3\t0.3\t0.35\t0.1\t0"]) + "\n"
    log = read_log(write(tmp_path, text, "sg.tsv"))
    np.testing.assert_array_equal(log.guaranteed, [0, 0])
    assert log.bounds == ("renyi", "cohen", "pixeldp")  # `guaranteed` is not a radius column
    assert [s.label for s in summarize(log, [0.5])] == ["sg.tsv (not guaranteed)"] * 3
    assert main([str(tmp_path / "sg.tsv"), "--radii", "0.5", "--out", str(tmp_path / "rep")]) == 0
    captured = capsys.readouterr()
    assert "| sg.tsv (not guaranteed) | renyi | 2 |" in captured.out
    assert "2 of 2 rows were certified without the 1 - alpha guarantee" in captured.err
    assert "(not guaranteed)" in (tmp_path / "rep" / "certified_accuracy.md").read_text()
    # a guaranteed log is not marked; a log without the column (Cohen's, older ours) has None
    ok = read_log(write(tmp_path, text.replace("\t0\n", "\t1\n"), "cp.tsv"))
    np.testing.assert_array_equal(ok.guaranteed, [1, 1])
    assert summarize(ok, [0.5])[0].label == "cp.tsv"
    older = write(tmp_path, OUR_HEADER + "\n0\t3\t3\t0.9\t1\t1\t0.99\t0.01\t0.9\t1.1\t0.4\n", "old.tsv")
    assert read_log(older).guaranteed is None


def test_guaranteed_must_be_0_or_1(tmp_path):
    path = write(tmp_path, GUARANTEED_HEADER + "\n0\t3\t3\t0.9\t1\t1.5\t0.99\t0.01\t0.9\t1.1\t0.4\t2\n")
    with pytest.raises(LogFormatError, match=r"line 2, column 'guaranteed': 2 must be 0 or 1"):
        read_log(path)


def test_duplicate_idx_is_refused(tmp_path, capsys):
    rows = ["0\t1\t1\t0.5\t1\t1", "10\t2\t2\t0.5\t1\t1", "0\t1\t1\t0.5\t1\t1", "5\t1\t1\t0.5\t1\t1",
            "10\t2\t2\t0.5\t1\t1"]
    path = write(tmp_path, "\n".join(["idx\tlabel\tpredict\tradius\tcorrect\ttime", *rows]) + "\n")
    message = "duplicate idx 0, 10 (each example must appear once; two runs may have written to this log)"
    with pytest.raises(LogFormatError, match=re.escape(message)):
        read_log(path)
    assert main([str(path)]) == 2
    assert message in capsys.readouterr().err


def test_binary_file_is_named(tmp_path, capsys):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(LogFormatError, match=re.escape("x.bin is not a text certification log (not UTF-8 text)")):
        read_log(path)
    zeros = tmp_path / "zeros.tsv"  # valid UTF-8, but not text
    zeros.write_bytes(b"\x00" * 64)
    with pytest.raises(LogFormatError, match="zeros.tsv is not a text certification log"):
        read_log(zeros)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "x.bin is not a text certification log (not UTF-8 text)" in err and "Traceback" not in err


@pytest.mark.parametrize("row, message", [
    ("0\t3\t5\t0.5\t1\t1", "line 2: correct is 1 but predict (5) != label (3)"),
    ("0\t3\t3\t0.5\t0\t1", "line 2: correct is 0 but predict (3) == label (3)"),
    ("0\t3\t-1\t0.0\t1\t1", "line 2: correct is 1 but predict (-1) != label (3)"),
])
def test_correct_must_agree_with_predict_and_label(tmp_path, row, message):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n" + row + "\n")
    with pytest.raises(LogFormatError, match=re.escape(message + "; correct must be 1 exactly when predict == label")):
        read_log(path)


def test_prog_follows_the_command(capsys):
    assert main(["--help"], prog="renyi-cert analyze") == 0
    assert capsys.readouterr().out.startswith("usage: renyi-cert analyze")
    assert main(["x.tsv", "--radii", "a"], prog="renyi-cert analyze") == 2
    assert "renyi-cert analyze: error: argument --radii: radii ('a'): 'a' is not a number" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: renyi-analyze")


def test_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze.cli, "read_log", interrupted)  # where the command looks it up
    try:
        rc = main([str(path)])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped renyi-analyze (expected one line and exit status 130)")
    assert rc == 130
    err = capsys.readouterr().err
    assert err.startswith("renyi-analyze: interrupted") and "Traceback" not in err


def test_out_under_a_file_is_refused_before_reading(tmp_path, capsys):
    blocker = write(tmp_path, "x", "blocker")
    assert main([str(tmp_path / "missing.tsv"), "--out", str(blocker / "rep")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "does not exist" not in err


def test_report_files_are_replaced_atomically(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    path = write(tmp_path, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t1\n")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "certified_accuracy.png").write_bytes(b"previous png")

    def disk_full(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    assert main([str(path), "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "certified_accuracy.png").read_bytes() == b"previous png"
    assert sorted(p.name for p in out.iterdir()) == ["certified_accuracy.md", "certified_accuracy.png"]


# ----------------------------------------------------------------- cost columns (issue 9)

COST_HEADER = GUARANTEED_HEADER + "\tforward_passes\tstop"
COST_ROWS = ["0\t3\t3\t0.9\t1\t1.5\t0.99\t0.01\t0.9\t1.1\t0.4\t1\t400\ttarget-reached",
             "1\t2\t2\t0.3\t1\t1.5\t0.7\t0.3\t0.3\t0.35\t0.1\t1\t10100\tbudget-exhausted",
             "2\t2\t-1\t0\t0\t1.5\t0.4\t0.4\t0\t0\t0\t1\t300\ttarget-out-of-reach"]


def test_forward_passes_and_stop_are_read_and_summarized(tmp_path, capsys):
    log = read_log(write(tmp_path, "\n".join([COST_HEADER, *COST_ROWS]) + "\n", "ad.tsv"))
    np.testing.assert_array_equal(log.forward_passes, [400, 10100, 300])
    assert log.stop == ("target-reached", "budget-exhausted", "target-out-of-reach")
    assert log.bounds == ("renyi", "cohen", "pixeldp")
    s = summarize(log, [0.5])[0]
    assert (s.total_forward_passes, s.mean_forward_passes) == (10800, 3600.0)
    # a log without the columns has no costs, and shows "-" in a table beside one that has them
    older = read_log(write(tmp_path, GUARANTEED_HEADER + "\n" + COST_ROWS[0].rsplit("\t", 2)[0] + "\n", "old.tsv"))
    assert older.forward_passes is None and older.stop is None
    table = markdown_table(summarize(log, [0.5])[:1] + summarize(older, [0.5])[:1])
    assert "| passes/example | passes |" in table.splitlines()[0]
    assert table.splitlines()[2].endswith("| 3600 | 10,800 |") and table.splitlines()[3].endswith("| - | - |")
    assert "passes" not in markdown_table(summarize(older, [0.5]))


@pytest.mark.parametrize("row, message", [
    (COST_ROWS[0].replace("target-reached", "target reached"), r"column 'stop': 'target reached' is not one of "
                                                               r"fixed-n, target-reached"),
    (COST_ROWS[0].replace("\t400\t", "\t0\t"), r"line 2, column 'forward_passes': 0 must be >= 1"),
    (COST_ROWS[0].replace("\t400\t", "\t4.5\t"), r"line 2, column 'forward_passes': '4.5' is not an integer"),
])
def test_bad_cost_cells_are_named(tmp_path, row, message):
    with pytest.raises(LogFormatError, match=message):
        read_log(write(tmp_path, COST_HEADER + "\n" + row + "\n"))
