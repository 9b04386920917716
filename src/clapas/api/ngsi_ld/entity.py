"""Entities between a client's terms and the seam's expanded normalized form (`source.py`), both ways.

`expand_entity` reads a request body in normalized or concise form (ETSI GS CIM 009 §4.5, §4.5.14: a bare value is
a Property, `{"object": ...}` a Relationship, a GeoJSON geometry a GeoProperty, ...), checks it (400 BadRequestData
with the reason) and expands type and attribute names with the request's context. `compact_entity` turns a stored
entity into the representation asked for: normalized, concise or keyValues (`simplified`), with or without system
attributes, a LanguageProperty reduced to one language with `lang`.

Public API (stable): `ATTR_TYPES`, `GEO_TYPES`, `LOCATION`, `expand_entity`, `expand_attribute`, `expand_attrs`,
`compact_entity`, `compact_attr_value`, `entity_types`, `is_uri`, `parse_time`, `utc_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clapas.api.ngsi_ld.context import NGSI_LD, Context
from clapas.api.ngsi_ld.errors import bad_request
from clapas.api.ngsi_ld.source import Entity

PROPERTY, RELATIONSHIP, GEOPROPERTY = "Property", "Relationship", "GeoProperty"
LANGUAGE, VOCAB, JSONPROP = "LanguageProperty", "VocabProperty", "JsonProperty"
LISTPROP, LISTREL = "ListProperty", "ListRelationship"
ATTR_TYPES = frozenset({PROPERTY, RELATIONSHIP, GEOPROPERTY, LANGUAGE, VOCAB, JSONPROP, LISTPROP, LISTREL})
# the member that holds an attribute's value, by type
VALUE_MEMBER = {PROPERTY: "value", GEOPROPERTY: "value", RELATIONSHIP: "object", LANGUAGE: "languageMap",
                VOCAB: "vocab", JSONPROP: "json", LISTPROP: "valueList", LISTREL: "objectList"}
_CONCISE_BY_MEMBER = {"object": RELATIONSHIP, "languageMap": LANGUAGE, "vocab": VOCAB, "json": JSONPROP,
                      "valueList": LISTPROP, "objectList": LISTREL, "value": PROPERTY}
GEO_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                       "GeometryCollection"})
# attribute members that are not sub-attributes
MEMBERS = frozenset({"type", "value", "object", "languageMap", "vocab", "json", "valueList", "objectList",
                     "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId", "lang",
                     "objectType", "deletedAt"})
SYSTEM = ("createdAt", "modifiedAt")
# the members a notification's attribute may carry besides (showChanges, §5.2.14; `matching.PREVIOUS`)
NOTIFIED_MEMBERS = frozenset({"previousValue", "previousObject", "previousLanguageMap", "previousVocab",
                              "previousJson", "previousValueList", "previousObjectList"})
LOCATION = NGSI_LD + "location"
GEO_CORE = frozenset({NGSI_LD + "location", NGSI_LD + "observationSpace", NGSI_LD + "operationSpace"})
_ENTITY_MEMBERS = frozenset({"id", "type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt"})
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_BAD_NAME = re.compile(r"[\s<>\"'=;()\[\]\\]")  # §4.6.2: characters an attribute or type name cannot hold


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(_ABSOLUTE.match(value))


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 date-time (UTC when it names no offset), or 400 BadRequestData naming `what`."""
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an ISO 8601 date-time string")
    try:
        t = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{what}: {value!r} is not an ISO 8601 date-time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def utc_text(t: datetime) -> str:
    """The seam's time format: ISO 8601 UTC ending in Z, fractional seconds only when there are some
    (`2020-08-01T12:03:00Z`, `...:00.250Z`): clients and conformance fixtures compare the strings."""
    t = t.astimezone(UTC)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if not t.microsecond:
        return base + "Z"
    if t.microsecond % 1000 == 0:
        return f"{base}.{t.microsecond // 1000:03d}Z"
    return f"{base}.{t.microsecond:06d}Z"


def _name(ctx: Context, key: str, what: str = "attribute") -> str:
    if not key or _BAD_NAME.search(key):
        raise bad_request(f"invalid {what} name {key!r}")
    return ctx.expand(key)


def _is_geometry(v: Any) -> bool:
    return isinstance(v, dict) and v.get("type") in GEO_TYPES and (
        "coordinates" in v or "geometries" in v)


def _check_geometry(v: Any, where: str) -> None:
    if not _is_geometry(v):
        raise bad_request(f"{where}: a GeoProperty's value must be a GeoJSON geometry")
    try:
        from shapely.geometry import shape

        shape(v)
    except Exception:
        raise bad_request(f"{where}: invalid GeoJSON coordinates") from None


def _attr_type(v: dict[str, Any]) -> str | None:
    t = v.get("type")
    if isinstance(t, str):
        t = t[len(NGSI_LD):] if t.startswith(NGSI_LD) else t
        if t in ATTR_TYPES:
            return t
    return None


