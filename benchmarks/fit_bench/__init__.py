"""The parts of ``benchmarks/bench_fit.py`` (fitting engine vs ForceBalance): the problem,
the ffparam and ForceBalance sides, the OpenMM evaluator and the report."""
