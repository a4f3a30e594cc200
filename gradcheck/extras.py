"""The optional dependencies and the extra that installs each.

``pip install gradcheck`` (or ``pip install .``) needs numpy alone to check a
layer. The rest is optional, imported only by the feature that uses it, and a
feature whose module is missing says which extra to install.
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "MissingExtraError", "require", "install_hint"]

#: The extra of pyproject.toml that installs each optional module.
EXTRAS = {"torch": "torch", "pandas": "report", "matplotlib": "report", "hypothesis": "strategies"}


class MissingExtraError(ModuleNotFoundError):
    """An optional module a feature needs is not installed; the message names the extra."""


def install_hint(module):
    """Return ``"pip install 'gradcheck[EXTRA]'"`` for an optional module, or None.

    Parameters
    ----------
    module : str
        A module name, possibly dotted (``"torch.nn"``); its top-level package decides.
    """
    extra = EXTRAS.get((module or "").partition(".")[0])
    return None if extra is None else f"pip install 'gradcheck[{extra}]'"


def require(module, feature):
    """Import and return ``module``, or raise :class:`MissingExtraError` naming its extra.

    Parameters
    ----------
    module : str
        One of :data:`EXTRAS`' keys.
    feature : str
        What needs it, for the message (``"torch_fn"``, ``"gradcheck report"``).

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(f"{feature} needs {module}, which is not installed: "
                                f"{install_hint(module)}", name=module) from error
