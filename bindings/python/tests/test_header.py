"""The ctypes declarations and status numbers of ``_ffi`` against include/gemini_rotator.h.

The header is the ABI's one source of truth; this test reads it, derives the ctypes type of
every return value and parameter of every function, and requires ``_ffi.SIGNATURES`` to say
exactly that, and ``_ffi``'s ``GR_*`` numbers to be the header's enum. A function added to the
header without a declaration here, or a declaration that drifted, fails with its name.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any, Dict, List, Tuple

from gemini_rotator import _ffi
from gr_emulator import REPO

HEADER = (REPO / "include" / "gemini_rotator.h").read_text()

# Scalars and the library's own types, by their C spelling.
SCALARS: Dict[str, Any] = {
    "uint8_t": ctypes.c_uint8,
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "size_t": ctypes.c_size_t,
    "gr_status": _ffi.gr_status,
    "gr_log_fn": _ffi.LogFn,
}
STRUCTS: Dict[str, Any] = {
    "gr_pool": _ffi.gr_pool,
    "gr_error": _ffi.gr_error,
    "gr_response": _ffi.gr_response,
    "gr_cancel": _ffi.gr_cancel,
    "gr_stream": _ffi.gr_stream,
}


def without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def prototypes() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, parameter types), as the header spells them (names dropped)."""
    found: Dict[str, Tuple[str, List[str]]] = {}
    pattern = r"^([A-Za-z_][\w \*]*?)\s*\b(gr_\w+)\(([^)]*)\);"
    for ret, name, params in re.findall(pattern, without_comments(HEADER), flags=re.M):
        types = []
        for param in params.split(","):
            param = " ".join(param.split())
            if param and param != "void":
                # Drop the parameter's name: the last identifier.
                types.append(re.sub(r"\s*\b\w+$", "", param))
        found[name] = (" ".join(ret.split()), types)
    return found


def ctype(c_type: str, *, result: bool = False, with_length: bool = False) -> Any:
    """The ctypes type that the binding's rules give a C type."""
    spelled = c_type.replace("const ", "").replace(" *", "*").strip()
    stars = len(spelled) - len(spelled.rstrip("*"))
    base = spelled.rstrip("*")
    if base == "void":
        return None if stars == 0 else ctypes.c_void_p
    if base == "char":
        if stars == 2:  # a string the library hands out: kept as a pointer for gr_free
            return ctypes.POINTER(_ffi.OwnedStr)
        if not c_type.startswith("const "):  # a library string handed back (gr_free)
            return _ffi.OwnedStr
        # A returned string with a length out-param is bytes: a pointer read with
        # string_at(ptr, len). Otherwise a NUL-terminated string ctypes copies.
        return ctypes.c_void_p if result and with_length else ctypes.c_char_p
    typ = STRUCTS.get(base) or SCALARS[base]
    for _ in range(stars):
        typ = ctypes.POINTER(typ)
    return typ


def expected_signatures() -> Dict[str, Tuple[Any, Tuple[Any, ...]]]:
    expected = {}
    for name, (ret, params) in prototypes().items():
        with_length = "size_t *" in params
        expected[name] = (
            ctype(ret, result=True, with_length=with_length),
            tuple(ctype(p) for p in params),
        )
    return expected


def test_the_header_parses_into_every_function():
    names = set(prototypes())
    assert len(names) >= 20, names
    assert {"gr_generate", "gr_response_body", "gr_status_name"} <= names


def test_every_function_is_declared_exactly_as_the_header_says():
    expected = expected_signatures()
    assert sorted(_ffi.SIGNATURES) == sorted(expected), "functions declared vs in the header"
    for name, want in expected.items():
        got = _ffi.SIGNATURES[name]
        assert got == want, f"{name}: declared {got}, the header says {want}"


def test_the_loaded_library_uses_those_declarations():
    for name, (restype, argtypes) in _ffi.SIGNATURES.items():
        function = getattr(_ffi.lib, name)
        assert function.restype == restype, name
        assert tuple(function.argtypes) == argtypes, name


def header_statuses() -> Dict[str, int]:
    body = re.search(r"typedef enum \{(.*?)\} gr_status;", without_comments(HEADER), flags=re.S)
    assert body, "no gr_status enum in the header"
    return {name: int(value) for name, value in re.findall(r"(GR_\w+) = (\d+)", body.group(1))}


def test_status_numbers_are_the_headers():
    statuses = header_statuses()
    assert len(statuses) >= 13 and statuses["GR_OK"] == 0
    declared = {
        name: value for name, value in vars(_ffi).items() if re.fullmatch(r"GR_[A-Z0-9_]+", name)
    }
    assert declared == statuses


def test_status_names_come_from_the_library():
    for name, value in header_statuses().items():
        assert _ffi.status_name(value) == name
    assert _ffi.status_name(12345) == "GR_UNKNOWN_STATUS"


def test_the_log_callback_type_is_the_headers():
    match = re.search(r"typedef (\w+) \(\*gr_log_fn\)\(([^)]*)\);", without_comments(HEADER))
    assert match, "no gr_log_fn typedef in the header"
    ret, params = match.groups()
    # Drop each parameter's name, as for functions.
    types = [re.sub(r"\s*\b\w+$", "", " ".join(p.split())) for p in params.split(",")]
    assert _ffi.LogFn._restype_ is ctype(ret)
    assert tuple(_ffi.LogFn._argtypes_) == tuple(ctype(t) for t in types)
