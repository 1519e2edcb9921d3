"""The cluster tests' fixtures live in ``cluster_fixtures`` (an importable name: tests import its
helpers, and ``conftest`` is taken by tests/conftest.py)."""

from cluster_fixtures import cli_config, moto_s3, ray_cluster

__all__ = ["cli_config", "moto_s3", "ray_cluster"]
