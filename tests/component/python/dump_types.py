"""Prints the full type of a component's imports and exports, as wasmtime sees them, in a
WIT-like text: every exported type, resource and function signature, with the record fields,
variant cases, enum names, options and results spelled out.

`jco wit` prints only the world (which interfaces are imported and exported); this dump is the
other half of the drift check: a changed field, case or signature changes the text.

    python dump_types.py <component.wasm>
"""

from __future__ import annotations

import sys
from typing import Any

from wasmtime import Engine
from wasmtime.component import (
    Bool, BorrowType, Char, Component, ComponentInstanceType, EnumType, F32, F64, FlagsType,
    FuncType, ListType, OptionType, OwnType, RecordType, ResourceType, ResultType, S8, S16, S32,
    S64, String, TupleType, U8, U16, U32, U64, VariantType,
)

PRIMITIVES = {
    Bool: "bool", S8: "s8", S16: "s16", S32: "s32", S64: "s64", U8: "u8", U16: "u16",
    U32: "u32", U64: "u64", F32: "f32", F64: "f64", Char: "char", String: "string",
}


class Printer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Named types of the interface being printed: (name, type), matched by equality.
        self.named: list[tuple[str, Any]] = []
        self.resources: list[tuple[str, ResourceType]] = []

    def name_of(self, ty: Any) -> str | None:
        for name, t in self.named:
            if type(t) is type(ty) and t == ty:
                return name
        return None

    def resource(self, rt: ResourceType) -> str:
        for name, r in self.resources:
            if r == rt:
                return name
        return "<resource>"

    def val(self, ty: Any, top: bool = False) -> str:
        """A type reference: the name when the interface names it, else its structure."""
        for cls, name in PRIMITIVES.items():
            if type(ty) is cls:
                return name
        if not top:
            name = self.name_of(ty)
            if name is not None:
                return name
        if isinstance(ty, ListType):
            return f"list<{self.val(ty.element)}>"
        if isinstance(ty, OptionType):
            return f"option<{self.val(ty.payload)}>"
        if isinstance(ty, ResultType):
            ok = "_" if ty.ok is None else self.val(ty.ok)
            err = "_" if ty.err is None else self.val(ty.err)
            return f"result<{ok}, {err}>"
        if isinstance(ty, TupleType):
            return "tuple<" + ", ".join(self.val(t) for t in ty.elements) + ">"
        if isinstance(ty, OwnType):
            return f"own<{self.resource(ty.ty)}>"
        if isinstance(ty, BorrowType):
            return f"borrow<{self.resource(ty.ty)}>"
        if isinstance(ty, RecordType):
            return "record { " + ", ".join(f"{n}: {self.val(t)}" for n, t in ty.fields) + " }"
        if isinstance(ty, VariantType):
            cases = [n if t is None else f"{n}({self.val(t)})" for n, t in ty.cases]
            return "variant { " + ", ".join(cases) + " }"
        if isinstance(ty, EnumType):
            return "enum { " + ", ".join(ty.names) + " }"
        if isinstance(ty, FlagsType):
            return "flags { " + ", ".join(ty.names) + " }"
        raise TypeError(f"cannot print {ty!r}")

    def func(self, name: str, ft: FuncType) -> str:
        params = ", ".join(f"{n}: {self.val(t)}" for n, t in ft.params)
        res = "" if ft.result is None else f" -> {self.val(ft.result)}"
        return f"{name}: func({params}){res};"

    def instance(self, it: ComponentInstanceType) -> list[str]:
        items = [(n, e.ty) for n, e in it.exports(self.engine).items()]
        self.named = [(n, t) for n, t in items if not isinstance(t, (FuncType, ResourceType))]
        self.resources = [(n, t) for n, t in items if isinstance(t, ResourceType)]
        lines = []
        for n, t in items:
            if isinstance(t, ResourceType):
                lines.append(f"resource {n};")
            elif isinstance(t, FuncType):
                lines.append(self.func(n, t))
            else:
                lines.append(f"type {n} = {self.val(t, top=True)};")
        return lines


def dump(path: str) -> str:
    engine = Engine()
    ct = Component.from_file(engine, path).type
    p = Printer(engine)
    out = []
    for kind, items in (("import", ct.imports(engine)), ("export", ct.exports(engine))):
        for name, ext in items.items():
            ty = ext.ty
            if isinstance(ty, ComponentInstanceType):
                out.append(f"{kind} {name} {{")
                out.extend(f"  {line}" for line in p.instance(ty))
                out.append("}")
            else:
                out.append(f"{kind} {name}: {type(ty).__name__}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dump(sys.argv[1]))
