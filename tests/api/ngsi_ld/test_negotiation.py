"""Accept / Content-Type / Link rules (ETSI GS CIM 009 §6.3.4–6.3.5), on the functions themselves."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.errors import NgsiError


def request(**headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


@pytest.mark.parametrize(("accept", "geo", "expected"), [
    ("", False, neg.JSON), ("*/*", True, neg.JSON), ("application/ld+json", False, neg.LD_JSON),
    ("application/ld+json, application/json", False, neg.JSON),
    ("application/json;q=0.5, application/ld+json", False, neg.LD_JSON),
    ("application/geo+json", True, neg.GEO_JSON), ("text/html, application/*;q=0.2", False, neg.JSON),
    ("application/json;q=0, application/ld+json;q=0.1", False, neg.LD_JSON),
])
def test_accepted(accept: str, geo: bool, expected: str) -> None:
    assert neg.accepted(request(accept=accept) if accept else request(), allow_geo=geo) == expected


@pytest.mark.parametrize(("accept", "geo"), [("application/xml", True), ("application/geo+json", False),
                                             ("application/json;q=0", False), ("text/*", True)])
def test_not_acceptable(accept: str, geo: bool) -> None:
    with pytest.raises(NgsiError) as e:
        neg.accepted(request(accept=accept), allow_geo=geo)
    assert e.value.status == 406


def test_body_media() -> None:
    assert neg.body_media(request(content_type="application/json; charset=utf-8")) == neg.JSON
    assert neg.body_media(request(content_type="application/ld+json")) == neg.LD_JSON
    assert neg.body_media(request(content_type="application/merge-patch+json"), patch=True) == neg.JSON
    for ctype in ("application/xml", "", "text/plain"):
        with pytest.raises(NgsiError) as e:
            neg.body_media(request(content_type=ctype) if ctype else request())
        assert e.value.status == 415
    with pytest.raises(NgsiError):
        neg.body_media(request(content_type="application/merge-patch+json"))


def test_link_header() -> None:
    rel = 'rel="http://www.w3.org/ns/json-ld#context"'
    assert neg.link_context_url(request(link=f'<http://a/ctx.jsonld>; {rel}; type="application/ld+json"')) == \
        "http://a/ctx.jsonld"
    assert neg.link_context_url(request(link='<http://a/x>; rel="next"')) is None
    assert neg.link_context_url(request()) is None
    with pytest.raises(NgsiError) as e:
        neg.link_context_url(request(link=f"<http://a/1>; {rel}, <http://a/2>; {rel}"))
    assert e.value.kind == "BadRequestData"
