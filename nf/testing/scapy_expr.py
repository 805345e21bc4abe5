"""Frames written as scapy expressions in a case file, evaluated without running Python.

    frame("Ether(src=rt0.mac, dst=rt0.dut_mac)/IP(src=rt0.ip4, dst='10.9.1.1', ttl=1)/UDP()/('x'*20)",
          names={"rt0": port_vars})
    check("Ether()/IP()/os.system('x')")     # ExprError: name 'os' is not allowed ...

A case file is data, and a test runner as root must not execute what a data file says, so the
expression is parsed with Python's grammar (ast, mode "eval") and interpreted here node by node.
Nothing reaches eval(), builtins, imports, attributes of arbitrary objects or functions other than
scapy's protocol layers. What may appear:

- constants: strings, bytes, numbers, True / False / None; lists and tuples of allowed values;
- calls of scapy layer classes only (``Ether``, ``Dot1Q``, ``IP``, ``IPv6``, ``TCP``, ``UDP``,
  ``ICMP``, ``ICMPv6EchoRequest``, ``ARP``, ``Raw``, ... every Packet class of scapy's l2, inet
  and inet6 modules), with positional or ``name=value`` arguments; no ``*args`` / ``**kw``;
- ``/`` (stack layers), ``*`` (repeat a string or bytes, at most 65535 long), ``+`` (join two
  strings, bytes or numbers), unary ``-``;
- the names the caller gives (the lab's ports: ``rt0.mac``), attributes of those only, from the
  port's public list, and ``ports["name-with-dash"]`` for ports whose names are no identifiers.
"""
from __future__ import annotations

import ast
from typing import Any

MAX_LEN = 4096          # characters of one expression
MAX_NODES = 400
MAX_BYTES = 65535       # of a repeated string and of the frame


class ExprError(ValueError):
    """An expression outside the allowed subset, or one scapy cannot build."""


class Vars:
    """A read-only bag of named values an expression may read as ``name.attr``."""

    def __init__(self, what: str, values: dict[str, Any]):
        self._what, self._values = what, dict(values)

    def get(self, attr: str) -> Any:
        if attr not in self._values:
            raise ExprError(f"{self._what} has no {attr!r} (it has: {', '.join(self._values)})")
        return self._values[attr]


class Mapping:
    """``ports["p-1"]``: a read-only dict of Vars, subscripted by a string constant."""

    def __init__(self, what: str, items: dict[str, Vars]):
        self._what, self._items = what, dict(items)

    def get(self, key: Any) -> Vars:
        if not isinstance(key, str) or key not in self._items:
            raise ExprError(f"{self._what} has no {key!r} (there are: {', '.join(self._items)})")
        return self._items[key]


_LAYERS: dict[str, type] | None = None


def layers() -> dict[str, type]:
    """Name -> class of every scapy Packet class in scapy.layers.l2 / inet / inet6 and Raw,
    Padding, NoPayload-free (built once)."""
    global _LAYERS
    if _LAYERS is None:
        from scapy.layers import inet, inet6, l2
        from scapy.packet import Packet, Padding, Raw
        out = {"Raw": Raw, "Padding": Padding}
        for mod in (l2, inet, inet6):
            for n, v in vars(mod).items():
                if isinstance(v, type) and issubclass(v, Packet) and v.__module__ == mod.__name__ \
                        and not n.startswith("_"):
                    out[n] = v
        _LAYERS = out
    return _LAYERS


