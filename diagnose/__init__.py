"""netdoctor: find where a container's packets stop, and why."""

__version__ = "0.1.0"
