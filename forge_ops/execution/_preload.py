"""Imported once by the local executor's fork server, so that no job pays for it.

torch's optimizers import ``torch._dynamo`` the first time one is made: about 300 modules (sympy
among them), about a second on a development VM, which every Train job in a fresh process paid.
"""

import contextlib

# Without torch, or with a build whose dynamo cannot load, jobs import what they need themselves.
with contextlib.suppress(Exception):
    import torch._dynamo  # noqa: F401


def _warm_s3() -> None:
    """With an S3 store configured (``FSSPEC_S3``, see ``_store_access``), import s3fs and load
    botocore's S3 models once here, and hand every job the session holding them: a fresh
    process paid about 0.35 s for the imports and 0.7 s to read and parse the models."""
    import fsspec.config

    options = fsspec.config.conf.get("s3")
    if options is None or "session" in options:
        return
    import aiobotocore.session
    import s3fs  # noqa: F401

    session = aiobotocore.session.AioSession()
    loader = session.get_component("data_loader")
    for name in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
        with contextlib.suppress(Exception):
            loader.load_service_model("s3", name)
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        with contextlib.suppress(Exception):
            loader.load_data(name)
    options["session"] = session


with contextlib.suppress(Exception):
    _warm_s3()
