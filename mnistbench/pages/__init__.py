"""HTML pages: static, self-contained page sets that open offline from the file system.

:mod:`mnistbench.pages.shell` is what every page shares (the page template and its CSS,
escaping, plotly charts, atomic writing); each page set is its own module over plain
values (:mod:`mnistbench.pages.history`: the trends of every configuration over sweeps;
:mod:`mnistbench.pages.report`: one sweep's ``report.html``).
"""
