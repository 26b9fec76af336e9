"""The pydantic bases every sdbench data model extends: one definition of "strict" and "open".

    from sdbench.pydantic_base import StrictModel, OpenModel, FrozenModel

StrictModel: unknown keys are errors and no number may be inf/NaN (records, leaderboard files, the
run configuration); FrozenModel: the same, immutable (configs: hashable, safe to share between
cells); OpenModel: unknown keys are kept (provenance grows over time: plugin fields, sandbox layers).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FrozenModel(StrictModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class OpenModel(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
