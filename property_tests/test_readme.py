"""README's example runs as written and says what it shows."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_custom_layer_example_runs_and_passes():
    (block,) = [b for b in _python_blocks() if "gradcheck.check_layer(layer, x)" in b]
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    result = namespace["result"]
    assert result.passed
    assert set(result.max_rel_error) == {"x", "w"}
    # The figures the README quotes are what this example produces, to their
    # order of magnitude (the last digits move with any harmless change of
    # the probes' arithmetic; a factor of 10 does not).
    for key, quoted in re.findall(r'"(\w+)": ([0-9.]+e-\d+)', block):
        assert float(quoted) / 10 <= result.max_rel_error[key] <= float(quoted) * 10, key
