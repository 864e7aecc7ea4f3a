"""One module per ``semprobe`` subcommand; each imports its heavy dependencies lazily."""
