"""Technician and operator command lines: the ``fieldpos`` command, provisioning, broker config."""
