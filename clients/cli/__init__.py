"""The `croupier` command: one module per command group (`ope`, `export`), registered on the app in `app`."""
