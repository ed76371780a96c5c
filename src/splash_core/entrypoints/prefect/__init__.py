"""Prefect as an entrypoint: flows, deployments and the ``splash prefect`` commands.

Importing this package does not import ``prefect``; the submodules do (``flows``, ``deploy``),
and the CLI imports them only when a ``splash prefect`` command runs.
"""
