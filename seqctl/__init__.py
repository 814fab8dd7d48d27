"""seqctl: personal sales outreach cadences from the command line."""

__version__ = "0.1.0"
