"""The XML documents of the UWS face: uws:job, uws:jobs, uws:results, uws:parameters (UWS 1.1,
namespace http://www.ivoa.net/xml/UWS/v1.0, validated against UWS-1.1.xsd in the tests) and the
VOSI availability and capabilities documents.

Built with ElementTree from plain values, so nothing a user sent can change the structure (the
serializer escapes text and attributes). Element order and nil-ness follow the schema: startTime,
endTime and destruction are always present, xsi:nil when unknown; executionDuration always has
a value; quote is given only when it can be estimated.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
VOSI_AVAILABILITY_NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
VOSI_CAPABILITIES_NS = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VODATASERVICE_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
CAESAR_NS = "urn:caesar-faas:uws"  # our jobInfo extras (the schema lets any namespace in)
VERSION = "1.1"

for _prefix, _uri in (("uws", UWS_NS), ("xlink", XLINK_NS), ("xsi", XSI_NS), ("caesar", CAESAR_NS),
                      ("vosi", VOSI_AVAILABILITY_NS), ("vosicap", VOSI_CAPABILITIES_NS)):
    ET.register_namespace(_prefix, _uri)

MEDIA_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class JobView:
    """One job as the documents show it (service.py fills it from the job record)."""

    job_id: str
    href: str
    run_id: str | None
    owner: str
    phase: str
    created: str  # ISO 8601 instants
    started: str | None
    ended: str | None
    execution_duration: int
    destruction: str | None
    quote: str | None
    parameters: Sequence[tuple[str, str]]
    results: Sequence[ResultView]
    error: ErrorView | None
    info: Sequence[tuple[str, str]]  # jobInfo extras: (name, text)


@dataclass(frozen=True)
class ResultView:
    result_id: str
    href: str
    size: int | None
    mime_type: str | None


@dataclass(frozen=True)
class ErrorView:
    type: str  # "fatal" | "transient"
    message: str


def _q(name: str, ns: str = UWS_NS) -> str:
    return f"{{{ns}}}{name}"


def _text(parent: ET.Element, name: str, value: str | None, *, nillable: bool = False) -> ET.Element:
    child = ET.SubElement(parent, _q(name))
    if value is None:
        if nillable:
            child.set(_q("nil", XSI_NS), "true")
    else:
        child.text = value
    return child


def _serialise(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _results_element(results: Iterable[ResultView]) -> ET.Element:
    element = ET.Element(_q("results"))
    for result in results:
        attrs = {"id": result.result_id, _q("type", XLINK_NS): "simple", _q("href", XLINK_NS): result.href}
        if result.size is not None:
            attrs["size"] = str(result.size)
        if result.mime_type:
            attrs["mime-type"] = result.mime_type
        ET.SubElement(element, _q("result"), attrs)
    return element


def _parameters_element(parameters: Iterable[tuple[str, str]]) -> ET.Element:
    element = ET.Element(_q("parameters"))
    for name, value in parameters:
        ET.SubElement(element, _q("parameter"), {"id": name}).text = value
    return element


def job_document(job: JobView) -> bytes:
    root = ET.Element(_q("job"), {"version": VERSION})
    _text(root, "jobId", job.job_id)
    if job.run_id:
        _text(root, "runId", job.run_id)
    _text(root, "ownerId", job.owner, nillable=True)
    _text(root, "phase", job.phase)
    if job.quote is not None:
        _text(root, "quote", job.quote)
    _text(root, "creationTime", job.created)
    _text(root, "startTime", job.started, nillable=True)
    _text(root, "endTime", job.ended, nillable=True)
    _text(root, "executionDuration", str(job.execution_duration))
    _text(root, "destruction", job.destruction, nillable=True)
    root.append(_parameters_element(job.parameters))
    root.append(_results_element(job.results))
    if job.error is not None:
        summary = ET.SubElement(root, _q("errorSummary"), {"type": job.error.type, "hasDetail": "true"})
        _text(summary, "message", job.error.message)
    if job.info:
        info = ET.SubElement(root, _q("jobInfo"))
        for name, value in job.info:
            ET.SubElement(info, _q(name, CAESAR_NS)).text = value
    return _serialise(root)


def jobs_document(jobs: Iterable[JobView]) -> bytes:
    root = ET.Element(_q("jobs"), {"version": VERSION})
    for job in jobs:
        ref = ET.SubElement(root, _q("jobref"), {"id": job.job_id, _q("type", XLINK_NS): "simple",
                                                 _q("href", XLINK_NS): job.href})
        _text(ref, "phase", job.phase)
        if job.run_id:
            _text(ref, "runId", job.run_id)
        _text(ref, "ownerId", job.owner, nillable=True)
        _text(ref, "creationTime", job.created)
    return _serialise(root)


def results_document(results: Iterable[ResultView]) -> bytes:
    return _serialise(_results_element(results))


def parameters_document(parameters: Iterable[tuple[str, str]]) -> bytes:
    return _serialise(_parameters_element(parameters))


def availability_document(available: bool, note: str) -> bytes:
    root = ET.Element(_q("availability", VOSI_AVAILABILITY_NS))
    ET.SubElement(root, _q("available", VOSI_AVAILABILITY_NS)).text = "true" if available else "false"
    ET.SubElement(root, _q("note", VOSI_AVAILABILITY_NS)).text = note
    return _serialise(root)


def capabilities_document(base_url: str, app: str, description: str) -> bytes:
    """VOSI capabilities: the two VOSI endpoints and the UWS job list of this app."""
    root = ET.Element(_q("capabilities", VOSI_CAPABILITIES_NS))
    # xsi:type names vs:ParamHTTP in an attribute value: ElementTree declares only the prefixes
    # of element and attribute names, so this one is declared by hand.
    root.set("xmlns:vs", VODATASERVICE_NS)
    entries: list[tuple[str | None, str, str]] = [
        ("ivo://ivoa.net/std/VOSI#capabilities", f"{base_url}/capabilities", ""),
        ("ivo://ivoa.net/std/VOSI#availability", f"{base_url}/availability", ""),
        (None, f"{base_url}/jobs", f"UWS 1.1 job list of the source finder {app}: {description}"),
    ]
    for standard_id, url, text in entries:
        # Capability elements are unqualified in VOSICapabilities (elementFormDefault unqualified).
        capability = ET.SubElement(root, "capability", {"standardID": standard_id} if standard_id else {})
        if text:
            ET.SubElement(capability, "description").text = text
        interface = ET.SubElement(capability, "interface", {_q("type", XSI_NS): "vs:ParamHTTP", "role": "std"})
        ET.SubElement(interface, "accessURL", {"use": "full" if standard_id else "base"}).text = url
    return _serialise(root)

