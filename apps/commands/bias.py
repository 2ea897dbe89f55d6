"""``embedsuite bias``: association tests (WEAT/SEAT) on encoders, and the sentiment check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _counterfactual(args: argparse.Namespace) -> int:
    from embedsuite.bias import counterfactual_sentiment, load_counterfactual
    from embedsuite.encoders import get_encoder
    from embedsuite.heads.sentiment import load_default

    head = load_default(get_encoder(args.encoder))
    pos = head.classes_.index("positive")
    templates, families = load_counterfactual("en")
    rows = []
    for family, groups in families.items():
        for r in counterfactual_sentiment(lambda t: head.predict_proba(t)[:, pos], templates,
                                          groups):
            rows.append({"family": family, **r})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        return 0
    sys.stdout.write(f"P(positive) gaps of the default sentiment head, {len(templates)} "
                     f"templates (group a minus group b)\n")
    for r in rows:
        sys.stdout.write(f"{r['family']:<22} {r['group_a']:<18} vs {r['group_b']:<18} "
                         f"mean {r['mean_gap']:+.4f}  worst {r['worst_gap']:+.4f}  "
                         f"({r['worst_template']})\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    from embedsuite.bias import load_tests, plot_effect_sizes, run_bias_tests
    from embedsuite.encoders import get_encoder

    if args.counterfactual:
        return _counterfactual(args)
    langs = [s.strip() for s in args.langs.split(",")] if args.langs else None
    tests = load_tests(langs)
    names = [s.strip() for s in args.encoder.split(",") if s.strip()]
    encs = [get_encoder(n) for n in names]  # validate every name before the work
    results = {n: run_bias_tests(e, tests, n_permutations=args.permutations, seed=args.seed)
               for n, e in zip(names, encs, strict=True)}
    records: list[dict[str, Any]] = []
    for n, rs in results.items():
        for r in rs:
            rec = r.as_record()
            if len(names) > 1:
                rec = {"encoder": n, **rec}
            records.append(rec)
    if args.plot:
        plot_effect_sizes(results).savefig(args.plot, dpi=120)
    if args.json:
        sys.stdout.write(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        return 0
    for n, rs in results.items():
        sys.stdout.write(f"\n{n}\n{'test':<58} {'lang':<5} {'d':>7} {'p':>8} {'n':>4}\n")
        for r in rs:
            sys.stdout.write(f"{r.test:<58} {r.language:<5} {r.effect_size:>7.3f} "
                             f"{r.p_value:>8.4f} {r.n_targets:>4}\n")
        mean_abs = sum(abs(r.effect_size) for r in rs) / max(1, len(rs))
        sys.stdout.write(f"mean |d| = {mean_abs:.3f} over {len(rs)} tests\n")
    if args.plot:
        sys.stdout.write(f"plot: {args.plot}\n")
    return 0


def register(sub: Any) -> None:
    """Add the ``bias`` sub-command."""
    p = sub.add_parser("bias", help="association tests (WEAT/SEAT) on one or more encoders")
    p.add_argument("--encoder", default="e5-small", help="name(s), comma-separated")
    p.add_argument("--langs", default=None, help="comma-separated: en,de,fr,es (default all)")
    p.add_argument("--permutations", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default=None, help="write a bar chart of effect sizes (PNG)")
    p.add_argument("--json", action="store_true",
                   help='records {"test", "language", "effect_size", "p_value", "n_targets", '
                        '"n_attributes"}')
    p.add_argument("--counterfactual", action="store_true",
                   help="instead: score gaps of the default sentiment head when only a name or "
                        "identity term changes (project-written templates)")
    p.set_defaults(func=_run)
