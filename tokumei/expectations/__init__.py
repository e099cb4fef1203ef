"""tokumei expectations: every output is proven by a GX suite before it is published.

``specs`` (declarative, no GX import) → ``runner.build_expectations`` (GX suite) →
``runner.validate_outputs`` (checkpoints + leak-free Data Docs). ``custom`` holds the custom GX
expectations (forbidden columns, k over persons, suppression budget); ``patterns`` the PII
regexes. GX (~9 s to import) is only imported when validation actually runs.
"""
