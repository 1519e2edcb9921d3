"""Imported once by the local executor's fork server, so that no job pays for it.

torch's optimizers import ``torch._dynamo`` the first time one is made: about 300 modules (sympy
among them), about a second on a development VM, which every Train job in a fresh process paid.
"""

import contextlib

# Without torch, or with a build whose dynamo cannot load, jobs import what they need themselves.
with contextlib.suppress(Exception):
    import torch._dynamo  # noqa: F401
