"""Python entry points: one plain function per command, called by the CLIs and by tests."""
