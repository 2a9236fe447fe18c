"""The operators' commands, one module per `platform` subcommand (`add_parser(subparsers)`; see
ops.cli): stacks, preview, up, history, scale, rollback, drift, destroy, recover, adopt."""
