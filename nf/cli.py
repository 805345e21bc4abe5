"""`nf`: one command line for every NF (typer + rich). See EPILOG for the exit codes."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from nf import console
from nf.console import (E_CHECK, E_CONFIG, E_CONFLICT, E_FAILED, E_LOAD, E_NOT_FOUND,  # noqa: F401
                        E_UNSUPPORTED, E_USAGE, OK, Fail, err, out, progress_bar, spinner)

EPILOG = """Exit codes: 0 ok; 1 unexpected failure; 2 bad command line; 3 invalid config (field path
named); 4 the kernel refused (verifier excerpt shown); 5 unsupported here (bpffs, root, NF kind);
6 not found (deployment, file); 7 conflict (deployed with another config, interface in use or
running another XDP program, tables changed since by `nf routes`, half made by a killed nf,
another nf running, --listen address in use); 8 check failed (demo counters differ from what was sent, an `nf test` case)."""

app = typer.Typer(help="Deploy and drive XDP network functions.", epilog=EPILOG,
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False)


@app.callback()
def _options(quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars or spinners "
                                        "(they only ever show when stdout is a terminal)")):
    console.QUIET = quiet


def _classify(e: BaseException) -> Fail:
    """One clear line (plus the verifier excerpt) and an exit code for any error."""
    from nf.bpf import BpfError, MissingKfuncError, VerifierError
    from nf.config import ConfigError
    from nf.deploy import StateError
    from nf.engine import Conflict, Undeployable

    if isinstance(e, Fail):
        return e
    if isinstance(e, typer.BadParameter):   # raised inside a command: a bad command line
        return Fail(E_USAGE, e.format_message())
    if isinstance(e, Conflict):
        return Fail(E_CONFLICT, str(e))
    if isinstance(e, ConfigError):
        first, *rest = str(e).splitlines()
        return Fail(E_CONFIG, first, "\n".join(rest) or None)
    if isinstance(e, VerifierError):
        return Fail(E_LOAD, f"verifier rejected the program: {e.summary}",
                    getattr(e, "excerpt", None))
    if isinstance(e, MissingKfuncError):
        return Fail(E_UNSUPPORTED, str(e).splitlines()[0], getattr(e, "hint", None))
    if isinstance(e, BpfError):
        import errno as E
        if e.errno in (E.EBUSY, E.EEXIST):      # an interface another program holds
            lines = str(e).splitlines()
            return Fail(E_CONFLICT, lines[0], "\n".join(lines[1:]) or None)
        code = E_UNSUPPORTED if e.errno in (E.EPERM, E.EOPNOTSUPP, 524) or "bpffs" in str(e) else E_LOAD
        lines = str(e).splitlines()
        return Fail(code, lines[0], "\n".join(lines[1:]) or None)
    if isinstance(e, Undeployable):
        return Fail(E_UNSUPPORTED, str(e))
    if isinstance(e, StateError):
        return Fail(E_CONFLICT if "holds" in str(e) else E_FAILED, str(e))
    if isinstance(e, FileNotFoundError):
        return Fail(E_NOT_FOUND, str(e))
    from nf.net.iface import InterfaceError
    if isinstance(e, InterfaceError):
        return Fail(E_CONFIG, str(e))
    if isinstance(e, KeyError):
        return Fail(E_NOT_FOUND, str(e.args[0]) if e.args else "not found")
    if isinstance(e, PermissionError):
        return Fail(E_UNSUPPORTED, f"{e} (nf needs root)")
    if isinstance(e, ValueError):
        return Fail(E_CONFIG, str(e))
    return Fail(E_FAILED, f"{type(e).__name__}: {e}")


def command(f):
    """Every command: errors become one line on stderr and a documented exit code."""
    @functools.wraps(f)
    def wrapper(*a, **kw):
        try:
            rc = f(*a, **kw)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130)
        except Exception as e:  # noqa: BLE001
            fl = _classify(e)
            err.print(f"nf: error: {fl.msg}", markup=False)
            if fl.detail:
                err.print(fl.detail, markup=False)
            if os.environ.get("NF_DEBUG"):
                import traceback
                traceback.print_exc()
            raise typer.Exit(fl.code)
        raise typer.Exit(rc or 0)
    return wrapper


# ---- up / down --------------------------------------------------------------------------------
def _plan(files: list[Path], kind: str | None):
    """Validate every file and run every preflight before anything is loaded."""
    from nf import engine
    from nf.config import ConfigError

    plans, seen = [], {}
    for f in files:
        if not f.exists():
            raise Fail(E_NOT_FOUND, f"{f}: no such file")
        k, cfg = engine.detect(f, kind)
        name = cfg.name
        if name in seen:
            raise ConfigError(str(f), [("name", f"instance {name!r} also defined by {seen[name]}")])
        seen[name] = f
        if not k.deployable:
            raise engine.Undeployable(k.name, k.why_not)
        k.check(cfg)
        plans.append((f, k, cfg, name))
    return plans


@app.command()
@command
def up(files: list[Path] = typer.Argument(..., help="config file(s); every one is validated first"),
       kind: Optional[str] = typer.Option(None, help="NF kind when the file name does not say it")):
    """Validate every file, then deploy each NF (nothing is loaded if any file is invalid)."""
    from nf import deploy, engine
    plans = _plan(files, kind)
    with deploy.locked():
        made = []
        try:
            with progress_bar("up", total=len(plans)) as say:    # one step per NF (a chain: one)
                for i, (f, k, cfg, name) in enumerate(plans):
                    say(i, len(plans), f"{name}: loading and attaching {k.name}")
                    r = engine.up(f, k, cfg, name, say=lambda s: out.print(s, markup=False))
                    if r == "up":
                        made.append(name)
                    out.print(f"{name}: {'unchanged' if r == 'unchanged' else 'up'} ({k.name}, "
                              f"{', '.join(cfg.interface_names())})", markup=False)
                say(len(plans), len(plans), "done")
            line = _agent_line([mk for _, k, cfg, _ in plans for mk, _ in
                                (cfg.members() if k.name == "chain" else [(k, cfg)])],
                               missing_only=True)
            if line:
                err.print(line, markup=False)
        except BaseException:
            # all or nothing: what this command brought up goes down again
            for n in reversed(made):
                rec = deploy.read(n)
                if rec is not None:
                    engine.teardown(rec)
                    out.print(f"{n}: rolled back", markup=False)
            raise


@app.command()
@command
def down(name: Optional[str] = typer.Argument(None, help="instance (or --all)"),
         every: bool = typer.Option(False, "--all", help="every deployment on this host"),
         orphans: bool = typer.Option(False, "--orphans", help="also remove pin directories no "
                                      "record describes (made by controllers used directly)")):
    """Tear down a deployment (or, with --all, every one), including ones left by a killed nf."""
    from nf import deploy, engine
    if (name is None) == (not every):
        raise Fail(E_USAGE, "name the deployment (`nf down NAME`) or say --all (every deployment "
                            "on this host)" if name is None else "a NAME or --all, not both")
    with deploy.locked():
        recs = {r.name: r for r in deploy.records()}
        # pins without a record may belong to a controller another process is using right now:
        # only removed when named or asked for
        orph = deploy.orphans() if (orphans or name is not None) else []
        if name is not None:
            if name in recs and recs[name].chain:
                raise Fail(E_CONFLICT, f"{name} is member {recs[name].chain['position']} of chain "
                                       f"{recs[name].chain['name']}: `nf down {recs[name].chain['name']}`")
            if name in recs:
                targets, orph = [recs[name]], []
            elif name in orph:
                targets, orph = [], [name]
            else:
                raise Fail(E_NOT_FOUND, f"no deployment named {name!r}"
                           + (f" (deployed: {', '.join(recs)})" if recs else ""))
        else:   # chains first: their teardown takes their members along
            targets = sorted(recs.values(), key=lambda r: (r.kind != "chain", bool(r.chain)))
        for r in targets:
            if r.chain and deploy.read(r.name) is None:
                continue
            engine.teardown(r)
            out.print(f"{r.name}: down", markup=False)
        for n in orph:
            c = deploy.cleanup_pins(n)
            out.print(f"{n}: removed leftover pins ({c['links']} links, {c['pins']} pins)", markup=False)
        if not targets and not orph:
            out.print("nothing deployed")
        left = [] if orphans or name is not None else deploy.orphans()
        if left:
            out.print(f"pins without a record left alone: {', '.join(left)} (nf down NAME or "
                      f"--orphans removes them)", markup=False)


# ---- show / status / stats / verbs -------------------------------------------------------------
def _xdp_on(netns, iface) -> str:
    from nf.bpf import xdp_query
    from nf.net import netns as _ns
    try:
        with _ns.enter(netns):
            q = xdp_query(iface)
        return f"{q.mode.name.lower()} #{q.prog_id}" if q.attached else "none"
    except Exception as e:  # noqa: BLE001
        return f"? ({type(e).__name__})"


def _kmod_line() -> str:
    from nf import kmod
    if not kmod.is_loaded():
        return "enetstl module: not loaded (pure-eBPF variants)"
    try:
        c = kmod.counters()
        simd = "scalar forced" if kmod.scalar_forced() else "SIMD"
        return f"enetstl module: loaded ({simd}; " + ", ".join(f"{k}={v}" for k, v in c.items()) + ")"
    except Exception:  # noqa: BLE001
        return "enetstl module: loaded"


@app.command()
@command
def show(as_json: bool = typer.Option(False, "--json", help="machine-readable")):
    """Deployed NFs: kind, status, variant, interfaces with their XDP mode, source file."""
    from nf import deploy, engine
    recs = deploy.records()
    kinds = {r.name: engine.get(r.kind) for r in recs}
    # what the kernel runs, against each record (a killed nf, a deleted interface or netns)
    probs = {r.name: deploy.problems(r) if r.status == "up" else [] for r in recs}
    edits = {r.name: engine.edits_text(r) if r.extra.get("edits") else "" for r in recs}
    keys = {r.name: k for r in recs for k in [_keying(kinds[r.name], r, probs[r.name])] if k}
    if as_json:
        out.print_json(json.dumps([{"name": r.name, "kind": r.kind, "status": r.status,
                                    "stale": r.stale, "problems": probs[r.name],
                                    "edited": edits[r.name], "variant": r.variant,
                                    "mode": r.mode, "netns": r.netns, "interfaces": r.interfaces,
                                    "source": r.source, "digest": r.digest, "pid": r.pid, "chain": r.chain,
                                    "variant_why": r.extra.get("variant_why"),
                                    "xdp": {i: _xdp_on(r.netns, i) for i in r.interfaces},
                                    **({"keying": keys[r.name]} if r.name in keys else {}),
                                    **(kinds[r.name].show(r) if hasattr(kinds[r.name], "show") else {})}
                                   for r in recs]))
        return
    t = Table(title="deployments")
    for c in ("name", "kind", "status", "variant", "mode", "netns", "interfaces (xdp)", "source"):
        t.add_column(c)
    for r in recs:
        st = r.status + (" (stale)" if r.stale else "") + \
            (" BROKEN" if probs[r.name] else "") + (" (tables edited)" if edits[r.name] else "") + \
            (f" [{r.chain['name']} #{r.chain['position']}]" if r.chain else "")
        t.add_row(r.name, r.kind, st, r.variant, r.mode, r.netns or "-",
                  ", ".join(f"{i} ({_xdp_on(r.netns, i)})" for i in r.interfaces), r.source or "-")
    out.print(t)
    for r in recs:                  # in full, outside the table: the sentences a person acts on
        if r.extra.get("variant_why"):
            out.print(f"{r.name}: {r.variant} - {r.extra['variant_why']}", markup=False)
        if r.stale:
            out.print(f"{r.name}: {engine.unfinished(r)}: `nf up` of its file redeploys it, "
                      f"`nf down {r.name}` removes it", markup=False)
        if probs[r.name]:
            out.print(f"{r.name}: BROKEN, the kernel does not run it as recorded: "
                      f"{'; '.join(probs[r.name])} (`nf up` of its file redeploys it)", markup=False)
        if edits[r.name]:
            out.print(f"{r.name}: its tables differ from its file, changed by {edits[r.name]} "
                      f"(`nf apply` of the file puts them back)", markup=False)
        if r.name in keys:
            out.print(_keying_line(kinds[r.name], r.name, keys[r.name]), markup=False)
    for n in deploy.orphans():
        out.print(f"leftover pins without a record: {n} (nf down {n})", markup=False)
    out.print(_kmod_line(), markup=False)
    line = _agent_line(kinds.values())
    if line:
        out.print(line, markup=False)
    for r in recs:
        if hasattr(kinds[r.name], "show_line"):
            out.print(kinds[r.name].show_line(r), markup=False)


app.command("status", help="Same as show.")(show)

_KEYED_BY = {"drawn": "a secret drawn from the kernel's random source when it was made",
             "kernel": "the kernel (its hash map's own random seed)"}


def _keying(kind, rec, problems) -> dict | None:
    """How a deployment's hashed table is keyed, read from its pins (None: no such table, or
    the deployment is not there to read)."""
    if not getattr(kind, "keyed_table", "") or rec.status != "up" or rec.stale or problems:
        return None
    try:
        return kind.keying(rec)
    except Exception as e:  # noqa: BLE001 - show must not fail on one unreadable deployment
        return {"keyed": None, "by": f"unreadable ({e})"}


def _keying_line(kind, name: str, k: dict) -> str:
    if k.get("keyed") is None:
        return f"{name}: {kind.keyed_table} key {k['by']}"
    if not k["keyed"]:
        return f"{name}: {kind.keyed_table} NOT keyed ({k['by']})"
    by = f"the config's seed {k['seed']}" if k["by"] == "config" else _KEYED_BY.get(k["by"], k["by"])
    return f"{name}: {kind.keyed_table} keyed by {by}"


def _agent_line(kinds, missing_only: bool = False) -> str:
    """Whether `nf agent` runs, and what it does (or what does not happen without it) for the
    deployed kinds it drives; "" when none needs it (or, with ``missing_only``, when it runs)."""
    ks = list({k.name: k for k in kinds if hasattr(k, "due")}.values())
    if not ks:
        return ""
    from nf.agent import running
    pid = running()
    if pid:
        return "" if missing_only else \
            f"nf agent: running (pid {pid}): " + ", ".join(k.agent_does for k in ks)
    return ("nf agent: not running - " + "; ".join(k.without_agent for k in ks)
            + " (start `nf agent`, e.g. configs/nf-agent.service)")


def _records(name: str | None):
    from nf import deploy
    recs = deploy.records()
    if name:
        recs = [r for r in recs if r.name == name]
        if not recs:
            raise Fail(E_NOT_FOUND, f"no deployment named {name!r}")
    return recs


def _each(recs, fn, name: str | None) -> dict:
    """``fn(rec)`` per deployment. Listing them all, one that fails (its port or netns is gone)
    gives a Fail in its place and the others are still shown; named, its error is the answer."""
    res = {}
    for r in recs:
        try:
            res[r.name] = fn(r)
        except Exception as e:  # noqa: BLE001
            if name is not None:
                raise
            res[r.name] = _classify(e)
    return res


def _failures(res: dict) -> int:
    """Each failed deployment's error on stderr; the exit code of the first (0: none failed)."""
    bad = [(n, v) for n, v in res.items() if isinstance(v, Fail)]
    for n, f in bad:
        err.print(f"nf: error: {n}: {f.msg}", markup=False)
    return bad[0][1].code if bad else OK