def expand_attribute(value: Any, ctx: Context, name: str, now: str | None, *, partial: bool = False,
                     temporal: bool = False) -> Any:
    """One attribute (normalized or concise) → its expanded normalized form; a list of instances stays a list.
    `partial`: a fragment of an attribute (PATCH of one attribute): members may be missing. `temporal`: a list is
    a temporal evolution (several instances may share a datasetId)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and (
            _attr_type(v) or any(m in v for m in _CONCISE_BY_MEMBER)) for v in value):
        out = [expand_attribute(v, ctx, name, now, partial=partial) for v in value]
        ids = [a.get("datasetId") for a in out]
        if not temporal and len(set(ids)) != len(ids):
            raise bad_request(f"{name}: two instances with the same datasetId")
        return out
    if (isinstance(value, dict) and _attr_type(value) is None and "type" not in value) or (
            isinstance(value, dict) and value.get("type") in GEO_TYPES):
        member = next((m for m in _CONCISE_BY_MEMBER if m in value), None)
        if member is not None:
            value = {"type": _CONCISE_BY_MEMBER[member], **value}
        elif _is_geometry(value):
            value = {"type": GEOPROPERTY, "value": value}
        elif not partial:
            value = {"type": PROPERTY, "value": value}
    elif not isinstance(value, dict):
        if value is None:
            raise bad_request(f"{name}: null is not a value (delete the attribute instead)")
        value = {"type": PROPERTY, "value": value}
    typ = _attr_type(value)
    if typ is None and not (partial and "type" not in value):
        raise bad_request(f"{name}: unknown attribute type {value.get('type')!r}")
    out: dict[str, Any] = {}
    if typ is not None:
        out["type"] = typ
    for k, v in value.items():
        if k == "type":
            continue
        if k in ("createdAt", "modifiedAt", "deletedAt", "instanceId"):
            continue  # system attributes are the store's
        if k in MEMBERS:
            out[k] = v
        else:
            out[_name(ctx, k, "sub-attribute")] = expand_attribute(v, ctx, k, now)
    member = VALUE_MEMBER.get(typ or "")
    if member and member not in out and not partial:
        raise bad_request(f"{name}: a {typ} needs {member!r}")
    if member and member in out and out[member] is None:
        raise bad_request(f"{name}: {member} cannot be null")
    if typ == RELATIONSHIP and "object" in out:
        objs = out["object"] if isinstance(out["object"], list) else [out["object"]]
        if not objs or not all(is_uri(o) for o in objs):
            raise bad_request(f"{name}: a Relationship's object must be a URI")
    if typ == GEOPROPERTY and "value" in out:
        _check_geometry(out["value"], name)
    if typ == LANGUAGE and "languageMap" in out and not isinstance(out["languageMap"], dict):
        raise bad_request(f"{name}: languageMap must be an object of language tags")
    if typ == VOCAB and "vocab" in out:
        vs = out["vocab"]
        out["vocab"] = [ctx.expand_value(v) for v in vs] if isinstance(vs, list) else ctx.expand_value(str(vs))
    if "observedAt" in out:
        out["observedAt"] = utc_text(parse_time(out["observedAt"], f"{name}.observedAt"))
    if "datasetId" in out and not is_uri(out["datasetId"]):
        raise bad_request(f"{name}: datasetId must be a URI")
    if "unitCode" in out and not isinstance(out["unitCode"], str):
        raise bad_request(f"{name}: unitCode must be a string")
    return out


def entity_types(value: Any, ctx: Context) -> list[str]:
    types = value if isinstance(value, list) else [value]
    if not types or not all(isinstance(t, str) and t for t in types):
        raise bad_request("an entity's type must be a name or a list of names")
    return [_name(ctx, t, "type") for t in types]


def expand_attrs(payload: dict[str, Any], ctx: Context, now: str | None, *, partial: bool = False,
                 temporal: bool = False) -> Entity:
    """The attributes of a body (its entity members left out) expanded."""
    out: Entity = {}
    for k, v in payload.items():
        if k in _ENTITY_MEMBERS:
            continue
        iri = _name(ctx, k)
        attr = expand_attribute(v, ctx, k, now, partial=partial, temporal=temporal)
        if iri in GEO_CORE:
            for a in attr if isinstance(attr, list) else [attr]:
                if a.get("type") == PROPERTY and _is_geometry(a.get("value")):
                    a["type"] = GEOPROPERTY
                if a.get("type", GEOPROPERTY) != GEOPROPERTY:
                    raise bad_request(f"{k} must be a GeoProperty")
        out[iri] = attr
    return out


def expand_entity(payload: Any, ctx: Context, now: str | None = None, *, need_id: bool = True,
                  temporal: bool = False) -> Entity:
    """A request's entity → the seam's expanded form (400 BadRequestData on anything invalid)."""
    if not isinstance(payload, dict):
        raise bad_request("an entity must be a JSON object")
    eid = payload.get("id", payload.get("@id"))
    if need_id and eid is None:
        raise bad_request("an entity needs an id")
    if eid is not None and not is_uri(eid):
        raise bad_request(f"the entity id {eid!r} is not a URI")
    if "type" not in payload and "@type" not in payload:
        raise bad_request("an entity needs a type")
    types = entity_types(payload.get("type", payload.get("@type")), ctx)
    out: Entity = {"id": eid, "type": types if len(types) > 1 else types[0]}
    scope = payload.get("scope")
    if scope is not None:
        scopes = scope if isinstance(scope, list) else [scope]
        if not all(isinstance(s, str) and s.startswith("/") for s in scopes):
            raise bad_request("a scope must be a path like /Madrid/Gardens")
        out["scope"] = scopes
    out.update(expand_attrs(payload, ctx, now, temporal=temporal))
    return out


def _types(entity: Entity) -> list[str]:
    t = entity.get("type")
    return list(t) if isinstance(t, list) else [t] if t else []


def _select_lang(lmap: dict[str, Any], lang: str) -> tuple[str, Any]:
    """The language of a LanguageProperty to show for `lang` (§4.15: `*`, a list, q-weights ignored)."""
    prefs = [p.split(";")[0].strip() for p in lang.split(",") if p.strip()]
    for p in prefs:
        if p == "*" and lmap:
            k = next(iter(lmap))
            return k, lmap[k]
        if p in lmap:
            return p, lmap[p]
    if "@none" in lmap:
        return "@none", lmap["@none"]
    k = next(iter(lmap)) if lmap else ""
    return k, lmap.get(k)


def compact_attr_value(attr: dict[str, Any], ctx: Context, lang: str | None = None) -> Any:
    """An attribute's bare value (keyValues): value, object, languageMap (or the chosen language), vocab, json."""
    typ = attr.get("type", PROPERTY)
    if typ == LANGUAGE:
        lmap = attr.get("languageMap") or {}
        return _select_lang(lmap, lang)[1] if lang else {"languageMap": lmap}
    if typ == VOCAB:
        v = attr.get("vocab")
        return [ctx.compact_value(x) for x in v] if isinstance(v, list) else ctx.compact_value(v)
    if typ == RELATIONSHIP:
        return attr.get("object")
    return attr.get(VALUE_MEMBER.get(typ, "value"))


