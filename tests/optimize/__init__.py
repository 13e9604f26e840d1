"""Tests of the optimization round (a package: its module names stay distinct from other test dirs)."""
