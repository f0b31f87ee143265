"""examples/vae.py runs (a few steps): it needs the `examples` extra's
scikit-learn, and matplotlib for its figure; without them it is skipped."""
import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vae.py"


def load_example():
    spec = importlib.util.spec_from_file_location("csvi_example_vae", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("eager, float32", [(False, False), (True, False), (False, True)],
                         ids=["compiled", "eager", "compiled-float32"])
def test_vae_example_runs_a_few_steps(tmp_path, capsys, eager, float32):
    pytest.importorskip("sklearn")
    figure = ""
    if not eager and not float32:
        try:
            import matplotlib  # noqa: F401
            figure = str(tmp_path / "vae.png")
        except ImportError:
            pass
    args = ["--epochs", "2", "--batch-size", "128", "--hidden-dim", "32", "--z-dim", "4",
            "--test-frequency", "1", "--figure", figure]
    args += (["--eager"] if eager else []) + (["--float32"] if float32 else [])
    example = load_example()
    built = []  # the VAE main builds: --float32 must reach each of its layers
    init = example.VAE.__init__

    def recording_init(vae, *a):
        init(vae, *a)
        built.append(vae)
    example.VAE.__init__ = recording_init
    history = example.main(args)
    layers = [m for m in built[0].modules() if type(m).__name__ == "Linear"]
    assert len(layers) == 5
    assert all(m.dtype == ("float32" if float32 else "float64") for m in layers)
    out = capsys.readouterr().out
    assert len(history["train_elbo"]) == 2 and len(history["test_elbo"]) == 2
    assert all(math.isfinite(e) and e < 0 for e in history["train_elbo"])
    assert "test ELBO" in out and "final test ELBO per image" in out
    if figure:
        assert Path(figure).stat().st_size > 1000
