"""An OpenLineage event transformer: failures without their text (docs/deploy.md, "Lineage").

Apart from tokumei/pipeline/lineage.py because that module is imported by every Airflow process
that resolves Asset URIs and stays standard-library only; this one is loaded by the OpenLineage
client, in the process that emits, when the ``transform`` transport names it.
"""

from __future__ import annotations

from typing import Any

from openlineage.client.facet_v2 import error_message_run
from openlineage.client.transport.transform import EventTransformer

WITHHELD = "failed (error text withheld from lineage events: see the task log)"


class WithoutErrorText(EventTransformer):
    """Drops the text of a failure from OpenLineage events, keeping the fact that it failed.

    The provider puts ``str(exception)`` and the full traceback (chained exceptions included)
    into a ``FAIL`` event's ``errorMessage`` facet. tokumei's own errors name files and causes
    only, but a library's message can quote a value (``tokumei run`` drops library tracebacks
    for that reason), and a lineage server is read by more people than a task log. Configured
    as the client's ``transform`` transport around the real one.
    """

    def transform(self, event: Any) -> Any:
        facets = getattr(getattr(event, "run", None), "facets", None)
        if facets and "errorMessage" in facets:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=WITHHELD, programmingLanguage="python"
            )
        return event
