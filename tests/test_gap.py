"""The gap to the optimum: positive means worse, for a loss as for an accuracy."""

from __future__ import annotations

from bert.workflow.gap import gap, higher_is_better


def test_worse_than_the_optimum_is_a_positive_gap():
    assert gap("test_mlm_loss", 1.25, 1.0) == 0.25  # a higher loss is worse
    assert gap("nsp_loss", 0.5, 0.75) == -0.25  # below the optimum: noise of a finite set
    assert gap("test_nsp_accuracy", 0.75, 1.0) == 0.25  # a lower accuracy is worse
    assert higher_is_better("mlm_accuracy") and not higher_is_better("mlm_loss")
