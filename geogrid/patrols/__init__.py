"""Supervisors' domain: patrol track import and cleaning, coverage, patrol rules."""