def _as_json(res: dict) -> str:
    return json.dumps({n: {"error": v.msg} if isinstance(v, Fail) else v for n, v in res.items()})


def _collect_stats(name: str | None) -> dict:
    from nf import engine
    from nf.metrics import _action_stats

    def one(r):
        s = _action_stats(r)
        return {"kind": r.kind, "actions": s.as_dict() if s else None,
                "ports": engine.stats(engine.get(r.kind), r)}
    return _each(_records(name), one, name)


def _stats_tables(data: dict, prev: dict | None, dt: float) -> list:
    tables = []
    for name, d in data.items():
        if isinstance(d, Fail):
            t = Table(title=f"{name}: unavailable")
            t.add_column("error")
            t.add_row(d.msg)
            tables.append(t)
            continue
        ports = d["ports"]
        if ports:
            # groups may have different counters (a sketch's epoch, a router's ports and classes)
            names = list(dict.fromkeys(c for cs in ports.values() for c in cs))
            counters = [c for c in names if any(p.get(c, 0) for p in ports.values())] or names[:4]
            t = Table(title=f"{name}: per-port counters" + (" (rate /s)" if prev else ""))
            t.add_column("port")
            for c in counters:
                t.add_column(c, justify="right")
            from nf.metrics import gauge
            for p, cs in ports.items():
                if prev:      # a rate for counters; gauges (epoch values, entries) as they are
                    was = prev.get(name)
                    pp = {} if isinstance(was, Fail) or was is None else was["ports"].get(p, {})
                    t.add_row(p, *[str(cs.get(c, 0)) if gauge(d.get("kind"), c) else
                                   f"{cs.get(c, 0)} ({(cs.get(c, 0) - pp.get(c, cs.get(c, 0))) / dt:.0f})"
                                   for c in counters])
                else:
                    t.add_row(p, *[str(cs.get(c, "-")) for c in counters])
            tables.append(t)
        a = d["actions"]
        if a:
            was = (prev or {}).get(name)
            pa = None if was is None or isinstance(was, Fail) else was.get("actions")
            t = Table(title=f"{name}: XDP verdicts (exit point)" + (" (rate /s)" if pa else ""))
            for c in ("action", "packets", "bytes"):
                t.add_column(c, justify="right" if c != "action" else "left")
            for act, v in a["packets"].items():
                b = a["bytes"][act]
                if pa:
                    t.add_row(act, f"{v} ({(v - pa['packets'].get(act, v)) / dt:.0f})",
                              f"{b} ({(b - pa['bytes'].get(act, b)) / dt:.0f})")
                else:
                    t.add_row(act, str(v), str(b))
            tables.append(t)
    return tables


