"""Built-in demonstration strategies and baselines, one file each (`sdbench.strategies`).

They register through the entry-point group `sdbench.strategies` in sdbench's pyproject.toml,
exactly like third-party plugins, and load lazily: `sdbench.strategy.STRATEGIES.get("grpo")`.
"""

__all__: list[str] = []
