"""Dataset loaders, metrics, eval suites and reports; kept runs in `evals/results/`."""

__all__: list[str] = []