@app.command()
@command
def stats(name: Optional[str] = typer.Argument(None),
          watch: bool = typer.Option(False, "--watch", "-w", help="refresh with rates until Ctrl-C"),
          interval: float = typer.Option(1.0, help="--watch refresh interval (s)"),
          count: int = typer.Option(0, help="--watch: stop after N refreshes (0 = forever)"),
          as_json: bool = typer.Option(False, "--json")):
    """Counters per NF: per port, per XDP verdict (summed over CPUs); rates with --watch."""
    if not interval > 0 or interval != interval or interval > 86400:    # before any output
        raise Fail(E_USAGE, f"--interval must be > 0 and at most 86400 s, got {interval}")
    if count < 0:
        raise Fail(E_USAGE, f"--count must be >= 0, got {count}")
    data = _collect_stats(name)
    if as_json:
        out.print_json(_as_json(data))
        return _failures(data)
    if not watch:
        for t in _stats_tables(data, None, 1):
            out.print(t)
        return _failures(data)
    from rich.console import Group
    from rich.live import Live
    t0, n = time.monotonic(), 0
    with Live(Group(*_stats_tables(data, None, 1)), console=out, refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            cur, t1 = _collect_stats(name), time.monotonic()
            live.update(Group(*_stats_tables(cur, data, t1 - t0)))
            data, t0, n = cur, t1, n + 1
            if count and n >= count:
                break


def _verb(verb: str, name: str | None, **kw):
    from nf import engine
    recs = [r for r in _records(name) if verb in engine.get(r.kind).verbs]
    if not recs:
        raise Fail(E_NOT_FOUND, f"no deployment offers `{verb}`" + (f" named {name!r}" if name else ""))
    return _each(recs, lambda r: engine.verb(engine.get(r.kind), r, verb, **kw), name)


def _rows_table(title: str, rows: list[dict]) -> Table:
    t = Table(title=title)
    cols = list(rows[0]) if rows else ["(empty)"]
    for c in cols:
        t.add_column(c)
    for row in rows:
        t.add_row(*[str(row[c]) for c in cols])
    return t


def _emit(res: dict[str, list[dict]], as_json: bool, title) -> None:
    """A verb's result per instance: one JSON document, or a table each titled ``title(name, rows)``."""
    if as_json:
        out.print_json(_as_json(res))
        return _failures(res)
    for n, rows in res.items():
        if not isinstance(rows, Fail):
            out.print(_rows_table(title(n, rows), rows))
    return _failures(res)


@app.command()
@command
def fdb(name: Optional[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json")):
    """FDB of each deployed L2 switch."""
    return _emit(_verb("fdb", name), as_json, lambda n, rows: f"{n}: FDB ({len(rows)} entries)")


@app.command()
@command
def topk(name: Optional[str] = typer.Argument(None),
         k: Optional[int] = typer.Option(None, "-k", help="how many (default: the config's topk)"),
         flip: bool = typer.Option(False, "--flip", help="close the epoch and report it (counting "
                                   "continues in the other bank)"),
         history: bool = typer.Option(False, "--history", help="the closed epochs kept in the "
                                      "sketch's pinned epoch log (flipped by `nf agent` or --flip)"),
         as_json: bool = typer.Option(False, "--json")):
    """Top talkers of each deployed sketch (count-min estimates of its candidates)."""
    if k is not None and k < 1:
        raise Fail(E_CONFIG, f"-k must be >= 1, got {k}")
    from nf import deploy
    if history:
        if flip:
            raise Fail(E_USAGE, "--history and --flip do not go together")
        return _epoch_history(name, k, as_json)
    if flip:
        with deploy.locked():
            res = _verb("topk", name, k=k, flip=True)
    else:
        res = _verb("topk", name, k=k)
    return _emit(res, as_json, lambda n, rows: f"{n}: top {len(rows)} flows" + (" (closed epoch)" if flip else ""))


def _epoch_logs(name: str | None) -> dict[str, dict]:
    from nf.deploy import read_doc
    from nf.nfs.sketch import EPOCH_PIN
    recs = [r for r in _records(name) if r.kind == "sketch"]
    if not recs:
        raise Fail(E_NOT_FOUND, "no deployed sketch" + (f" named {name!r}" if name else ""))
    return {r.name: read_doc(r.pin_dir / EPOCH_PIN) or {"history": [], "closed": 0,
                                                           "closed_packets": 0, "epoch_started": None}
            for r in recs}


def _epoch_history(name: str | None, k: int | None, as_json: bool):
    logs = _epoch_logs(name)
    if as_json:
        out.print_json(json.dumps(logs))
        return
    for n, log in logs.items():
        t = Table(title=f"{n}: {len(log['history'])} closed epoch(s) kept of {log['closed']} "
                        f"({log['closed_packets']} packets)")
        for c in ("epoch", "ended", "seconds", "packets", "total", "top flows"):
            t.add_column(c, justify="left" if c in ("ended", "top flows") else "right")
        for e in log["history"]:
            top = "; ".join(f"{f} {v}" for f, v in e["top"][:k or 3])
            t.add_row(str(e["epoch"]) + (" (recovered)" if e.get("recovered") else ""),
                      time.strftime("%H:%M:%S", time.localtime(e["ended"])),
                      f"{e['ended'] - e['started']:.1f}" if e["started"] else "-",
                      str(e["packets"]), str(e["total"]), top or "-")
        out.print(t)


@app.command()
@command
def agent(listen: Optional[str] = typer.Option(None, help="also serve /metrics on HOST:PORT (loopback)"),
          once: bool = typer.Option(False, "--once", help="flip what is due now, then exit")):
    """Run as the controller of every deployment until stopped (SIGTERM/Ctrl-C): flips each
    deployed sketch's banks every epoch_s of its config and appends the closed epoch to the
    sketch's pinned epoch log (`nf topk --history`). One agent per host."""
    import threading
    from nf.agent import Agent, AgentRunning
    ag = Agent(say=lambda s: (out.print(s, markup=False), sys.stdout.flush()))
    try:
        ag.acquire()
    except AgentRunning as e:
        raise Fail(E_CONFLICT, str(e)) from None
    stop = threading.Event()
    srv = None
    try:
        if listen:
            srv = _server(listen)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        if not once:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            n = len(ag.deployments())
            err.print(f"nf agent (pid {os.getpid()}): {n} deployment(s) to drive (sketch epochs, "
                      "router neighbours)" + (f", serving http://{listen}/metrics" if listen else ""),
                      markup=False)
        ag.run(stop, once=once)
    finally:
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        ag.release()
    if not once:
        err.print(f"nf agent: stopped after {ag.ticks} tick(s) that did work", markup=False)


@app.command()
@command
def flows(name: Optional[str] = typer.Argument(None, help="flow table instance"),
          op: str = typer.Argument("list", help="list | add | del"),
          src: Optional[str] = typer.Option(None), dst: Optional[str] = typer.Option(None),
          proto: str = typer.Option("udp", help="tcp | udp | icmp | icmpv6 | number"),
          sport: int = typer.Option(0), dport: int = typer.Option(0),
          action: str = typer.Option("pass", help="add: pass | drop | redirect"),
          port: Optional[str] = typer.Option(None, help="add with redirect: egress interface"),
          as_json: bool = typer.Option(False, "--json")):
    """Flows of each deployed flow table; add/del a static flow (exact 5-tuple) while it runs."""
    from nf import deploy
    from nf.config import validate
    from nf.config.flow_table import Rule
    if op not in ("list", "add", "del"):
        raise Fail(E_USAGE, f"unknown flows operation {op!r} (list, add, del)")
    if op == "list":
        res = _verb("flows", name)
    else:
        if name is None:
            raise Fail(E_USAGE, f"flows {op} needs the instance name")
        if not (src and dst):
            raise Fail(E_USAGE, f"flows {op} needs --src and --dst")
        rule = validate(dict(src=src, dst=dst, proto=proto, sport=sport, dport=dport,
                             action=action, port=port), Rule, "flow")   # ConfigError naming fields
        with deploy.locked():
            res = _verb("flows", name, op=op, rule=rule)
    return _emit(res, as_json, lambda n, rows: f"{n}: {len(rows)} flows" if op == "list" else f"{n}: flows {op}")


def _one(name: str | None, op: str) -> str:
    if name is None:
        raise Fail(E_USAGE, f"{op} needs the instance name")
    return name


@app.command()
@command
def routes(name: Optional[str] = typer.Argument(None, help="router instance"),
           op: str = typer.Argument("list", help="list | add PREFIX TARGET.. | del PREFIX | replace FILE"),
           args: Optional[list[str]] = typer.Argument(None, help="add: PREFIX TARGET (e.g. 10.9.0.0/16 "
                                                      "via 10.0.2.2); del: PREFIX; replace: FILE"),
           limit: int = typer.Option(1000, help="list: at most this many (0 = all)"),
           as_json: bool = typer.Option(False, "--json")):
    """Routes of each deployed router; add/del one, or replace all from a route file (built into
    the idle bank, then one flip: traffic sees the old table or the new one)."""
    from nf import deploy
    args = args or []
    if op == "list":
        if args:
            raise Fail(E_USAGE, "routes list takes no arguments")
        res = _verb("routes", name, limit=limit or None)
    elif op in ("add", "del", "replace"):
        need = {"add": 2, "del": 1, "replace": 1}[op]
        if len(args) < need or (op != "add" and len(args) > 1):
            raise Fail(E_USAGE, {"add": "routes NAME add PREFIX TARGET..", "del": "routes NAME del PREFIX",
                                 "replace": "routes NAME replace FILE"}[op])
        _one(name, f"routes {op}")
        kw = {"add": lambda: {"prefix": args[0], "target": " ".join(args[1:])},
              "del": lambda: {"prefix": args[0]},
              "replace": lambda: {"file": args[0]}}[op]()
        if op == "replace" and not Path(args[0]).exists():
            raise Fail(E_NOT_FOUND, f"{args[0]}: no such file")
        with deploy.locked():
            if op == "replace":
                with progress_bar("routes", total=3) as say:
                    res = _verb("routes", name, op=op, progress=say, **kw)
            else:
                res = _verb("routes", name, op=op, **kw)
    else:
        raise Fail(E_USAGE, f"unknown routes operation {op!r} (list, add, del, replace)")
    return _emit(res, as_json,
          lambda n, rows: f"{n}: routes" + (f" ({len(rows)} shown)" if op == "list" else f" {op}"))


@app.command()
@command
def neigh(name: Optional[str] = typer.Argument(None, help="router instance"),
          op: str = typer.Argument("list", help="list | add ADDRESS MAC | del ADDRESS"),
          args: Optional[list[str]] = typer.Argument(None),
          dev: Optional[str] = typer.Option(None, help="router port (default: the one whose subnet holds ADDRESS)"),
          as_json: bool = typer.Option(False, "--json")):
    """Neighbour table (next hop -> MAC) of each deployed router; add/del static entries."""
    from nf import deploy
    args = args or []
    if op == "list":
        res = _verb("neigh", name)
    elif op in ("add", "del"):
        if len(args) != (2 if op == "add" else 1):
            raise Fail(E_USAGE, "neigh NAME add ADDRESS MAC" if op == "add" else "neigh NAME del ADDRESS")
        _one(name, f"neigh {op}")
        import ipaddress
        try:
            ipaddress.ip_address(args[0])
        except ValueError:
            raise Fail(E_CONFIG, f"{args[0]!r} is not an IP address") from None
        with deploy.locked():
            res = _verb("neigh", name, op=op, address=args[0], dev=dev,
                        **({"mac": args[1]} if op == "add" else {}))
    else:
        raise Fail(E_USAGE, f"unknown neigh operation {op!r} (list, add, del)")
    return _emit(res, as_json, lambda n, rows: f"{n}: neighbours")


# ---- check / schema / validate -----------------------------------------------------------------
def _generators() -> list[dict]:
    """The lab traffic generators and whether this kernel permits each (traffic/labgen.py)."""
    from traffic import labgen
    try:
        chosen = labgen.pick()
    except labgen.GeneratorUnavailable:
        chosen = None
    return [{"name": p.name, "ok": p.ok, "why": p.why, "used": p.name == chosen}
            for p in labgen.probes()]


def host_report(netns: str | None = None, probe: list[str] | None = None,
                own_veth: bool = False) -> dict:
    """What this host supports. XDP modes are probed (a pass-all program attached for an
    instant) only on the interfaces named in ``probe`` (in ``netns``) or, with ``own_veth``, on a
    veth pair made for it in a namespace of its own: on a real NIC an XDP attach reconfigures the
    rings and can drop the link, so nothing is ever probed by default."""
    import platform
    from nf import kmod
    from nf.bpf import build, pin
    from nf.net import list_interfaces
    rep = {"kernel": platform.release(), "root": os.geteuid() == 0,
           "btf": os.path.exists("/sys/kernel/btf/vmlinux"),
           "bpffs": pin.bpffs_mount_of(pin.BPFFS) is not None,
           "bpf_objects": build.origin(),
           "module": {"loaded": kmod.is_loaded()}, "interfaces": {}}
    if not rep["module"]["loaded"]:
        rep["module"]["install"] = kmod.install_hint()
    else:
        try:
            rep["module"].update(version=kmod.version(), features=kmod.features(), counters=kmod.counters(),
                                 scalar_forced=kmod.scalar_forced())
        except Exception as e:  # noqa: BLE001
            rep["module"]["error"] = str(e)
    if rep["root"]:
        rep["generators"] = _generators()
    from nf.net import netns as _ns
    if netns is not None and not _ns.exists(netns):
        raise Fail(E_CONFIG, f"--netns: no network namespace {netns!r}")
    have = {i.name: i for i in list_interfaces(netns)}
    unknown = [n for n in probe or [] if n not in have]
    if unknown:
        raise Fail(E_CONFIG, f"--probe: no interface {', '.join(map(repr, unknown))} in "
                             f"{netns or 'the current netns'} (there are: {', '.join(have)})")
    with _ns.enter(netns):
        for itf in have.values():
            rep["interfaces"][itf.name] = _xdp_modes(itf.ifindex, None)
    if probe or own_veth:
        if not rep["root"]:
            raise Fail(E_UNSUPPORTED, "probing XDP modes needs root")
        prog = obj = None
        try:
            from nf.bpf import BpfObject
            obj = BpfObject.open_built("base/base")
            obj.load()
            prog = obj.program("xdp_base")
            with _ns.enter(netns):
                for n in probe or []:
                    rep["interfaces"][n] = _xdp_modes(have[n].ifindex, prog)
            if own_veth:
                rep["own_veth"] = _probe_own_veth(prog)
        except Fail:
            raise
        except Exception as e:  # noqa: BLE001
            rep["probe_error"] = str(e).splitlines()[0]
        finally:
            if obj is not None:
                obj.close()
    return rep


def _xdp_modes(ifindex: int, prog) -> dict:
    """{"in use": ...} when a program is attached; else, with ``prog``, native/generic probed
    by attaching it for an instant; else {} (not probed)."""
    from nf.bpf import XdpMode, xdp_query
    q = xdp_query(ifindex)
    if q.attached:
        return {"in use": f"{q.mode.name.lower()} #{q.prog_id}"}
    modes = {}
    if prog is not None:
        for m in (XdpMode.NATIVE, XdpMode.GENERIC):
            try:
                prog.attach_xdp(ifindex, m).detach()
                modes[m.name.lower()] = "yes"
            except Exception as e:  # noqa: BLE001
                modes[m.name.lower()] = f"no ({getattr(e, 'errno_name', type(e).__name__)})"
    return modes


_CHECK_NS = re.compile(r"^nf-check-(\d+)$")


def _probe_own_veth(prog) -> dict:
    """XDP modes on a veth pair nf makes for the probe, in a namespace of its own (removed after)."""
    from pyroute2 import IPRoute
    from nf.net import netns as _ns
    ns = f"nf-check-{os.getpid()}"
    _ns.remove_orphans(_CHECK_NS)      # a probe killed before its cleanup left its namespace
    _ns.create(ns)
    try:
        with _ns.enter(ns):
            with IPRoute() as ipr:
                ipr.link("add", ifname="nfchk0", kind="veth", peer={"ifname": "nfchk1"})
                idx = ipr.link_lookup(ifname="nfchk0")[0]
                ipr.link("set", index=idx, state="up")
                ipr.link("set", index=ipr.link_lookup(ifname="nfchk1")[0], state="up")
            return _xdp_modes(idx, prog)
    finally:
        _ns.remove(ns)


@app.command()
@command
def check(netns: Optional[str] = typer.Option(None, help="list (and --probe) the interfaces of this netns"),
          probe: Optional[list[str]] = typer.Option(None, "--probe", metavar="IFACE", help="probe XDP modes on this "
                                                    "interface (repeat the option; a pass-all program is "
                                                    "attached for an instant: on a real NIC that can drop "
                                                    "the link for a moment)"),
          own_veth: bool = typer.Option(False, "--probe-veth", help="probe XDP modes on a veth pair "
                                        "of nf's own (made in a netns of its own, then removed)"),
          no_probe: bool = typer.Option(False, "--no-probe", hidden=True,
                                        help="accepted for old scripts: nothing is probed by default"),
          as_json: bool = typer.Option(False, "--json")):
    """What this host supports: BTF, bpffs, the module and its SIMD paths, the XDP program on
    each interface; XDP modes only on interfaces named with --probe (or --probe-veth)."""
    rep = host_report(netns, probe, own_veth)
    if as_json:
        out.print_json(json.dumps(rep))
        return
    yn = lambda b: "yes" if b else "NO"  # noqa: E731
    t = Table(title="host")
    t.add_column("what")
    t.add_column("state")
    t.add_row("kernel", rep["kernel"])
    t.add_row("root", yn(rep["root"]))
    t.add_row("BTF (/sys/kernel/btf/vmlinux)", yn(rep["btf"]))
    t.add_row("bpffs at /sys/fs/bpf", yn(rep["bpffs"]))
    t.add_row("BPF objects", _objects_line(rep["bpf_objects"]))
    m = rep["module"]
    t.add_row("enetstl module", _module_line(m))
    if m.get("features"):
        t.add_row("module CPU features", ", ".join(f"{k}={v}" for k, v in m["features"].items()))
        t.add_row("module SIMD paths", "scalar forced" if m.get("scalar_forced") else "SIMD when the CPU has it")
        t.add_row("module path counters", ", ".join(f"{k}={v}" for k, v in m["counters"].items()))
    for g in rep.get("generators", ()):
        state = ("yes" + (" (used by labs and nf bench)" if g["used"] else "")) if g["ok"] \
            else f"NO: {g['why']}"
        t.add_row(f"lab traffic generator {g['name']}", state)
    out.print(t)
    if not m["loaded"]:  # one line a user can copy (a table cell would wrap it)
        out.print(f"enetstl module: {m['install']}", markup=False)
    t = Table(title=f"XDP per interface ({netns or 'current netns'})")
    t.add_column("interface")
    t.add_column("native")
    t.add_column("generic")
    rows = dict(rep["interfaces"])
    if "own_veth" in rep:
        rows["(nf's own veth)"] = rep["own_veth"]
    for i, modes in rows.items():
        if "in use" in modes:
            t.add_row(i, f"in use: {modes['in use']}", "")
        elif modes:
            t.add_row(i, modes.get("native", "-"), modes.get("generic", "-"))
        else:
            t.add_row(i, "not probed", "not probed")
    out.print(t)
    if not probe and not own_veth:
        out.print("XDP modes: not probed (nothing is attached unless asked): `nf check --probe-veth` "
                  "probes a veth pair of nf's own, `nf check --probe IFACE` an interface of yours",
                  markup=False)
    if rep.get("probe_error"):
        out.print(f"probe failed: {rep['probe_error']}", markup=False)
    if not (rep["root"] and rep["bpffs"]):
        return E_UNSUPPORTED


def _module_line(m: dict) -> str:
    from nf import __version__
    if not m["loaded"]:
        return "not loaded (pure-eBPF variants only)"
    if m.get("version") in (None, __version__):
        return f"loaded (version {m.get('version') or 'unknown'})"
    return f"loaded (version {m['version']}; this xdp-nf is {__version__}: rebuild it, kfuncs may differ)"


def _objects_line(o: dict) -> str:
    """Where `nf` takes its BPF objects from (nf.bpf.build.origin()), in one line."""
    if o["from"] == "package":
        state = "verified" if o["verified"] else f"MODIFIED: {', '.join(o['differ'][:3])} differ from BUILD.json"
        return (f"package data {o['dir']}: {o['objects']} objects, build {o['build_hash']} ({state}; "
                f"xdp-nf {o['version']}, {o['clang']})")
    if o["from"] == "source":
        todo = [f"{o['missing']} not built yet"] * bool(o["missing"]) + [f"{o['stale']} stale"] * bool(o["stale"])
        return (f"built from source {o['sources']} into {o['dir']} by {o['clang'] or 'clang-19 (NOT FOUND)'}: "
                f"{o['objects']} objects, build {o['build_hash']}"
                + (f" ({', '.join(todo)}: built when used)" if todo else ""))
    return "NONE: no source tree and no package data (reinstall xdp-nf)"


@app.command()
@command
def schema(kind: str = typer.Argument(..., help="l2_switch | router | sketch | flow_table | lab")):
    """JSON Schema of a config kind."""
    from nf import engine
    from nf.config import json_schema
    if kind == "lab":
        from nf.demo import DemoSpec
        out.print(json_schema(DemoSpec), markup=False)
        return
    out.print(json_schema(engine.get(kind).config), markup=False)


@app.command()
@command
def validate(files: list[Path], kind: Optional[str] = typer.Option(None),
             system: bool = typer.Option(False, help="also check interfaces/netns on this host")):
    """Validate config files (schema only unless --system); nothing is loaded."""
    from nf import engine
    for f in files:
        if not f.exists():
            raise Fail(E_NOT_FOUND, f"{f}: no such file")
        if f.stem == "lab" and kind is None:
            from nf.demo import load_spec
            load_spec(f)
            out.print(f"{f}: valid lab", markup=False)
            continue
        k, cfg = engine.detect(f, kind)
        if system:
            k.check(cfg)
        out.print(f"{f}: valid {k.name} ({cfg.name})", markup=False)


@app.command()
@command
def example(name: Optional[str] = typer.Argument(None, help="l2_switch | router | sketch | flow_table "
                                                 "| filter | chain | chain_full | lab (none: list)")):
    """Print an example config (shipped with the package): `nf example l2_switch > sw.yaml`."""
    from nf.data import examples
    ex = examples()
    if name is None:
        for n, p in ex.items():
            out.print(f"{n:12} {p.read_text().splitlines()[0].lstrip('# ')}", markup=False)
        return
    if name not in ex:
        raise Fail(E_NOT_FOUND, f"no example {name!r} (there are: {', '.join(ex)})")
    sys.stdout.write(ex[name].read_text())


@app.command()
@command
def kinds():
    """NF kinds the CLI knows and whether `nf up` can deploy them."""
    from nf import engine
    t = Table(title="NF kinds")
    for c in ("kind", "deployable", "verbs", "what"):
        t.add_column(c)
    for k in engine.kinds().values():
        t.add_row(k.name, "yes" if k.deployable else "no", ", ".join(k.verbs) or "-", k.summary)
    out.print(t)


# ---- apply -------------------------------------------------------------------------------------
@app.command()
@command
def apply(file: Path, kind: Optional[str] = typer.Option(None),
          reload: bool = typer.Option(False, "--reload", help="replace the program even if unchanged"),
          dry_run: bool = typer.Option(False, "--dry-run", help="show the diff only")):
    """Show the diff against the deployed config, then change only what changed.

    Runtime fields change in place (maps); a new program (rebuilt object, or --reload) replaces
    the old one atomically with bpf_link_update on the same pinned maps; any other change needs
    `nf down` + `nf up` and is refused."""
    from nf import deploy, engine
    if not file.exists():
        raise Fail(E_NOT_FOUND, f"{file}: no such file")
    k, cfg = engine.detect(file, kind)
    name = cfg.name
    k.check(cfg)
    with deploy.locked():
        rec = deploy.read(name)
        if rec is None:
            raise Fail(E_NOT_FOUND, f"{name} is not deployed; use `nf up {file}`")
        if rec.kind != k.name:
            raise Fail(E_CONFLICT, f"{name} is a {rec.kind}, the file is a {k.name}")
        if rec.status != "up":     # half made by a killed nf: only a fresh `nf up` is sure
            raise Fail(E_CONFLICT, f"{name}: " + (
                f"{engine.unfinished(rec)}; `nf up {file}` redeploys it" if rec.stale else
                f"being changed by pid {rec.pid} ({rec.status})") + "; nothing changed")
        if rec.chain:     # its program lives in the chain's slot, not in links of its own
            raise Fail(E_CONFLICT, f"{name} is member {rec.chain['position']} of chain "
                                   f"{rec.chain['name']}: change it in the chain's file "
                                   f"(`nf apply CHAIN_FILE`)")
        try:
            p = engine.plan(rec, k, cfg, reload)
        except engine.Conflict as e:
            for line in e.lines:            # every change, the refused ones named
                out.print(f"  {line}", markup=False)
            raise
        for line in p.lines:
            out.print(f"  {line}", markup=False)
        if not p.changed and not p.program:
            out.print(f"{name}: unchanged")
            return
        chain = k is engine.CHAIN
        if dry_run:
            out.print(f"{name}: dry run, {len(p.lines)} change(s)"
                      + (", every member reloaded" if chain and reload else
                         ", new program" if p.program and not chain else ""))
            return
        with _applying(rec, cfg, file, p):
            with (progress_bar(f"{name}: applying") if chain else contextlib.nullcontext(None)) as say, \
                    (spinner(f"{name}: loading the new program...") if p.program and not chain
                     else contextlib.nullcontext()):
                log = engine.apply(rec, k, cfg, p, progress=say)
            for line in log:
                out.print(f"{name}: {line}", markup=False)


@contextlib.contextmanager
def _applying(rec, cfg, file: Path, plan):
    """The record says "applying" while a change is made (a killed apply is visible to `nf
    show`, and the next `nf up` redeploys it); on success it takes the new config and source. A
    failure before the kernel changed (a verifier error) leaves it "up" with the old config;
    one after it (``plan.touched``) marks it "failed": `nf show` says so and `nf up` redeploys
    it - the record never claims a config that is half made."""
    from nf import deploy, engine
    rec.status = "applying"
    deploy.write(rec)
    engine.crash_point("apply-marked")
    try:
        yield
    except BaseException as e:
        rec.status = "failed" if plan.touched else "up"
        if plan.touched:
            rec.extra["failure"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        deploy.write(rec)
        raise
    engine.crash_point("apply-changed")
    rec.config = cfg.model_dump(mode="json")
    rec.source = str(file.resolve())
    rec.status = "up"
    deploy.write(rec)


# ---- metrics / demo ----------------------------------------------------------------------------
def _server(listen: str):
    """The /metrics server on ``listen``; a busy or foreign address is the user's error."""
    import errno as E
    from nf import metrics as M
    try:
        return M.make_server(listen)
    except OSError as e:
        raise Fail(E_CONFLICT if e.errno == E.EADDRINUSE else E_CONFIG,
                   f"--listen {listen}: {e.strerror or e}") from None


@app.command()
@command
def metrics(listen: Optional[str] = typer.Option(None, help="serve /metrics on HOST:PORT (loopback only)")):
    """Prometheus text exposition of every counter (printed, or served with --listen)."""
    from nf import metrics as M
    if listen is None:
        sys.stdout.write(M.render())
        return
    srv = _server(listen)
    err.print(f"serving http://{listen}/metrics (Ctrl-C stops)", markup=False)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


@app.command()
@command
def demo(config: Optional[Path] = typer.Option(None, "--config", "-c", help="lab + switch + traffic "
                                               "description (default: `nf example lab`)"),
         keep: bool = typer.Option(False, help="leave the lab and the switch up (Ctrl-C tears down)")):
    """Build the lab, deploy the NFs, replay scapy traffic, show FDB + counters, check them."""
    from nf.data import examples
    from nf.demo import run
    return run(config or examples()["lab"], out, keep=keep)


def _unavailable(name: str, why: BaseException):
    """A command whose module failed to import: it stays listed and fails loudly when run (the
    other commands, `nf demo` first, are not taken down with it)."""
    def cmd(args: Optional[list[str]] = typer.Argument(None, hidden=True)):
        raise Fail(E_FAILED, f"`nf {name}` is unavailable: its module failed to import "
                             f"({type(why).__name__}: {why}); NF_DEBUG=1 shows the traceback")
    cmd.__doc__ = f"UNAVAILABLE: {type(why).__name__}: {why}"
    return cmd


# nf bench / nf replay live in nf/bench/ (the bench helper's module)
try:
    from nf.bench.cli import register as _register_bench  # noqa: E402
except Exception as _e:  # noqa: BLE001
    if os.environ.get("NF_DEBUG"):
        raise
    for _name in ("bench", "replay"):
        app.command(_name, context_settings={"allow_extra_args": True,
                                             "ignore_unknown_options": True})(
            command(_unavailable(_name, _e)))
else:
    _register_bench(app, command)


# nf test lives in nf/testing/ (the public testing API); registered like nf bench.
from nf.testing.cli import register as _register_test  # noqa: E402
_register_test(app, command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
