"""A sweep's report: results.md, results.csv and curves.png in its root.

The tables come from tools.results_table (a column per grid key, the split
each run chose on in the headers, the test split's figures apart, and a
summary over seeds), the curves from tools.plot_curves (one series per
split); tools.sweep writes them after its points end, or alone with
--report_only.
"""

import os
from typing import Optional, Sequence

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
CURVES_PNG = "curves.png"


def write_report(root: str, failures: Optional[dict[str, str]] = None,
                 fields: Sequence[str] = ()) -> list[str]:
  """Writes results.md, results.csv and curves.png for every run under `root`.

  Args:
    root: the sweep's root directory.
    failures: point name -> error line, listed under the Markdown table
      (points that failed before writing anything have no row in it).
    fields: the grid's config keys, a column each.

  Returns:
    The paths written (none if `root` holds no run yet).
  """
  # Imported here: matplotlib costs a second that --dry_run should not pay.
  from . import plot_curves, results_table, run_records
  try:
    rows = results_table.results_rows(root, fields)
  except run_records.NoRunsError:
    rows = []
  written = []
  if rows:
    markdown = results_table.format_table(rows, "markdown", fields)
    if failures:
      markdown += "\nFailed points:\n\n" + "".join(
          f"- `{name}`: {line}\n" for name, line in sorted(failures.items()))
    for name, text in ((RESULTS_MD, markdown),
                       (RESULTS_CSV, results_table.format_table(rows, "csv", fields))):
      out = os.path.join(root, name)
      with open(out, "w", encoding="utf-8", newline="") as f:
        f.write(text)
      written.append(out)
    out = os.path.join(root, CURVES_PNG)
    plot_curves.plot_runs([row["model_dir"] for row in rows], out)
    written.append(out)
  return written
