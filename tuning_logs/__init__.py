"""Shipped tuning logs, one directory per target and device class (see README.md here)."""
