"""One module per `platform` subcommand; each has `add_parser(subparsers)` (see ops.cli)."""
