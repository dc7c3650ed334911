"""After the tests: the largest relative difference per named tensor against transformers."""

from __future__ import annotations

from tests.golden import REPORT


def pytest_terminal_summary(terminalreporter) -> None:
    if not REPORT:
        return
    labels = sorted(REPORT)
    names = sorted({name for differences in REPORT.values() for name in differences})
    terminalreporter.write_sep("-", "largest relative difference to transformers, per tensor")
    width = max(len(name) for name in names)
    terminalreporter.write_line(f"{'tensor':<{width}}  " + "  ".join(f"{x:>16}" for x in labels))
    for name in names:
        cells = [f"{REPORT[x][name]:16.2e}" if name in REPORT[x] else f"{'-':>16}" for x in labels]
        terminalreporter.write_line(f"{name:<{width}}  " + "  ".join(cells))
    worst = "  ".join(f"{x}: {max(REPORT[x].values()):.2e}" for x in labels)
    terminalreporter.write_line(f"worst: {worst}")
