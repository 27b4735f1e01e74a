"""HTML pages: static, self-contained page sets that open offline from the file system.

:mod:`mnistbench.pages.render` is what every page shares (the jinja2 environment over
the package's ``templates/``, the inlined style and hover script, atomic writing); the
figures are :mod:`mnistbench.figures`' SVG. Each page set is its own module over plain
values (:mod:`mnistbench.pages.history`: the trends of every configuration over sweeps;
:mod:`mnistbench.pages.report`: one sweep's ``report.html``).
"""
