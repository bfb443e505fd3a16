"""Runbook pages, one per check ID, shipped as package data."""
