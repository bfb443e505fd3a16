"""Capture at the edges: the only packet-sending and packet-capturing code."""
