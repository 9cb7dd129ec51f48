# SPDX-License-Identifier: Apache-2.0
"""cwpp-enforcer refuses protected targets (docs/actions.md "Protected targets"): action
parameters come from alert content, so a compromised host can get the desk to recommend
quarantining /etc/shadow or killing sshd. Each refusal fails the action with a reason
that says "refusing", changes nothing (the file is where it was with the same bytes, the
process lives, passwd and shadow are unchanged) and is counted in
cwpp_enforcer_refusals_total by reason.

The agent, the network namespaces, the results reader and the chroot come from
test_enforcer.py (imported, not copied: whatever changes there, e.g. how actions are
sent, holds here too); this module gets its own agent from the module-scoped fixture.
"""
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import cwpp_testlib as t
from test_enforcer import agent, net  # noqa: F401  (fixtures, one agent for this module)


def digest(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def snapshot(p):
    s = os.lstat(p)
    return (s.st_dev, s.st_ino, stat.S_IMODE(s.st_mode), s.st_size, digest(p))


def refusals(agent, reason):
    return agent.metrics().get(f'cwpp_enforcer_refusals_total{{reason="{reason}"}}', 0)


def refused(r, *words):
    assert r["status"] == "failed" and r["reason"].startswith("refusing"), r
    for w in words:
        assert w in r["reason"], (w, r)


def kthread_pid():
    """A kernel thread (PF_KTHREAD in /proc/PID/stat): kthreadd's pid 2 normally."""
    for pid in [2] + sorted(int(x) for x in os.listdir("/proc") if x.isdigit()):
        try:
            s = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        flags = int(s[s.rindex(")") + 2:].split()[6])
        if flags & 0x00200000:
            return pid
    return None


def test_quarantine_and_scan_of_protected_or_outside_paths_are_refused(agent, tmp_path):
    """/etc/shadow (a protected path), a file outside the workload roots, the agent's own
    journal (protected by identity: its state directory lies under /tmp, a root) and a
    file reached through a symlinked parent directory are not quarantined; scan_file of
    /etc is refused; the files are untouched."""
    before = {p: snapshot(p) for p in ("/etc/shadow", "/etc/passwd")}
    r = agent.do("quarantine_file", {"path": "/etc/shadow"})
    refused(r, "/etc/shadow", "protected path")
    r = agent.do("quarantine_file", {"path": "/tmp/../etc/passwd"})
    refused(r, "protected path")

    outside = Path("/var/lib") / f"cwpp-it-{uuid.uuid4().hex[:8]}"
    outside.mkdir()
    try:
        f = outside / "payload.bin"
        f.write_bytes(b"not in a workload root " + uuid.uuid4().bytes)
        snap = snapshot(f)
        r = agent.do("quarantine_file", {"path": str(f), "sha256": digest(f)})
        refused(r, "outside the workload roots", "enforcer.workload.roots")
        assert snapshot(f) == snap
    finally:
        shutil.rmtree(outside)

    journal = agent.tmp / "state" / "journal.jsonl"
    r = agent.do("quarantine_file", {"path": str(journal)})
    refused(r, "state directory")
    assert journal.exists()

    link = tmp_path / "etc-link"
    link.symlink_to("/etc")
    r = agent.do("quarantine_file", {"path": str(link / "passwd")})
    refused(r, "symbolic link")

    (agent.tmp / "sigs.txt").write_text(digest("/etc/passwd") + "\n")
    r = agent.do("scan_file", {"path": "/etc", "quarantine_if_infected": True})
    refused(r, "protected path")
    r = agent.do("scan_file", {"path": str(link), "quarantine_if_infected": True})
    assert r["status"] == "failed" and "symbolic link" in r["reason"], r

    assert {p: snapshot(p) for p in before} == before
    assert refusals(agent, "protected_path") >= 4
    assert refusals(agent, "outside_roots") >= 1
    assert refusals(agent, "symlink") >= 1

    # a file in a root is still quarantined
    f = tmp_path / "dropper.bin"
    f.write_bytes(b"MZ " + uuid.uuid4().bytes)
    r = agent.do("quarantine_file", {"path": str(f)})
    assert r["status"] == "succeeded" and not f.exists(), r


def test_kill_of_sshd_and_of_a_kernel_thread_is_refused(agent, tmp_path):
    """kill_process refuses a process whose executable is named sshd (a copy of sleep)
    and a kernel thread; both live on; a plain copy of sleep is killed."""
    sshd = tmp_path / "sshd"
    shutil.copy("/bin/sleep", sshd)
    os.chmod(sshd, 0o755)
    plain = tmp_path / "worker"
    shutil.copy("/bin/sleep", plain)
    os.chmod(plain, 0o755)
    p = subprocess.Popen([str(sshd), "300"])
    q = subprocess.Popen([str(plain), "300"])
    try:
        time.sleep(0.2)
        r = agent.do("kill_process", {"pid": p.pid})
        refused(r, "sshd is a protected process")
        assert json.loads(r["details_json"])["refused"] == "protected_process"
        r = agent.do("kill_process", {"pid": p.pid, "path": str(sshd)})
        refused(r, "protected process")
        assert p.poll() is None

        r = agent.do("kill_process", {"pid": q.pid, "path": str(plain)})
        assert r["status"] == "succeeded", r
        assert q.wait(5) == -signal.SIGKILL
    finally:
        for x in (p, q):
            if x.poll() is None:
                x.kill()
                x.wait()

    k = kthread_pid()
    assert k is not None, "no kernel thread visible in /proc"
    r = agent.do("kill_process", {"pid": k})
    refused(r, "kernel thread")
    assert Path(f"/proc/{k}").exists()
    assert refusals(agent, "protected_process") >= 2
    assert refusals(agent, "kernel_thread") >= 1


def test_root_and_system_accounts_are_refused(agent):
    """disable_account and enable_account refuse root and an account whose uid is below
    1000 in the chroot's passwd (enforcer.usermod.root); passwd and shadow stay as they
    were; alice (uid 1000) is still handled."""
    etc = agent.tmp / "chroot" / "etc"
    with open(etc / "passwd", "a") as f:
        f.write("daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with open(etc / "shadow", "a") as f:
        f.write("daemon:*:19000:0:99999:7:::\n")
    before = {n: (etc / n).read_bytes() for n in ("passwd", "shadow")}
    for action in ("disable_account", "enable_account"):
        r = agent.do(action, {"user": "root"})
        refused(r, "the root account")
        assert json.loads(r["details_json"])["refused"] == "protected_account"
        r = agent.do(action, {"user": "daemon"})
        refused(r, "uid 1 is below 1000")
    assert {n: (etc / n).read_bytes() for n in before} == before
    assert refusals(agent, "protected_account") >= 4
    r = agent.do("disable_account", {"user": "alice"})
    assert r["status"] == "succeeded", r
    r = agent.do("enable_account", {"user": "alice"})
    assert r["status"] == "succeeded", r


def test_guard_configuration_is_checked_at_start_up(tmp_path):
    """A relative WAF reload program, a relative workload root or a bad protected pid
    stop start-up with exit 1 naming the key."""
    base = {"CWPP_ENFORCER_ACCOUNT_ID": "a", "CWPP_ENFORCER_ASSET_ID": "h",
            "CWPP_ENFORCER_STATE_DIR": str(tmp_path / "s"), "CWPP_HTTP_PORT": "-1",
            "CWPP_ENFORCER_VERIFY_KEY_FILE": str(t.signing_keys()[2])}
    for extra, key in (({"CWPP_ENFORCER_WAF_RELOAD": "nginx -s reload"}, "enforcer.waf.reload"),
                       ({"CWPP_ENFORCER_WORKLOAD_ROOTS": "/srv:srv2"}, "enforcer.workload.roots"),
                       ({"CWPP_ENFORCER_PROTECT_PIDS": "1,x"}, "enforcer.protect.pids"),
                       ({"CWPP_ENFORCER_HOST_ROOT": str(tmp_path / "none")},
                        "enforcer.host_root")):
        env = dict(os.environ, **base, **extra)
        p = subprocess.run([str(t.BIN / "cwpp-enforcer")], env=env, capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 1 and key in p.stderr, (key, p.returncode, p.stderr)
