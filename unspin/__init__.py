"""The ``unspin`` command: one click group over the packages' own commands.

The library (``rewrite``) never imports the service or the training code; this package is the
only place that knows all three. Commands that need an extra are imported only when they run, so
a base install (``pip install unspin``) restores text, and ``unspin serve`` without the ``serve``
extra says which extra to install instead of failing on an import.
"""
