"""Dotted-key access to an event (a dict of dicts), as libbeat's ``mapstr``.

``get(ev, "a.b.c")`` walks nested mappings; a key that holds a literal dot
at the top (``{"a.b": 1}``) is found too. ``put`` creates the intermediate
mappings (a non-mapping value in the way is replaced, as ``MapStr.Put``
does). ``delete`` removes the key and leaves its (possibly empty) parents.
"""
from __future__ import annotations

MISSING = object()


def get(ev: dict, key: str, default=MISSING):
    if key in ev:
        return ev[key]
    cur = ev
    for part in key.split("."):
        if type(cur) is not dict:
            return default
        cur = cur.get(part, MISSING)
        if cur is MISSING:
            return default
    return cur


def has(ev: dict, key: str) -> bool:
    return get(ev, key) is not MISSING


def put(ev: dict, key: str, value) -> None:
    parts = key.split(".")
    cur = ev
    for part in parts[:-1]:
        nxt = cur.get(part)
        if type(nxt) is not dict:
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def delete(ev: dict, key: str) -> bool:
    """True when the key was there."""
    if key in ev:
        del ev[key]
        return True
    parts = key.split(".")
    cur = ev
    for part in parts[:-1]:
        cur = cur.get(part)
        if type(cur) is not dict:
            return False
    return cur.pop(parts[-1], MISSING) is not MISSING


def deep_copy(value):
    if type(value) is dict:
        return {k: deep_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [deep_copy(v) for v in value]
    return value


def deep_update(dst: dict, src: dict, overwrite: bool = True) -> None:
    """Merge ``src`` into ``dst`` recursively (``MapStr.DeepUpdate``)."""
    for k, v in src.items():
        cur = dst.get(k, MISSING)
        if type(cur) is dict and type(v) is dict:
            deep_update(cur, v, overwrite)
        elif cur is MISSING or overwrite:
            dst[k] = deep_copy(v)


def expand(mapping: dict) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``, recursively (configuration values)."""
    out: dict = {}
    for k, v in mapping.items():
        v = expand(v) if type(v) is dict else v
        parts = str(k).split(".")
        cur = out
        for p in parts[:-1]:
            nxt = cur.get(p)
            if type(nxt) is not dict:
                nxt = cur[p] = {}
            cur = nxt
        last = parts[-1]
        if type(cur.get(last)) is dict and type(v) is dict:
            deep_update(cur[last], v)
        else:
            cur[last] = v
    return out


def flatten(mapping: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (the configuration loader expands
    dotted keys, as go-ucfg does; field names in conditions and mappings are
    read back dotted)."""
    out: dict = {}
    for k, v in mapping.items():
        key = "%s%s" % (prefix, k)
        if type(v) is dict and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def add_tags(ev: dict, target: str, tags: list) -> None:
    """Append ``tags`` to the list at ``target`` (created), without duplicates."""
    have = get(ev, target, None)
    if have is None:
        have = []
    elif not isinstance(have, list):
        have = [have]
    out = list(have)
    for t in tags:
        if t not in out:
            out.append(t)
    put(ev, target, out)
