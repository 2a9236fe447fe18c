"""The SBOM of an image: ko's SPDX 2.3 document, made valid where ko's is not.

ko names each Go module's package `SPDXRef-Package-<path>-<version>`, and a main module built
from a checkout has the version `(devel)`: parentheses are not allowed in an SPDX identifier
(`SPDXRef-[A-Za-z0-9.-]+`), nor unescaped in a purl version. Both are rewritten here,
everywhere they are referenced; nothing else changes.
"""

from __future__ import annotations

import re
import urllib.parse

INVALID_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9.-]")
PURL_VERSION = re.compile(r"^(pkg:[^@]+@)([^?#]+)(.*)$")


def valid_id(spdx_id: str) -> str:
    prefix, _, rest = spdx_id.partition("SPDXRef-")
    return f"{prefix}SPDXRef-{INVALID_ID_CHARACTERS.sub('-', rest)}"


def escaped_purl(locator: str) -> str:
    match = PURL_VERSION.match(locator)
    if not match:
        return locator
    version = urllib.parse.quote(urllib.parse.unquote(match.group(2)), safe=".-_~+")
    return f"{match.group(1)}{version}{match.group(3)}"


def fix(document: dict) -> dict:
    """document with valid SPDX identifiers and escaped purls (a new dict)."""
    ids = {package["SPDXID"]: valid_id(package["SPDXID"]) for package in document.get("packages", [])}
    ids[document["SPDXID"]] = valid_id(document["SPDXID"])
    fixed = {**document, "SPDXID": ids[document["SPDXID"]]}
    fixed["documentDescribes"] = [ids.get(i, i) for i in document.get("documentDescribes", [])]
    fixed["packages"] = []
    for package in document.get("packages", []):
        refs = [{**ref, "referenceLocator": escaped_purl(ref["referenceLocator"])} if ref.get("referenceType") == "purl"
                else ref for ref in package.get("externalRefs", [])]
        fixed["packages"].append({**package, "SPDXID": ids[package["SPDXID"]],
                                  **({"externalRefs": refs} if "externalRefs" in package else {})})
    fixed["relationships"] = [
        {**r, "spdxElementId": ids.get(r["spdxElementId"], r["spdxElementId"]),
         "relatedSpdxElement": ids.get(r["relatedSpdxElement"], r["relatedSpdxElement"])}
        for r in document.get("relationships", [])]
    return fixed
