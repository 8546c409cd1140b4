"""How well do finished rounds of a ``bench_liquid.py`` fit predict a round they did not
see? For every training liquid, the simulated density and Hvap of round T against three
predictions from the source rounds: MBAR over all of them (``ffparam.liquid.mbar``),
exponential reweighting of the last source round alone (``reweight_liquid``) and the
linear model of that round's fluctuation derivatives (what the linear fit step uses).

    python benchmarks/liquid_mbar_check.py tmp/bench_liquid_v3 --sources 0 1 --target 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_liquid as bl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fit_out", type=Path)
    parser.add_argument("--sources", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--target", type=int, default=2)
    parser.add_argument("--gas-ns", type=float, default=25.0)
    parser.add_argument("--gas-replicas", type=int, default=1)
    parser.add_argument("--box-conformers", type=int, default=0)
    args = parser.parse_args()

    from ffparam.liquid.mbar import MultiStateReweighter
    from ffparam.liquid.reweight import reweight_liquid

    fit, options, _ = bl.open_fit(args.fit_out, args.gas_ns, args.gas_replicas,
                                  args.box_conformers)
    rounds = fit.state.rounds
    last = args.sources[-1]
    rows = []
    print(f"predicting round {args.target} from rounds {args.sources} ({args.fit_out})\n")
    print("| liquid | simulated density | MBAR | exp. reweighting | linear | simulated Hvap "
          "| MBAR | exp. reweighting | linear |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for ref in fit.training:
        sim = rounds[args.target].results.get(ref.slug)
        if sim is None:
            continue
        system = fit.systems[ref.slug]

        def values(k: int, system=system) -> np.ndarray:
            return fit.fit.system_values(system, torch.as_tensor(np.array(rounds[k].x))
                                         ).numpy()

        runs = [(args.fit_out / "fit" / f"round_{k:03d}" / ref.slug, values(k))
                for k in args.sources]
        reweighter = MultiStateReweighter(system, options.simulation, ref.temperature_k, runs)
        mbar = {k: float(v) for k, v in reweighter.predict(values(args.target)).items()}
        base = system.with_parameters(system.parameters.with_vector(values(last)))
        single = reweight_liquid(runs[-1][0], base, values(args.target), options.simulation,
                                 ref.temperature_k)
        res = rounds[last].results[ref.slug]
        index = {str(k): i for i, k in enumerate(system.parameters.keys())}
        delta = np.array([values(args.target)[index[k]] - values(last)[index[k]]
                          for k in res.keys])
        linear = {"density": res.density.value + res.density_gradient @ delta,
                  "hvap": res.hvap.value + res.hvap_gradient @ delta}
        row = {"liquid": ref.name}
        for prop, estimate in (("density", sim.density), ("hvap", sim.hvap)):
            value, error = estimate.value, estimate.error
            row[prop] = (value, error, mbar[prop], single[prop], linear[prop])
        rows.append(row)
        d, h = row["density"], row["hvap"]
        print(f"| {ref.name} | {d[0]:.4f} ± {d[1]:.4f} | {d[2]:.4f} | {d[3]:.4f} "
              f"(Kish {single['n_eff_liquid']:.0f}) | {d[4]:.4f} | {h[0]:.3f} ± {h[1]:.3f} | "
              f"{h[2]:.3f} (Kish {mbar['n_eff_liquid']:.0f}) | {h[3]:.3f} | {h[4]:.3f} |")
    print()
    for prop, unit in (("density", "g/mL"), ("hvap", "kcal/mol")):
        for k, name in ((2, "MBAR"), (3, "exponential reweighting"), (4, "linear")):
            err = np.array([abs(r[prop][k] - r[prop][0]) for r in rows])
            z = np.array([abs(r[prop][k] - r[prop][0]) / r[prop][1] for r in rows])
            print(f"{prop} {name}: MAE vs simulated {err.mean():.4f} {unit}, median "
                  f"|error|/sigma {np.median(z):.2f}, max {z.max():.2f} ({len(rows)} liquids)")


if __name__ == "__main__":
    main()
