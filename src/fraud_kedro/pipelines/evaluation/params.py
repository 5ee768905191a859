"""The ``evaluation`` and ``quality_gate`` parameters (parameters_evaluation.yml), validated by Kedro."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.parameters import Count, NonNegativeInt, NonNegativeNumber, Share, parameters


def _increasing(bands: tuple[float, ...]) -> tuple[float, ...]:
    if list(bands) != sorted(set(bands)):
        raise ValueError(f"must be strictly increasing, got {list(bands)}")
    return bands


@parameters
class EvaluationParams:
    """Test-window metrics, slices, permutation importance and the contribution summary."""

    seed: NonNegativeInt = 42
    card_precision_k: Count = 100
    # amount slices: [0, b0) [b0, b1) ... [b_last, inf)
    amount_bands: Annotated[tuple[NonNegativeNumber, ...], AfterValidator(_increasing)] = (20, 100, 250)
    permutation_rows: Count = 20_000
    permutation_repeats: Count = 3
    explain_rows: Count = 3_000


@parameters
class QualityGateParams:
    """When a new model becomes the champion (docs/training.md, "Quality gate")."""

    model_name: Annotated[str, Field(min_length=1, pattern=r"\S")] = MODEL_NAME
    min_average_precision: Share = 0.3
    min_improvement: float = 0.0
