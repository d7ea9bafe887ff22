"""The `croupier` command: one module per command group (`get`; `runtime_calls`: decide and reward; `ope`;
`export`), registered on the app in `app`."""
