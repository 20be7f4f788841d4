"""renyi_cert._cli: the one set of flag parsers every command uses (messages name flag, value, rule)."""

import argparse

import pytest

from renyi_cert._cli import (
    alpha_arg,
    bounds_arg,
    device_arg,
    float_list_arg,
    int_arg,
    parse_bounds,
    parse_choice,
    parse_device,
    parse_float_list,
    parse_int,
    parse_real,
    real_arg,
)


@pytest.mark.parametrize("call, message", [
    (lambda: parse_int("n", "x"), "n ('x') must be an integer >= 1"),
    (lambda: parse_int("n", "2.5"), "n ('2.5') must be an integer >= 1"),
    (lambda: parse_int("--seed", "-1", 0), "--seed (-1) must be an integer >= 0"),
    (lambda: parse_int("digits", "13", 0, 12), "digits (13) must be an integer in 0..12"),
    (lambda: parse_real("sigma", "x", 0.0, strict=True), "sigma ('x') must be a number > 0"),
    (lambda: parse_real("sigma", "0", 0.0, strict=True), "sigma ('0') must be finite and > 0"),
    (lambda: parse_real("--kappa", "nan"), "--kappa ('nan') must be finite and >= 0"),
    (lambda: parse_real("--kappa", "inf"), "--kappa ('inf') must be finite and >= 0"),
    (lambda: parse_real("min-total", "1.5", 0.0, 1.0), "min-total ('1.5') must be in [0, 1]"),
    (lambda: parse_real("min-total", "y", 0.0, 1.0), "min-total ('y') must be a number in [0, 1]"),
    (lambda: parse_real("alpha", "1", 0.0, 1.0, strict=True), "alpha ('1') must be in the open interval (0, 1)"),
    (lambda: parse_float_list("--eps", "0,,1", example="0,0.1"),
     "--eps ('0,,1') must be a comma-separated list of numbers >= 0, e.g. 0,0.1"),
    (lambda: parse_float_list("radii", "0,abc"), "radii ('0,abc'): 'abc' is not a number"),
    (lambda: parse_float_list("radii", "0, -1"), "radii ('0, -1'): '-1' must be finite and >= 0"),
    (lambda: parse_float_list("radii", "inf"), "radii ('inf'): 'inf' must be finite and >= 0"),
    (lambda: parse_choice("--norm", "l1", ("linf", "l2")), "--norm ('l1') must be one of linf, l2"),
    (lambda: parse_bounds("bound", "renyi,lp"), "bound ('lp') must be one of renyi, cohen, pixeldp or all"),
    (lambda: parse_bounds("bound", "cohen,cohen"), "bound ('cohen,cohen') names a bound twice"),
    (lambda: parse_device("device", "tpu"), "device ('tpu') must be one of auto, cpu, cuda or cuda:<index>"),
])
def test_messages_name_the_flag_the_value_and_the_rule(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_values():
    assert parse_int("n", " 7 ") == 7 and parse_int("digits", "0", 0, 12) == 0
    assert parse_real("sigma", "0.25", 0.0, strict=True) == 0.25 and parse_real("x", "1", 0.0, 1.0) == 1.0
    assert parse_float_list("radii", "0, 0.25,1") == (0.0, 0.25, 1.0)
    assert parse_bounds("bound", "all") == ("renyi", "cohen", "pixeldp")
    assert parse_bounds("bound", "cohen, renyi") == ("cohen", "renyi")
    assert parse_device("device", "cuda:1") == "cuda:1"


def test_argparse_types_report_through_argparse(capsys):
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--n", type=int_arg("n"))
    p.add_argument("--sigma", type=real_arg("sigma", 0.0, strict=True))
    p.add_argument("--alpha", type=alpha_arg())
    p.add_argument("--radii", type=float_list_arg("radii"), default="0,0.5")
    p.add_argument("--bound", type=bounds_arg())
    p.add_argument("--device", type=device_arg())
    args = p.parse_args(["--n", "3", "--sigma", "0.5", "--alpha", "0.01", "--bound", "renyi", "--device", "cpu"])
    assert (args.n, args.sigma, args.alpha, args.radii, args.bound, args.device) == \
        (3, 0.5, 0.01, (0.0, 0.5), ("renyi",), "cpu")
    for flags, message in [(["--n", "0"], "argument --n: n (0) must be an integer >= 1"),
                           (["--alpha", "0"], "argument --alpha: alpha ('0') must be in the open interval (0, 1)"),
                           (["--radii", "a"], "argument --radii: radii ('a'): 'a' is not a number")]:
        with pytest.raises(SystemExit):
            p.parse_args(flags)
        assert message in capsys.readouterr().err
