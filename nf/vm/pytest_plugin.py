"""pytest integration of the VM tier (registered from nf/testing/plugin.py).

On the host, items marked ``vm`` are not run in the host process. The first of them builds what
the guest needs (the guest root is the host's, read-only: BPF objects and kmod/enetstl.ko are
built here), boots the guest once with the module loaded, and runs ONE guest pytest process with
every selected vm node id. Each host item then reports the guest's outcome (pass, fail with the
guest's failure text, skip with its reason). In the guest (NF_IN_GUEST=1) vm items run normally
and everything else is deselected.

With CI=true a missing kernel, QEMU or virtiofsd fails the vm items instead of skipping them.
Environment: NF_VM_TIMEOUT (s, guest pytest timeout, default 1800), NF_VM_VERBOSE=1 (stream the
guest pytest output to the terminal).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nf.testing.tiers import require

IN_GUEST = os.environ.get("NF_IN_GUEST") == "1"
ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "NF_VM_RESULTS"
_KEY = pytest.StashKey[dict]()

pytest_plugins = ["nf.vm.fixtures"]


def _is_vm(item) -> bool:
    return item.get_closest_marker("vm") is not None


# ---------------------------------------------------------------------------------------------
# guest side

def _guest_modifyitems(config, items) -> None:
    keep, drop = [], []
    for it in items:
        (keep if _is_vm(it) else drop).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logreport(report) -> None:
    """Guest side: one JSON line per test phase into $NF_VM_RESULTS (written as it happens, so a
    guest that dies half-way still leaves the results of the tests before it)."""
    path = os.environ.get(RESULTS_ENV)
    if not IN_GUEST or not path:
        return
    rec = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
           "longrepr": report.longreprtext if report.outcome != "passed" else "",
           "duration": report.duration}
    if hasattr(report, "wasxfail"):
        rec["wasxfail"] = report.wasxfail
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        msg = str(report.longrepr[2])
        rec["longrepr"] = msg[len("Skipped: "):] if msg.startswith("Skipped: ") else msg
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


# ---------------------------------------------------------------------------------------------
# host side

@pytest.hookimpl(trylast=True)  # after -m/-k deselection: boot for the selected items only
def pytest_collection_modifyitems(session, config, items) -> None:
    if IN_GUEST:
        _guest_modifyitems(config, items)
        return
    vm_items = [it for it in items if _is_vm(it)]
    config.stash[_KEY] = {"items": vm_items, "done": False, "results": {}, "error": None,
                          "unavailable": None, "summary": ""}
    for it in vm_items:
        # No host-side fixture set-up (the module cannot load here); the guest does all of it.
        it.setup = lambda: None
        it.runtest = _make_proxy(it)


def _make_proxy(item):
    def runtest():
        state = item.config.stash[_KEY]
        if not state["done"]:
            _run_guest_session(item.config, state)
        if state["unavailable"]:
            require(False, state["unavailable"])
        if state["error"]:
            pytest.fail(state["error"], pytrace=False)
        _report(item.nodeid, state["results"].get(item.nodeid))
    return runtest


def _report(nodeid: str, phases: list[dict] | None) -> None:
    if not phases:
        pytest.fail(f"{nodeid}: no result from the guest (crashed or not collected there)",
                    pytrace=False)
    failed = [p for p in phases if p["outcome"] == "failed"]
    if failed:
        text = "\n".join(f"[guest {p['when']}] {p['longrepr']}" for p in failed)
        pytest.fail(text, pytrace=False)
    for p in phases:
        if p["outcome"] == "skipped":
            if "wasxfail" in p:
                pytest.xfail(p["wasxfail"] or "xfail in guest")
            pytest.skip(f"[guest] {p['longrepr']}")
    if any("wasxfail" in p for p in phases):
        # xpassed (non-strict) reports as passed with wasxfail; nothing to fail here
        return


def _build(config) -> str | None:
    """Build everything the guest needs; returns an error text or None."""
    py = sys.executable
    steps = [[py, "-m", "nf.bpf.build"]]
    if (ROOT / "kmod" / "Makefile").exists() or (ROOT / "kmod" / "Kbuild").exists():
        steps.append(["make", "-s", "-C", str(ROOT / "kmod")])
    for cmd in steps:
        try:
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            return f"host build step timed out: {' '.join(cmd)}"
        if p.returncode != 0:
            return (f"host build step failed ({' '.join(cmd)}, rc {p.returncode}):\n"
                    f"{(p.stdout + p.stderr)[-4000:]}")
    return None


# Guest fixtures whose host side runs before the boot (the guest root is read-only): fixture
# name -> "module:function", called as function(rundir) when a selected test uses the fixture;
# it returns environment variables for the guest pytest (its result, or the error to fail with).
HOST_PREPARE = {"dkms_scratch": "nf.testing.dkms:prepare"}


def _host_prepare(items, rundir: Path) -> dict[str, str]:
    import importlib
    wanted = {f for it in items for f in getattr(it, "fixturenames", ())}
    env: dict[str, str] = {}
    for fixture, target in HOST_PREPARE.items():
        if fixture in wanted:
            mod, fn = target.split(":")
            env.update(getattr(importlib.import_module(mod), fn)(rundir))
    return env


def _run_guest_session(config, state: dict) -> None:
    from nf.vm.runner import prerequisites

    state["done"] = True
    missing = prerequisites()
    if missing:
        state["unavailable"] = "the vm tier needs: " + "; ".join(missing)
        return
    err = _build(config)
    if err:
        state["error"] = err
        return
    # Items that count instructions need the TCG plugin and an isolated vCPU 1; the rest get a
    # plain boot where both vCPUs schedule normally (concurrency tests). One boot per kind.
    groups: dict[bool, list] = {}
    for it in state["items"]:
        groups.setdefault("insncount" in getattr(it, "fixturenames", ()), []).append(it)
    summaries = []
    for measure, items in sorted(groups.items()):
        summaries.append(_guest_pytest(config, state, items, measure))
        if state["error"]:
            return
    state["summary"] = "\n".join(summaries)


def _guest_pytest(config, state: dict, items: list, measure: bool) -> str:
    from nf.vm.runner import KMOD, Vm, VmError

    nodeids = [it.nodeid for it in items]

    vm_kwargs: dict = {"insmod": KMOD if KMOD.exists() else False}
    if measure:
        from nf.vm import insncount
        vm_kwargs.update(insncount.vm_options())
    rundir = Path(tempfile.mkdtemp(prefix="nf-vm-pytest-", dir="/tmp"))
    results = rundir / "results.jsonl"
    log = rundir / "guest-pytest.log"
    prepared = _host_prepare(items, rundir)
    timeout = float(os.environ.get("NF_VM_TIMEOUT", "1800"))
    verbose = os.environ.get("NF_VM_VERBOSE") == "1"
    t0 = time.monotonic()
    try:
        with Vm(**vm_kwargs) as vm, open(log, "wb") as lf:
            def out(_stream, chunk):
                lf.write(chunk)
                if verbose:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "",
                    "-q", "-rN", "--color=no", *nodeids]
            env = {"NF_IN_GUEST": "1", RESULTS_ENV: str(results), **prepared}
            if "CI" in os.environ:
                env["CI"] = os.environ["CI"]
            res = vm.run(argv, env=env, cwd=str(config.rootpath), timeout=timeout, on_output=out)
            boot = vm.info.boot_s
    except VmError as e:
        state["error"] = f"vm tier: {e}"
        return ""
    got = _read_results(results)
    state["results"].update(got)
    kind = "measuring boot (insncount, isolated vCPU 1)" if measure else "boot"
    if res.timed_out:
        state["error"] = f"guest pytest timed out after {timeout}s; tail:\n{res.output[-3000:]}"
    elif not got and res.rc not in (0, 5):
        state["error"] = f"guest pytest failed (rc {res.rc}) before any test ran:\n{res.output[-4000:]}"
    where = f", log {log}"
    if res.rc == 0 and not state["error"]:
        shutil.rmtree(rundir, ignore_errors=True)  # keep the guest log only when it matters
        where = ""
    return (f"vm tier {kind}: ready in {boot:.1f}s, guest pytest rc={res.rc} in "
            f"{time.monotonic() - t0:.1f}s, {len(got)}/{len(nodeids)} results{where}")


def pytest_terminal_summary(terminalreporter, config) -> None:
    state = config.stash.get(_KEY, None)
    if state and state.get("summary"):
        terminalreporter.write_line(state["summary"])


def _read_results(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out.setdefault(rec["nodeid"], []).append(rec)
    return out
