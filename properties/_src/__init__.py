"""The harness's parts, grouped by role; the public face is ``properties``. Imports go down this list: domain, calling, drawing, judging, cases, reporting, running, supervising."""
