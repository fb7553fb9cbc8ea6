"""Reporting: the counterexample a person reads, and the JSON and JUnit XML files tools read."""
