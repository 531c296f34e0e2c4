"""CLI commands that live in their own modules (registered in ``oncologic.cli.LAZY_COMMANDS``)."""
