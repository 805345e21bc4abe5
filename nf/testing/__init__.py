"""Test support shared by every tier: tier gating, the test_run harness, lab fixtures."""
