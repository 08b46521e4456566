"""Research tools: probes, baselines kept only to compare with, GPU transfer recipes and scans.

Not part of the installed package (``pyproject.toml`` lists only ``unspin``, ``rewrite``,
``training``, ``service`` and ``seeds``): run them from a checkout, ``python -m research.<tool>``.
What each one measured, and where its figures are: ``research/README.md``.
"""
