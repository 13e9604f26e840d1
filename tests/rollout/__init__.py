"""Tests of the guarded rollout (a package: its module names stay distinct from other test dirs)."""
