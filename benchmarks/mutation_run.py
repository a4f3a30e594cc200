"""``mutmut run``, with the mutants listed as equivalent set apart before any test runs.

Usage (what `make mutate` runs, from the repository's root)::

    python -m benchmarks.mutation_run [--max-children N] [MUTANT ...]

The arguments are ``mutmut run``'s. Right after mutmut writes its mutants, and before
its tests run, the mutants listed in ``benchmarks/mutation_equivalent.txt`` are marked
as skipped (:func:`benchmarks.mutation.set_apart`): an equivalent mutant survives every
test that reaches it, which made it the costliest kind to run. With mutant names given,
nothing is set apart: mutmut runs exactly those, listed or not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.mutation import EQUIVALENTS, read_equivalents, read_mutants, set_apart


def main(argv=None):
    import mutmut.__main__ as mutmut_main

    argv = list(sys.argv[1:] if argv is None else argv)
    names = [a for i, a in enumerate(argv)
             if not a.startswith("-") and (i == 0 or argv[i - 1] != "--max-children")]
    generate = mutmut_main.create_mutants

    def create_mutants(max_children):
        stats = generate(max_children)
        if not names:
            # (mutmut hides this step's output; the report counts them as equivalent)
            root = Path.cwd()
            set_apart(root, read_mutants(root), read_equivalents(EQUIVALENTS))
        return stats

    # mutmut's run calls its module's create_mutants by name: this wraps that one step.
    mutmut_main.create_mutants = create_mutants
    return mutmut_main.cli(["run", *argv], standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main())
