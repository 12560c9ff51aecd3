"""The command line: argv to a typed command (main.py), one module per command (commands/), the
output formats and the env/exec printers."""
