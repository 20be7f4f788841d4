"""The reproduction run: the command line, then one call per stage, then the report."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from renyi_cert._files import atomic_write_text

from .attacks import attack_stages
from .certification import figure1_stage, table1_stage
from .context import Run, open_run
from .crosscheck import crosscheck_stage
from .figures import figure1, figure2, figure3, figure4, figure_crosscheck
from .models import main_sigma, train_models
from .plan import build_parser, check_positive, make_plan
from .report import ReportInputs, report


def figure4_stage(run: Run) -> tuple[Path, str]:
    """Figure 4 and its summary (cached; redrawn when the PNG is missing)."""
    path = run.out / "fig4_bounds.png"
    result = run.stages.run("fig4", {"resolution": run.plan.fig4_resolution, "png": str(path.resolve())},
                            lambda: {"summary": figure4(run.plan, run.work, path)[1]}, force=not path.is_file())
    return path, result["summary"]


def baseline_summaries(run: Run, models: dict) -> dict:
    """``{mode: (training config, clean test accuracy)}`` of the PGD-AT and TRADES models (all test examples)."""
    from renyi_cert_torch.train import evaluate_accuracy

    return {m: (models[(m, 0.0)].config, evaluate_accuracy(models[(m, 0.0)].model, run.test, device=run.device))
            for m in ("pgd-at", "trades")}


def reproduce(run: Run, t_start: float) -> int:
    """Every stage, the figures and the report; 0, or 3 when the cross-check found a violation."""
    plan, out = run.plan, run.out
    models = train_models(run)
    sigma = main_sigma(plan)
    fig1 = figure1_stage(run, models)
    fig1_path = figure1(plan, fig1, out / f"{plan.dataset}_fig1_certified.png")
    table1 = table1_stage(run, models[("stn", sigma)], sigma)
    attacks = attack_stages(run, models, sigma)
    cross = crosscheck_stage(run, models[("stn", sigma)], sigma, table1)
    all_attacks = {**attacks.attacks, **cross.attacks}
    fig2_path = figure2(plan, all_attacks, out / f"{plan.dataset}_fig2_attacks.png")
    fig3_path = figure3(plan, attacks, out / f"{plan.dataset}_fig3_sigma.png")
    cross_path = figure_crosscheck(plan, cross, out / f"{plan.dataset}_crosscheck.png")
    fig4_path, fig4_summary = figure4_stage(run)
    total = time.perf_counter() - t_start
    md = report(ReportInputs(
        plan=plan, idx=run.idx, n_test=len(run.test), num_classes=run.num_classes, figure1=fig1, table1=table1,
        attacks=all_attacks, by_sigma=attacks.by_sigma, crosscheck=cross, fig4_summary=fig4_summary,
        stage_times=tuple(run.stages.times), total_seconds=total,
        figures=(fig1_path, fig2_path, fig3_path, fig4_path, cross_path),
        baselines=baseline_summaries(run, models)))
    md_path = out / f"{plan.dataset}_results.md"
    atomic_write_text(md_path, md)
    print(md)
    print(f"wrote {md_path} and {len(list(out.glob('*.png')))} PNG(s) in {out} ({total:.0f} s)")
    return 0 if not cross.violations else 3


def main(argv=None) -> int:
    """Run the reproduction; the exit status (1: dataset files missing, 2: usage, 3: a violation)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    plan = make_plan(parser, args)
    check_positive(parser, "threads", args.threads)
    check_positive(parser, "nproc", args.nproc)

    import torch

    from renyi_cert_torch.devices import resolve_device

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t_start = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        try:
            device = resolve_device(args.device)
        except ValueError as exc:
            parser.error(str(exc))
        work = Path(args.work) if args.work else Path("runs") / "reproduce" / plan.tag
        out = Path(args.out) if args.out else (work / "figures" if plan.quick else Path("docs") / "reproduction")
        for d in (work, work / "ckpt", out):
            d.mkdir(parents=True, exist_ok=True)
        print(f"reproduce: {plan.tag}, work folder {work}, figures in {out}, device {device}, "
              f"{args.threads} thread(s)", flush=True)
        try:
            run = open_run(plan, work=work, out=out, data_root=args.data_root, device=device, nproc=args.nproc,
                           progress=not args.no_progress, fresh=args.fresh)
        except FileNotFoundError as exc:
            print(f"reproduce: error: {exc}", file=sys.stderr)
            return 1
        return reproduce(run, t_start)
    finally:
        torch.set_num_threads(prev_threads)
