"""XMP packets -> the few properties that declare provenance.

XMP may write a property as an attribute, an element with text, or an element with
rdf:resource; all three are read. Only three properties matter here: TC260:AIGC (the GB 45438
implicit label), Iptc4xmpExt:DigitalSourceType and xmp:CreatorTool (which names generators).

Packets come from uploads, so they are parsed with defusedxml and any DTD is refused: XMP never
needs one, and entity declarations are how billion-laughs and external-entity packets attack.
"""
from __future__ import annotations

from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from pipeline.provenance.raw import Tag

TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
_RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
_WANTED = {
    f"{{{TC260_NS}}}AIGC": "TC260:AIGC",
    f"{{{IPTC_EXT_NS}}}DigitalSourceType": "Iptc4xmpExt:DigitalSourceType",
    f"{{{XMP_NS}}}CreatorTool": "xmp:CreatorTool",
}


def xmp_tags(location: str, packet: bytes) -> tuple[list[Tag], list[str]]:
    """Return (tags, errors); a packet that is not well-formed XML, or declares a DTD or entities,
    yields one error and no tags."""
    body = packet.strip(b"\x00 \t\r\n")
    if not body:
        return [], [f"XMP in {location} is empty"]
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        return [], [f"XMP in {location} refused: it declares a DTD or entities ({type(exc).__name__}), "
                    "which XMP never needs; its properties were not read"]
    except (ParseError, ValueError, LookupError) as exc:
        return [], [f"XMP in {location} is not well-formed XML: {exc}"]
    where = f"xmp ({location})"
    tags: list[Tag] = []
    for element in root.iter():
        for attr, value in element.attrib.items():
            if attr in _WANTED:
                tags.append(Tag(where, _WANTED[attr], value.strip()))
        if element.tag in _WANTED:
            value = element.get(_RDF_RESOURCE) or "".join(element.itertext()).strip()
            if value:
                tags.append(Tag(where, _WANTED[element.tag], value))
    return tags, []