def _compact_attr(attr: dict[str, Any], ctx: Context, fmt: str, sys_attrs: bool, lang: str | None) -> Any:
    typ = attr.get("type", PROPERTY)
    out: dict[str, Any] = {}
    subs: dict[str, Any] = {}
    for k, v in attr.items():
        if k in MEMBERS or k in NOTIFIED_MEMBERS:
            if k in SYSTEM and not sys_attrs:
                continue
            out[k] = v
        else:
            subs[ctx.compact(k)] = _compact_any(v, ctx, fmt, sys_attrs, lang)
    if typ == VOCAB and "vocab" in out:
        out["vocab"] = compact_attr_value(attr, ctx)
    if typ == LANGUAGE and lang:
        tag, text = _select_lang(out.pop("languageMap", None) or {}, lang)
        out["type"] = PROPERTY
        out["value"] = text
        if tag and tag != "@none":
            out["lang"] = tag
        typ = PROPERTY
    out.update(subs)
    if fmt == "concise":
        out.pop("type", None)
        member = VALUE_MEMBER.get(typ, "value")
        if typ in (PROPERTY, GEOPROPERTY) and set(out) == {member}:
            return out[member]
        if typ not in (PROPERTY, GEOPROPERTY, RELATIONSHIP, LANGUAGE, VOCAB, JSONPROP, LISTPROP, LISTREL):
            out["type"] = typ
    return out


def _compact_any(v: Any, ctx: Context, fmt: str, sys_attrs: bool, lang: str | None) -> Any:
    if isinstance(v, list):
        return [_compact_attr(a, ctx, fmt, sys_attrs, lang) for a in v]
    return _compact_attr(v, ctx, fmt, sys_attrs, lang)


def compact_entity(entity: Entity, ctx: Context, fmt: str = "normalized", *, sys_attrs: bool = False,
                   lang: str | None = None, keep: Iterable[str] | None = None) -> dict[str, Any]:
    """A stored entity in the client's terms. `fmt`: normalized, concise or keyValues; `keep`: the expanded
    attribute IRIs to show (None: all)."""
    keep_set = set(keep) if keep is not None else None
    types = [ctx.compact(t) for t in _types(entity)]
    out: dict[str, Any] = {"id": entity["id"], "type": types[0] if len(types) == 1 else types}
    if entity.get("scope"):
        sc = entity["scope"]
        out["scope"] = sc[0] if fmt == "keyValues" and len(sc) == 1 else sc
    if sys_attrs and fmt != "keyValues":
        for k in SYSTEM:
            if k in entity:
                out[k] = entity[k]
    for iri, attr in entity.items():
        if iri in _ENTITY_MEMBERS or (keep_set is not None and iri not in keep_set):
            continue
        name = ctx.compact(iri)
        if fmt == "keyValues":
            first = attr[0] if isinstance(attr, list) else attr
            if isinstance(attr, list):
                first = next((a for a in attr if "datasetId" not in a), attr[0])
            out[name] = compact_attr_value(first, ctx, lang)
        else:
            out[name] = _compact_any(attr, ctx, fmt, sys_attrs, lang)
    return out
