"""Static checks (see issue: netdoctor checks)."""
