"""Inbox kinds behind one interface (see base.py)."""
