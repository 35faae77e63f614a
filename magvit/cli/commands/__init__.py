"""One module per `magvit` sub-command; each defines `register(subparsers)`."""
