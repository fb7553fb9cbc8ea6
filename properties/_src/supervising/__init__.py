"""Supervising children: each implementation checked in a process the parent watches and survives."""
