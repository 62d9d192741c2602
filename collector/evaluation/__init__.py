"""Evaluation on stored data: savings scans, alert rounds, notice delivery and their schedule."""
