"""One module per command group: parse, call the engine, print."""
