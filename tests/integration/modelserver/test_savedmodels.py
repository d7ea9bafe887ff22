"""The test-model writer as the demo uses it (in-process: TensorFlow writes real SavedModels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from croupier.modelserver.savedmodels import expected_scores, main


def test_write_versions_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "ranker"
    assert main([str(base), "1"]) == 0
    assert capsys.readouterr().out.strip() == str(base / "1")
    assert main([str(base), "2", "--broken"]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no staging folder left behind
    function = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
    context, arms = np.ones((1, 4), np.float32), np.ones((1, 3, 4), np.float32)
    np.testing.assert_allclose(
        function(context=context, arms=arms)["scores"].numpy(), expected_scores(1, context, arms), rtol=1e-6
    )
    with pytest.raises(SystemExit):
        main([str(base), "1"])  # a version folder is immutable once written
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(base), "3", "--error-fraction=2"])
    assert "error_fraction must be within [0, 1]" in capsys.readouterr().err
    assert not (base / "3").exists()
