"""pyarrow, pyarrow.compute and numpy, loaded on the first use of one of their names.

Declaring the operators (names, parameters, documentation) is what a policy load needs
to check ``masking.yaml``; running one is what needs Arrow and numpy. Every command reads
the policies, few mask a table, and importing pyarrow (with numpy) costs ~0.3 s of CPU,
so the operator modules use these stand-ins instead of importing them: ``pa.array(...)``
imports pyarrow on the first call and is then an ordinary attribute read (the module's
names are copied onto the stand-in). Nothing is put in ``sys.modules`` until the library
really loads.

Type checkers see the real modules (the operator modules import these only when not
``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["np", "pa", "pc"]


class _OnFirstUse(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        # called only for names not (yet) copied here: load, copy, answer
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        module = importlib.import_module(self.__name__)
        vars(self).update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return getattr(module, attr)


pa = _OnFirstUse("pyarrow")
pc = _OnFirstUse("pyarrow.compute")
np = _OnFirstUse("numpy")
