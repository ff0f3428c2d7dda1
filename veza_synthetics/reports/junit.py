"""junit.xml as CI tools read a flaky test: a failure its re-measurement did not confirm gets the testcase's
<flakyFailure> child (the Surefire convention Jenkins and GitLab render), the first measurement's verdict
as its message. pytest's junitxml writes the file; this adds to it once it is written."""
from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405  # only the JUnit file pytest writes for this run is parsed
from pathlib import Path

FLAKY_PROPERTY = "flaky_first_attempt"  # set by fixtures.report_check on a flaky check's testcase
TRAILING = ("system-out", "system-err")  # Surefire's testcase ends with these, after any flakyFailure


def mark_flaky(path: Path) -> int:
    """Give every testcase carrying the flaky property its <flakyFailure>; how many were marked."""
    tree = ET.parse(path)  # nosec B314  # the JUnit file pytest has just written for this run, not outside input
    marked = 0
    for case in tree.iter("testcase"):
        first = [p.get("value", "") for p in case.iter("property") if p.get("name") == FLAKY_PROPERTY]
        if not first or case.find("flakyFailure") is not None:
            continue
        flaky = ET.Element("flakyFailure", message=first[0][:500], type="unconfirmed failure")
        ET.SubElement(flaky, "stackTrace").text = first[0]
        tail = [i for i, child in enumerate(case) if child.tag in TRAILING]
        case.insert(tail[0] if tail else len(case), flaky)
        marked += 1
    if marked:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return marked
