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
_USERINFO = re.compile(r"(?<=://)[^/@?#]*@")


def redact(uri: str) -> str:
    """``uri`` with user info and the values of non-harmless query options replaced by ``***``."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return _USERINFO.sub("***@", uri.split("?", 1)[0])
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{quote(name, safe='')}={quote(value, safe=':,') if name.lower() in HARMLESS_OPTIONS else '***'}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