def _parse(text: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ExprError(f"a scapy expression is a string, not {type(text).__name__}")
    if len(text) > MAX_LEN:
        raise ExprError(f"expression longer than {MAX_LEN} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"not an expression: {e.msg} at column {e.offset}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"expression too large (more than {MAX_NODES} syntax nodes)")
    return tree


class _Eval:
    def __init__(self, names: dict[str, Any], static: bool):
        self.names = names
        self.static = static        # check only: names given by the caller are not resolved

    def fail(self, node: ast.AST, why: str):
        raise ExprError(f"{why} (column {getattr(node, 'col_offset', 0) + 1})")

    def run(self, node: ast.AST) -> Any:
        m = getattr(self, f"_{type(node).__name__}", None)
        if m is None:
            self.fail(node, f"{type(node).__name__.lower()} is not allowed in a frame expression")
        return m(node)

    def _Expression(self, n):
        return self.run(n.body)

    def _Constant(self, n):
        if isinstance(n.value, (str, bytes, int, float, bool, type(None))):
            return n.value
        self.fail(n, f"constant {n.value!r} is not allowed")

    def _List(self, n):
        return [self.run(e) for e in n.elts]

    def _Tuple(self, n):
        return tuple(self.run(e) for e in n.elts)

    def _Name(self, n):
        if n.id in self.names:
            return None if self.static else self.names[n.id]
        if n.id in layers():
            return layers()[n.id]
        self.fail(n, f"name {n.id!r} is not allowed: use scapy layers"
                  + (f" or {', '.join(sorted(self.names))}" if self.names else ""))

    def _Attribute(self, n):
        if self.static:
            if isinstance(n.value, ast.Name) and n.value.id not in self.names:
                self._Name(n.value)               # an unknown name: say so (not "attribute")
            ok = isinstance(n.value, ast.Subscript) or (isinstance(n.value, ast.Name)
                                                        and n.value.id in self.names)
            if not ok:
                self.fail(n, f"attribute .{n.attr} is not allowed here (only of "
                             f"{', '.join(sorted(self.names)) or 'the given names'})")
            self.run(n.value)
            return None
        base = self.run(n.value)
        if not isinstance(base, Vars):
            self.fail(n, f"attribute .{n.attr} is not allowed here")
        return base.get(n.attr)

    def _Subscript(self, n):
        base = self.run(n.value)
        key = self.run(n.slice)
        if self.static:
            return None
        if not isinstance(base, Mapping):
            self.fail(n, "subscripts only of the given names (ports[\"name\"])")
        return base.get(key)

    def _UnaryOp(self, n):
        v = self.run(n.operand)
        if isinstance(n.op, ast.USub) and (self.static or isinstance(v, (int, float))):
            return None if self.static else -v
        self.fail(n, "only unary minus of a number")

    def _BinOp(self, n):
        a, b = self.run(n.left), self.run(n.right)
        if self.static:
            if not isinstance(n.op, (ast.Div, ast.Mult, ast.Add)):
                self.fail(n, f"operator {type(n.op).__name__} is not allowed (use / * +)")
            return None
        from scapy.packet import Packet
        if isinstance(n.op, ast.Div):
            if isinstance(a, Packet) and isinstance(b, (Packet, bytes, str)):
                return a / b
            self.fail(n, f"'/' stacks layers: {type(a).__name__} / {type(b).__name__}")
        if isinstance(n.op, ast.Mult):
            seq, k = (a, b) if isinstance(a, (str, bytes)) else (b, a)
            if isinstance(seq, (str, bytes)) and isinstance(k, int) and not isinstance(k, bool):
                if len(seq) * max(k, 0) > MAX_BYTES:
                    self.fail(n, f"repeated string longer than {MAX_BYTES}")
                return seq * k
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
                if abs(a * b) > 1 << 64:
                    self.fail(n, "number too large")
                return a * b
            self.fail(n, "'*' repeats a string or bytes, or multiplies numbers")
        if isinstance(n.op, ast.Add):
            if type(a) is type(b) and isinstance(a, (str, bytes, int, float)):
                r = a + b
                if isinstance(r, (str, bytes)) and len(r) > MAX_BYTES:
                    self.fail(n, f"string longer than {MAX_BYTES}")
                return r
            self.fail(n, f"'+' joins two strings, two bytes or two numbers, not "
                         f"{type(a).__name__} + {type(b).__name__}")
        self.fail(n, f"operator {type(n.op).__name__} is not allowed (use / * +)")

    def _Call(self, n):
        if not isinstance(n.func, ast.Name) or n.func.id not in layers():
            what = n.func.id if isinstance(n.func, ast.Name) else ast.unparse(n.func)
            self.fail(n, f"only scapy layers may be called, not {what!r}")
        cls = layers()[n.func.id]
        args = []
        for a in n.args:
            if isinstance(a, ast.Starred):
                self.fail(a, "*args is not allowed")
            args.append(self.run(a))
        kw = {}
        for k in n.keywords:
            if k.arg is None:
                self.fail(k.value, "**kwargs is not allowed")
            kw[k.arg] = self.run(k.value)
        if self.static:
            names = {f.name for f in cls.fields_desc}
            bad = [k for k in kw if k not in names]
            if bad:
                self.fail(n, f"{cls.__name__} has no field {bad[0]!r} (fields: {', '.join(sorted(names))})")
            return None
        try:
            return cls(*args, **kw)
        except Exception as e:  # noqa: BLE001 - scapy's own error, reported with the layer
            self.fail(n, f"{cls.__name__}(...): {e}")


def check(text: str, names: tuple[str, ...] | dict = ()) -> None:
    """Raise ExprError if ``text`` leaves the allowed subset (nothing is built): for validating a
    case file before any lab exists. ``names`` are the variable names the frame may use."""
    _Eval(dict.fromkeys(names), static=True).run(_parse(text))


def frame(text: str, names: dict[str, Any] | None = None) -> bytes:
    """Build the frame an expression describes; ExprError names what is not allowed."""
    from scapy.packet import Packet
    v = _Eval(names or {}, static=False).run(_parse(text))
    if isinstance(v, Packet):
        try:
            data = bytes(v)
        except Exception as e:  # noqa: BLE001
            raise ExprError(f"scapy cannot build the frame: {e}") from None
    elif isinstance(v, bytes):
        data = v
    else:
        raise ExprError(f"the expression gives {type(v).__name__}, not a frame (a scapy packet or bytes)")
    if len(data) > MAX_BYTES:
        raise ExprError(f"frame of {len(data)} bytes is longer than {MAX_BYTES}")
    return data
