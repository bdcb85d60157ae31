"""Connection URIs without their secrets, safe for logs, run records and reports.

User info (``user:pass@``) becomes ``***@`` and the value of every query
option that is not known to be harmless becomes ``***``: secret-bearing
options (``authMechanismProperties=AWS_SESSION_TOKEN:…``,
``tlsCertificateKeyFilePassword``, a Redis ``password``) are many, and an
unknown option is treated as a secret rather than risk printing one.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

# Options whose values say how to connect, never who may: shown as they are.
HARMLESS_OPTIONS = {
    name.lower()
    for name in (
        "appName", "authMechanism", "authSource", "compressors", "connectTimeoutMS", "directConnection",
        "heartbeatFrequencyMS", "journal", "loadBalanced", "localThresholdMS", "maxConnecting", "maxIdleTimeMS",
        "maxPoolSize", "maxStalenessSeconds", "minPoolSize", "readConcernLevel", "readPreference",
        "readPreferenceTags", "replicaSet", "retryReads", "retryWrites", "serverMonitoringMode",
        "serverSelectionTimeoutMS", "socketTimeoutMS", "srvMaxHosts", "srvServiceName", "ssl", "timeoutMS", "tls",
        "tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames", "tlsDisableOCSPEndpointCheck", "tlsInsecure",
        "uuidRepresentation", "w", "waitQueueTimeoutMS", "wTimeoutMS", "zlibCompressionLevel",
        "db", "protocol", "health_check_interval", "socket_timeout", "socket_connect_timeout",
    )
}  # fmt: skip
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact(text: str) -> str:
    """``text`` (a URI, or a message quoting URIs) with user info and non-harmless option values as ``***``.

    The user info is everything up to the last ``@``: a password may hold ``#``, ``?`` or ``/``
    unescaped (pymongo takes ``#``), which a generic URL parser reads as the start of the fragment,
    the query or the path, and would print the rest of the password. An ``@`` in an option value
    hides the host too: more hidden, never less.
    """
    if "://" not in text:
        return text
    return _URI.sub(lambda found: _redact_uri(found.group(0)), text)


def _redact_uri(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    _, at, rest = rest.rpartition("@")
    prefix = f"{scheme}://***@" if at else f"{scheme}://"
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:
        return prefix + rest.split("?", 1)[0].split("#", 1)[0]
    query = "&".join(
        f"{quote(name, safe='')}={quote(value, safe=':,') if name.lower() in HARMLESS_OPTIONS else '***'}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return prefix + urlunsplit(("", parts.netloc, parts.path, query, ""))[2:]
