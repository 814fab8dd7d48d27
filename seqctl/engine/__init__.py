"""Decisions: scheduling, rendering, spam scoring, classification, and the tick workflows."""
