# SPDX-License-Identifier: Apache-2.0
"""Static checks of the deployment files: docker-compose.yml, deploy/docker/Dockerfile,
.dockerignore and deploy/k8s/. They need no Docker engine, cluster, broker or database;
they pin down that the files parse, reference only things that exist (paths, binaries,
environment variables, ports) and agree with each other.

Run: /usr/bin/python3 -m pytest tests/static/test_deploy_files.py (part of the "static"
suite of tests/run)
Checks that need build/bin/cwpp-* (or $CWPP_BIN_DIR), apt-cache, dpkg, readelf or the
docker compose plugin skip with a reason when those are missing."""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CWPP_BIN_DIR", REPO / "build" / "bin"))
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
K8S = REPO / "deploy" / "k8s"
MIGRATE = REPO / "deploy" / "migrate"
ADMIN_SRC = REPO / "tools" / "cwpp-admin" / "main.c"

IMAGE_REPO = "cwpp/cwpp"            # our image, in compose (default) and in deploy/k8s
BIN_DIR_IN_IMAGE = "/usr/local/bin"
# Commands the scripts may use besides our binaries, and the Debian package that must be
# installed in the runtime stage for each (None: part of debian:bookworm-slim).
SYSTEM_COMMANDS = {"bash": "bash", "sh": None, "curl": "curl", "psql": "postgresql-client",
                   "sha256sum": "coreutils", "install": "coreutils", "true": None,
                   "sleep": None}
SHELL_BUILTINS = {"exec", "set", "echo", "test", "[", "export", "cd", ":"}


# ------------------------------------------------------------------------ loading

def compose():
    return yaml.safe_load(COMPOSE.read_text())


def k8s_files():
    return sorted(p for p in K8S.iterdir() if p.suffix in (".yaml", ".yml"))


def k8s_objects():
    """Every document of every manifest except kustomization.yaml, as (file, object)."""
    out = []
    for p in k8s_files():
        if p.name == "kustomization.yaml":
            continue
        out.extend((p.name, d) for d in yaml.safe_load_all(p.read_text()) if d is not None)
    return out


def k8s_object(kind, name=None):
    found = [o for _, o in k8s_objects()
             if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def env_map(env):
    """A compose `environment` (mapping or list of K=V) as a dict."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


def dockerfile_stages():
    """[(stage name, [(INSTRUCTION, argument text)])], continuation lines joined."""
    stages, logical, cur = [], [], ""
    for line in DOCKERFILE.read_text().splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        logical.append(cur + s)
        cur = ""
    for ins in logical:
        op, _, arg = ins.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.search(r"\bAS\s+(\S+)", arg, re.I)
            stages.append((m.group(1) if m else str(len(stages)), []))
        if stages:
            stages[-1][1].append((op, arg.strip()))
    return stages


def copy_instructions(stage):
    """[(flags dict, sources, destination)] of the COPY/ADD lines of one stage."""
    out = []
    for op, arg in stage[1]:
        if op not in ("COPY", "ADD"):
            continue
        words = shlex.split(arg)
        flags = {}
        while words and words[0].startswith("--"):
            k, _, v = words.pop(0)[2:].partition("=")
            flags[k] = v
        out.append((flags, words[:-1], words[-1]))
    return out


def apt_packages(stage):
    """Packages named by the `apt-get install` commands of one stage."""
    pkgs = []
    for op, arg in stage[1]:
        if op != "RUN":
            continue
        for part in re.split(r"&&|;|\|\|", arg):
            words = part.split()
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:]
                         if not w.startswith("-") and "=" not in w]
    return pkgs


def runtime_stage():
    return dockerfile_stages()[-1]


def build_stage_copies():
    """Repository paths the build stage copies into its source tree."""
    return [s.rstrip("/") or "." for f, srcs, _ in copy_instructions(dockerfile_stages()[0])
            if "from" not in f for s in srcs]


def cmake_executables(in_image=False):
    """Executable targets of every CMakeLists.txt in the repository (OUTPUT_NAME too);
    with in_image, only of those the Dockerfile's build stage copies (so builds)."""
    names = set()
    copied = build_stage_copies() if in_image else ["."]
    for p in REPO.rglob("CMakeLists.txt"):
        rel = p.relative_to(REPO).parts
        if rel[0].startswith("build") or rel[0].startswith("."):
            continue
        relp = "/".join(rel)
        if "." not in copied and not any(relp == c or relp.startswith(c + "/") for c in copied):
            continue
        text = p.read_text()
        names |= set(re.findall(r"add_executable\(\s*([\w.+-]+)", text))
        # cwpp_service(<core library> <executable> ...) makes a service's executable
        names |= set(re.findall(r"cwpp_service\(\s*[\w.+-]+\s+([\w.+-]+)", text))
        names |= set(re.findall(r"OUTPUT_NAME\s+\"?([\w.+-]+)", text))
    return names


def image_binaries():
    """Names the runtime stage installs into /usr/local/bin (our binaries and scripts)."""
    names, targets = set(), cmake_executables(in_image=True)
    for flags, srcs, dest in copy_instructions(runtime_stage()):
        d = dest.rstrip("/")
        if os.path.dirname(d) == BIN_DIR_IN_IMAGE:      # COPY src /usr/local/bin/NAME
            names.add(os.path.basename(d))
        elif d == BIN_DIR_IN_IMAGE:                     # COPY srcs... /usr/local/bin/
            for src in srcs:
                if "from" in flags:
                    # build output: .../build/bin/<glob> gives the CMake executables matching it
                    names |= {t for t in targets if fnmatch.fnmatch(t, os.path.basename(src))}
                else:
                    names.add(os.path.basename(src.rstrip("/")))
    return names


def simple_commands(argv):
    """The simple commands an argv runs: itself, or each command of a `bash -c` script."""
    if not argv:
        return []
    if isinstance(argv, str):
        argv = shlex.split(argv)
    if os.path.basename(argv[0]) in ("bash", "sh") and "-c" in argv:
        script = argv[argv.index("-c") + 1]
        cmds = [[os.path.basename(argv[0])]]
        for part in re.split(r"&&|\|\||;|\||\n", script):
            words = shlex.split(part)
            while words and (words[0] in ("exec", "env") or re.match(r"^\w+=", words[0])):
                words.pop(0)
            if words:
                cmds.append(words)
        return cmds
    return [argv]


def our_compose_services():
    """Compose services that run our image."""
    return {n: s for n, s in compose()["services"].items()
            if "build" in s or IMAGE_REPO in str(s.get("image", ""))}


def our_k8s_containers():
    """(object name, pod spec, container) for every container running our image."""
    out = []
    for _, o in k8s_objects():
        spec = o.get("spec", {}).get("template", {}).get("spec")
        if spec is None:
            continue
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            if c["image"].split(":")[0] == IMAGE_REPO:
                out.append((o["metadata"]["name"], spec, c))
    return out


def k8s_env_names(container):
    """Environment variable names a container gets: env plus every envFrom source's keys."""
    names = {e["name"] for e in container.get("env", [])}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            names |= set(k8s_object("ConfigMap", src["configMapRef"]["name"])["data"])
        if "secretRef" in src:
            s = k8s_object("Secret", src["secretRef"]["name"])
            names |= set(s.get("stringData", {})) | set(s.get("data", {}))
    return names


def k8s_env_values(container):
    vals = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            vals.update(k8s_object("ConfigMap", src["configMapRef"]["name"])["data"])
        if "secretRef" in src:
            s = k8s_object("Secret", src["secretRef"]["name"])
            vals.update(s.get("stringData", {}))
    vals.update({e["name"]: e.get("value") for e in container.get("env", [])})
    return vals


# What the enforcement agent (k8s DaemonSet) is given, each for a reason written beside it in
# deploy/k8s/enforcer-daemonset.yaml, and nothing else: no privileged container.
ENFORCER_CAPS = {"NET_ADMIN", "KILL", "SYS_PTRACE", "DAC_OVERRIDE", "FOWNER", "CHOWN",
                 "SYS_CHROOT"}

# The long-running services deployed so far: compose service, binary (= k8s Deployment
# and Service name), k8s container, database role, password variable, k8s Secret.
SERVICES = [
    ("ingest", "cwpp-ingest", "ingest", "cwpp_ingest", "CWPP_PG_PASSWORD_INGEST",
     "cwpp-db-ingest"),
    ("whitelist-filter", "cwpp-whitelist-filter", "whitelist-filter", "cwpp_whitelist",
     "CWPP_PG_PASSWORD_WHITELIST", "cwpp-db-whitelist"),
    ("correlator", "cwpp-correlator", "correlator", "cwpp_correlator",
     "CWPP_PG_PASSWORD_CORRELATOR", "cwpp-db-correlator"),
    ("responder", "cwpp-responder", "responder", "cwpp_responder",
     "CWPP_PG_PASSWORD_RESPONDER", "cwpp-db-responder"),
    ("exporter", "cwpp-exporter", "exporter", "cwpp_exporter",
     "CWPP_PG_PASSWORD_EXPORTER", "cwpp-db-exporter"),
    ("api", "cwpp-api", "api", "cwpp_api", "CWPP_PG_PASSWORD_API", "cwpp-db-api"),
]


# The broker credentials every client reads under names of their own, outside the
# configuration table (libs/config: cwpp_conf_kafka_env), so --print-env does not list them.
KAFKA_CLIENT_ENV = {"CWPP_KAFKA_SECURITY_PROTOCOL", "CWPP_KAFKA_SASL_MECHANISM",
                    "CWPP_KAFKA_SASL_USERNAME", "CWPP_KAFKA_SASL_PASSWORD",
                    "CWPP_KAFKA_SSL_CA_LOCATION"}


def ingest_known_env(binary="cwpp-ingest"):
    exe = BIN / binary
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} not built: cannot read the service's env names (--print-env)")
    out = subprocess.run([str(exe), "--print-env"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, f"{binary} --print-env failed: {out.stderr}"
    names = set(out.stdout.split())
    assert "CWPP_PG_DSN" in names, "--print-env output does not look like env names"
    return names | KAFKA_CLIENT_ENV


def dsn(conninfo):
    """libpq key=value conninfo (values without spaces, as ours are) as a dict."""
    return dict(kv.split("=", 1) for kv in conninfo.split())


def service_roles():
    """Roles created by the SQL migrations (cwpp_<name>)."""
    text = "".join(p.read_text() for p in sorted((REPO / "schemas" / "sql").glob("*.sql")))
    return set(re.findall(r"'(cwpp_\w+)'", text))


def setup_env_known(name):
    """For the migrate/topics step: True if cwpp-admin or deploy/migrate reads `name`,
    False if not, None if deploy/migrate is missing and only it could read it."""
    if name in set(re.findall(r'"(CWPP_\w+)"', ADMIN_SRC.read_text())) or \
            name in KAFKA_CLIENT_ENV:
        return True
    if not MIGRATE.exists():
        return None
    text = MIGRATE.read_text()
    m = re.match(r"CWPP_PG_PASSWORD_(\w+)$", name)
    if m:
        return "CWPP_PG_PASSWORD_" in text and f"cwpp_{m.group(1).lower()}" in service_roles()
    return name in text


# --------------------------------------------------------------------- the tests

# Pins down: docker-compose.yml is valid YAML with the services of this stage.
def test_compose_parses():
    c = compose()
    assert {"kafka", "postgres", "init"} | {x[0] for x in SERVICES} <= set(c["services"])


# Pins down: every k8s manifest parses as YAML and each document is a typed object.
def test_k8s_manifests_parse():
    files = k8s_files()
    assert files, "deploy/k8s has no manifests"
    for p in files:
        docs = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        assert docs, f"{p.name} is empty"
        for d in docs:
            assert d.get("apiVersion") and d.get("kind"), f"{p.name}: object without kind"


# Pins down: the kustomization lists every manifest in deploy/k8s and nothing else.
def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    present = {p.name for p in k8s_files()} - {"kustomization.yaml"}
    assert listed == present, (f"not listed: {sorted(present - listed)}; "
                               f"listed but missing: {sorted(listed - present)}")
    ns = k8s_object("Namespace")
    assert kust["namespace"] == ns["metadata"]["name"] == "cwpp"


# Pins down: every compose build context and Dockerfile exists.
def test_compose_build_contexts_exist():
    built = [(n, s["build"]) for n, s in compose()["services"].items() if "build" in s]
    assert built, "no service builds our image"
    for name, b in built:
        b = {"context": b} if isinstance(b, str) else b
        ctx = (REPO / b.get("context", ".")).resolve()
        assert ctx.is_dir(), f"{name}: build context {ctx} missing"
        df = ctx / b.get("dockerfile", "Dockerfile")
        assert df.is_file(), f"{name}: dockerfile {df} missing"


# Pins down: the Dockerfile's COPY sources exist and .dockerignore does not hide them.
def test_dockerfile_copy_sources_exist():
    ignored = [l.strip() for l in DOCKERIGNORE.read_text().splitlines()
               if l.strip() and not l.startswith("#")]
    assert {".git", "build"} <= set(ignored), ".dockerignore must keep .git and build/ out"
    n = 0
    for stage in dockerfile_stages():
        for flags, srcs, _ in copy_instructions(stage):
            if "from" in flags:
                continue
            for src in srcs:
                n += 1
                rel = src.rstrip("/") or "."
                assert list(REPO.glob(rel)) or rel == ".", f"COPY source {src} missing in repo"
                for pat in ignored:
                    assert not fnmatch.fnmatch(rel, pat.rstrip("/")) and \
                        not rel.startswith(pat.rstrip("/") + "/"), \
                        f"COPY source {src} is excluded by .dockerignore ({pat})"
    assert n > 0


# Pins down: the build stage copies every repo path the top-level CMakeLists.txt compiles.
def test_dockerfile_build_stage_has_all_cmake_sources():
    copied = build_stage_copies()
    if "." in copied:
        return
    text = re.sub(r"#.*", "", (REPO / "CMakeLists.txt").read_text())
    optional = set(re.findall(r"add_subdirectory\(\s*([\w./-]+)", text))
    paths = set(re.findall(r"(?:\$\{CMAKE_SOURCE_DIR\}/)?\b([A-Za-z_][\w.-]*/[\w./-]+)", text))
    needed = {p for p in paths if (REPO / p).exists()
              and not any(p == o or p.startswith(o + "/") for o in optional)}
    assert needed, "found no source paths in CMakeLists.txt"
    for p in sorted(needed):
        assert any(p == c or p.startswith(c + "/") for c in copied), \
            f"CMakeLists.txt needs {p}, which the build stage does not COPY"
    assert "CMakeLists.txt" in copied


# Pins down: every command/entrypoint/CMD/healthcheck runs an installed CMake binary or tool.
def test_commands_reference_installed_binaries():
    targets, installed = cmake_executables(), image_binaries()
    runtime_pkgs = set(apt_packages(runtime_stage()))
    argvs = []
    for name, s in our_compose_services().items():
        # Docker runs entrypoint + command as one argv
        ep, cmd = s.get("entrypoint") or [], s.get("command") or []
        ep = shlex.split(ep) if isinstance(ep, str) else ep
        cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
        if ep or cmd:
            argvs.append((f"compose {name}.{'entrypoint+command' if ep else 'command'}",
                          ep + cmd))
        hc = s.get("healthcheck", {}).get("test")
        if hc and hc[0] in ("CMD", "CMD-SHELL"):
            argvs.append((f"compose {name}.healthcheck",
                          hc[1:] if hc[0] == "CMD" else ["sh", "-c", hc[1]]))
    for obj, _, c in our_k8s_containers():
        argv = (c.get("command") or []) + (c.get("args") or [])
        if argv:
            argvs.append((f"k8s {obj}/{c['name']}", argv))
    for op, arg in runtime_stage()[1]:
        if op in ("CMD", "ENTRYPOINT"):
            argvs.append((f"Dockerfile {op}", yaml.safe_load(arg) if arg.startswith("[")
                           else shlex.split(arg)))
    assert argvs
    seen_ours = set()
    for where, argv in argvs:
        for words in simple_commands(argv):
            cmd = words[0]
            if cmd.startswith("cwpp-") or cmd == "cwppctl":
                seen_ours.add(cmd)
                assert cmd in installed, f"{where}: {cmd} is not installed by the Dockerfile"
            elif cmd in SYSTEM_COMMANDS:
                pkg = SYSTEM_COMMANDS[cmd]
                assert pkg is None or pkg in runtime_pkgs, \
                    f"{where}: {cmd} needs package {pkg} in the runtime stage"
            else:
                assert cmd in SHELL_BUILTINS, f"{where}: unknown command {cmd}"
    # our binaries come from CMake unless the Dockerfile copies them from the repo
    from_repo = {os.path.basename(d.rstrip("/")) for f, _, d in copy_instructions(runtime_stage())
                 if "from" not in f}
    for cmd in seen_ours - from_repo:
        assert cmd in targets, f"{cmd} is neither a CMake executable nor copied from the repo"
    assert {x[1] for x in SERVICES} | {"cwpp-admin", "cwpp-migrate", "cwppctl"} <= seen_ours


# Pins down: every env var set for a service (compose, k8s ConfigMap/Secret) is in its --print-env.
@pytest.mark.parametrize("svc,binary,container,role,pwvar,secret", SERVICES)
def test_service_env_vars_are_known(svc, binary, container, role, pwvar, secret):
    known = ingest_known_env(binary)
    comp = set(env_map(compose()["services"][svc].get("environment")))
    assert comp - known == set(), f"compose {svc} sets unknown {sorted(comp - known)}"
    containers = [c for obj, _, c in our_k8s_containers() if obj == binary]
    assert containers, f"no {binary} container in deploy/k8s"
    for c in containers:
        names = k8s_env_names(c)
        assert names - known == set(), f"k8s {svc} gets unknown {sorted(names - known)}"


# Pins down: every Dockerfile ENV name is read by the service, cwpp-admin or deploy/migrate.
def test_image_env_vars_are_known():
    known = ingest_known_env()
    image_env = set()
    for op, arg in runtime_stage()[1]:
        if op == "ENV":
            image_env |= set(re.findall(r"(?:^|\s)(\w+)=", arg))
    verdict = {n: setup_env_known(n) for n in sorted(image_env - known)}
    unknown = [n for n, v in verdict.items() if v is False]
    assert not unknown, f"image ENV sets names nobody reads: {unknown}"
    unverified = [n for n, v in verdict.items() if v is None]
    if unverified:
        pytest.skip(f"deploy/migrate missing: cannot verify {unverified}")


# Pins down: every env var of the migrate/topics step is read by cwpp-admin or deploy/migrate.
def test_setup_env_vars_are_known():
    names = set(env_map(compose()["services"]["init"].get("environment")))
    for obj, _, c in our_k8s_containers():
        if obj == "cwpp-migrate":
            names |= {e["name"] for e in c.get("env", [])}
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    s = k8s_object("Secret", src["secretRef"]["name"])
                    names |= set(s.get("stringData", {})) | set(s.get("data", {}))
    verdict = {n: setup_env_known(n) for n in sorted(names)}
    unknown = [n for n, v in verdict.items() if v is False]
    assert not unknown, f"set for migrate/topics but read by nobody: {unknown}"
    unverified = [n for n, v in verdict.items() if v is None]
    if unverified:
        pytest.skip(f"deploy/migrate missing: cannot verify {unverified}")


# Pins down: each service's DSN (role, password, db, host) matches what the migration sets up.
@pytest.mark.parametrize("svc,binary,container,role,pwvar,secret", SERVICES)
def test_db_credentials_agree(svc, binary, container, role, pwvar, secret):
    svcs = compose()["services"]
    ing = dsn(env_map(svcs[svc]["environment"])["CWPP_PG_DSN"])
    init = env_map(svcs["init"]["environment"])
    assert ing["user"] == role and ing["user"] in service_roles()
    assert ing["password"] == init[pwvar]
    assert ing["host"] in svcs
    assert ing["dbname"] == env_map(svcs["postgres"]["environment"])["POSTGRES_DB"]
    assert dsn(init["CWPP_PG_ADMIN_DSN"])["host"] == ing["host"]
    sec_ing = k8s_object("Secret", secret)["stringData"]
    sec_adm = k8s_object("Secret", "cwpp-db-admin")["stringData"]
    k_ing = dsn(sec_ing["CWPP_PG_DSN"])
    assert k_ing["user"] == role
    assert k_ing["password"] == sec_adm[pwvar]
    assert "REPLACE" in k_ing["password"] and \
        "REPLACE" in dsn(sec_adm["CWPP_PG_ADMIN_DSN"])["password"], \
        "k8s secrets must hold obvious placeholders, not real-looking passwords"
    dep = k8s_object("Deployment", binary)
    c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == container)
    assert {"secretRef": {"name": secret}} in c["envFrom"], f"{binary} must use {secret}"


# Pins down: Kafka 3.9.x, advertising ingest's brokers, no auto-create; init makes ingest's topics.
def test_compose_kafka_and_topics_agree():
    svcs = compose()["services"]
    image = svcs["kafka"]["image"]
    assert re.fullmatch(r"apache/kafka:3\.9(\.\d+)?", image), image
    kenv = env_map(svcs["kafka"]["environment"])
    ienv = env_map(svcs["ingest"]["environment"])
    assert kenv["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kenv["KAFKA_ADVERTISED_LISTENERS"] == "SASL_SSL://" + ienv["CWPP_KAFKA_BROKERS"]
    for k in ("KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS",
              "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
              "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"):
        assert kenv.get(k), f"kafka: {k} missing"
    for k in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
              "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
              "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert kenv.get(k) == "1", f"kafka: {k} must be 1 on one node"
    admin = [w for w in simple_commands(svcs["init"]["command"])
             if w[0] == "cwpp-admin" and w[1] == "topics"]
    assert len(admin) == 1 and admin[0][1:3] == ["topics", "create"]
    args = admin[0]
    assert args[args.index("--brokers") + 1] == ienv["CWPP_KAFKA_BROKERS"]
    assert args[args.index("--prefix") + 1] == ienv["CWPP_TOPIC_PREFIX"]
    assert int(args[args.index("--partitions") + 1]) >= 1


# Pins down: start order (init after healthy deps, services after init) and the shared env.
def test_compose_ordering_and_shared_env():
    c = compose()
    svcs = c["services"]
    for dep in ("kafka", "postgres"):
        assert svcs["init"]["depends_on"][dep]["condition"] == "service_healthy"
        assert svcs[dep]["healthcheck"]["test"], f"{dep} has no healthcheck"
    assert svcs["init"]["restart"] == "no"
    assert "pg_isready" in " ".join(svcs["postgres"]["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in svcs["kafka"]["healthcheck"]["test"]
    shared = env_map(c["x-cwpp-service"]["environment"])
    assert shared
    for name, s in our_compose_services().items():
        env = env_map(s.get("environment"))
        assert all(env.get(k) == v for k, v in shared.items()), f"{name} lost the shared env"
        if name != "init":
            assert s["depends_on"]["init"]["condition"] == "service_completed_successfully"


# Pins down: compose healthcheck probes /healthz on the service's CWPP_HTTP_PORT, listening on 0.0.0.0.
@pytest.mark.parametrize("svc", [x[0] for x in SERVICES])
def test_compose_healthcheck_port(svc):
    s = compose()["services"][svc]
    env = env_map(s["environment"])
    urls = [w for w in s["healthcheck"]["test"] if w.startswith("http")]
    assert len(urls) == 1, s["healthcheck"]["test"]
    u = urlparse(urls[0])
    assert u.path == "/healthz" and u.port == int(env["CWPP_HTTP_PORT"])
    assert env["CWPP_HTTP_ADDRESS"] == "0.0.0.0"
    assert any((p.get("target") if isinstance(p, dict) else int(str(p).split(":")[-1]))
               == int(env["CWPP_HTTP_PORT"]) for p in s.get("ports", []))


# Pins down: k8s liveness /healthz, readiness /readyz, Service, scrape port: all on the service's port.
@pytest.mark.parametrize("binary,container", [(x[1], x[2]) for x in SERVICES])
def test_k8s_probes_and_ports(binary, container):
    cm = k8s_object("ConfigMap", "cwpp-config")["data"]
    port = int(cm["CWPP_HTTP_PORT"])
    assert cm["CWPP_HTTP_ADDRESS"] == "0.0.0.0", "kubelet probes the pod IP"
    dep = k8s_object("Deployment", binary)
    tmpl = dep["spec"]["template"]
    c = next(c for c in tmpl["spec"]["containers"] if c["name"] == container)
    ports = {p.get("name"): p["containerPort"] for p in c["ports"]}

    def resolve(p):
        return ports[p] if isinstance(p, str) else p

    assert port in ports.values()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert resolve(c["livenessProbe"]["httpGet"]["port"]) == port
    assert resolve(c["readinessProbe"]["httpGet"]["port"]) == port
    ann = tmpl["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/path"] == "/metrics"
    assert int(ann["prometheus.io/port"]) == port
    svc = k8s_object("Service", binary)
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["selector"].items() <= tmpl["metadata"]["labels"].items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items()
    assert any(resolve(p["targetPort"]) == port for p in svc["spec"]["ports"])
    assert dep["spec"]["replicas"] >= 2


# Pins down: numeric non-root USER matching runAsUser; every container locked down with limits.
def test_non_root_and_security_context():
    users = [arg for op, arg in runtime_stage()[1] if op == "USER"]
    assert users, "runtime stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]} must be a numeric non-root uid"
    containers = our_k8s_containers()
    assert {o for o, _, _ in containers} >= {x[1] for x in SERVICES} | {"cwpp-migrate"}
    for obj, spec, c in containers:
        psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
        if obj == "cwpp-enforcer":
            # the one root container: it changes the node's firewall and kills processes;
            # it gets only the capabilities that needs (ENFORCER_CAPS), and no escalation
            assert csc.get("runAsUser") == 0 and csc.get("allowPrivilegeEscalation") is False
            assert csc["capabilities"]["drop"] == ["ALL"]
            assert set(csc["capabilities"]["add"]) == ENFORCER_CAPS
            assert csc.get("readOnlyRootFilesystem") is True
            continue
        assert psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), obj
        assert str(csc.get("runAsUser", psc.get("runAsUser", uid))) == uid, obj
        assert csc.get("readOnlyRootFilesystem") is True, obj
        assert csc.get("allowPrivilegeEscalation") is False, obj
        assert csc.get("capabilities", {}).get("drop") == ["ALL"], obj
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["memory"], obj
    job = k8s_object("Job", "cwpp-migrate")
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0


# Pins down: the Job migrates, then creates topics on the ConfigMap's brokers and prefix.
def test_k8s_job_runs_migrate_then_topics():
    job = k8s_object("Job", "cwpp-migrate")
    c = job["spec"]["template"]["spec"]["containers"][0]
    cmds = simple_commands((c.get("command") or []) + (c.get("args") or []))
    firsts = [w[0] for w in cmds]
    assert firsts.index("cwpp-migrate") < firsts.index("cwpp-admin")
    admin = cmds[firsts.index("cwpp-admin")]
    vals = k8s_env_values(c)
    for flag, env in (("--brokers", "CWPP_KAFKA_BROKERS"), ("--prefix", "CWPP_TOPIC_PREFIX")):
        v = admin[admin.index(flag) + 1]
        assert v in (f"${env}", f"${{{env}}}", f"$({env})", vals.get(env)), f"{flag} {v}"
        assert vals.get(env), f"{env} not provided to the Job"


# Pins down: every shared library our binaries load comes from a runtime-stage package.
def test_runtime_stage_has_needed_libraries():
    cmd = [arg for op, arg in runtime_stage()[1] if op == "CMD"]
    assert cmd and "cwpp-ingest" in cmd[-1]
    targets = cmake_executables(in_image=True)
    bins = sorted(b for b in BIN.glob("cwpp-*") if b.name in image_binaries() & targets)
    if not bins:
        pytest.skip(f"no binaries of the image in {BIN}: build first")
    for tool in ("readelf", "dpkg", "ldconfig"):
        if shutil.which(tool) is None and not Path("/sbin/" + tool).exists():
            pytest.skip(f"{tool} not available")
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    cache = {}
    ldcache = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    for line in ldcache.splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m:
            cache.setdefault(m.group(1), m.group(3))
    pkgs = set(apt_packages(runtime_stage())) | {"libc6"}
    for b in bins:
        out = subprocess.run(["readelf", "-d", str(b)], capture_output=True, text=True).stdout
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
            path = cache.get(lib)
            assert path, f"{b.name}: {lib} not found by ldconfig"
            # merged /usr: dpkg may know the file under /lib or /usr/lib
            for cand in (os.path.realpath(path), path, re.sub(r"^/usr/lib/", "/lib/", path),
                         re.sub(r"^/lib/", "/usr/lib/", path)):
                owner = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if owner.returncode == 0:
                    break
            assert owner.returncode == 0, f"{b.name}: no package owns {path}"
            pkg = owner.stdout.split(":")[0]
            assert pkg in pkgs, f"{b.name} needs {lib} from {pkg}, not in the runtime stage"


# Pins down: every package the Dockerfile installs exists under that name in Debian 12.
def test_dockerfile_packages_exist_in_bookworm():
    if shutil.which("apt-cache") is None:
        pytest.skip("apt-cache not available")
    osr = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "VERSION_CODENAME=bookworm" not in osr:
        pytest.skip("not a Debian 12 host: package lists would be another release's")
    froms = [arg for op, arg in sum((s[1] for s in dockerfile_stages()), []) if op == "FROM"]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.M))
    for f in froms:
        image = f.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        assert image == "debian:bookworm-slim", f"stage FROM {image}"
    pkgs = sorted({p for s in dockerfile_stages() for p in apt_packages(s)})
    assert pkgs
    out = subprocess.run(["apt-cache", "show", "--no-all-versions"] + pkgs,
                         capture_output=True, text=True).stdout
    found = set(re.findall(r"^Package: (\S+)", out, re.M))
    missing = [p for p in pkgs if p not in found]
    assert not missing, f"not in Debian 12: {missing}"


# Pins down: `docker compose config` accepts the file (where the compose plugin exists).
def test_docker_compose_config():
    if shutil.which("docker") is None:
        pytest.skip("docker not installed")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed")
    r = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


# Pins down: the enforcement agent is deployed one per host (compose profile "agent", k8s
# DaemonSet) on the host network with NET_ADMIN, with env names it reads and no database.
def test_enforcer_agent_deployment():
    known = ingest_known_env("cwpp-enforcer")
    s = compose()["services"]["enforcer"]
    assert s["profiles"] == ["agent"] and s["user"] == "0:0"
    assert "NET_ADMIN" in s["cap_add"]
    env = env_map(s["environment"])
    assert set(env) - known == set(), f"compose enforcer sets unknown {sorted(set(env) - known)}"
    assert "CWPP_PG_DSN" not in env
    ds = k8s_object("DaemonSet", "cwpp-enforcer")
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    (c,) = [c for c in spec["containers"] if c["name"] == "enforcer"]
    names = k8s_env_names(c)
    assert names - known == set(), f"k8s enforcer gets unknown {sorted(names - known)}"
    assert "NET_ADMIN" in c["securityContext"]["capabilities"]["add"]
    asset = next(e for e in c["env"] if e["name"] == "CWPP_ENFORCER_ASSET_ID")
    assert asset["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


# Pins down: no credential is written inline where it does not belong: k8s containers take
# passwords and keys only from Secrets (no env value or ConfigMap entry holds a password or
# a private key), compose file secrets come from files, and no private key is committed.
def test_no_inline_secrets():
    def leaks(v):
        v = str(v or "")
        return "password=" in v.lower() or "PRIVATE KEY" in v
    for obj, _, c in our_k8s_containers():
        for e in c.get("env", []):
            assert not leaks(e.get("value")), f"k8s {obj}: {e['name']} holds a credential inline"
    for k, v in k8s_object("ConfigMap", "cwpp-config")["data"].items():
        assert not leaks(v), f"ConfigMap cwpp-config: {k} holds a credential"
    for name, sec in compose().get("secrets", {}).items():
        assert set(sec) == {"file"}, f"compose secret {name} must come from a file"
    if shutil.which("git") is None:
        pytest.skip("git not installed: cannot list the committed files")
    ls = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True)
    if ls.returncode != 0:
        pytest.skip("not a git checkout: cannot list the committed files")
    pem_key = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s+[A-Za-z0-9+/=]{40}")
    for rel in filter(None, ls.stdout.decode().split("\0")):
        p = REPO / rel
        if not p.is_file() or p.stat().st_size > 1_000_000:
            continue
        try:
            text = p.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        assert not pem_key.search(text), f"{rel} holds a private key"


# Pins down: the API serves TLS from key material mounted read-only from a Secret (k8s) or a
# compose file secret, on the port its Service and compose publish; the TLS Secret holds
# placeholders only; the migration sets the API role's password.
def test_api_tls_and_ports():
    # compose
    s = compose()["services"]["api"]
    env = env_map(s["environment"])
    mounted = {f"/run/secrets/{x if isinstance(x, str) else x['source']}" for x in s["secrets"]}
    assert {env["CWPP_API_TLS_CERT_FILE"], env["CWPP_API_TLS_KEY_FILE"]} <= mounted
    assert set(s["secrets"]) <= set(compose()["secrets"])
    api_ports = [p for p in s["ports"] if isinstance(p, dict) and
                 p.get("target") == int(env["CWPP_API_PORT"])]
    assert api_ports and all(p.get("host_ip") == "127.0.0.1" for p in api_ports), \
        "compose publishes the API on 127.0.0.1 only"
    assert env["CWPP_API_ADDRESS"] == "0.0.0.0", "Docker forwards to the container's address"
    assert "CWPP_PG_PASSWORD_API" in env_map(compose()["services"]["init"]["environment"])
    # k8s
    dep = k8s_object("Deployment", "cwpp-api")
    spec = dep["spec"]["template"]["spec"]
    (c,) = [c for c in spec["containers"] if c["name"] == "api"]
    vals = k8s_env_values(c)
    tls = k8s_object("Secret", "cwpp-api-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["stringData"]) == {"tls.crt", "tls.key"}
    assert all("REPLACE" in v for v in tls["stringData"].values()), \
        "the TLS Secret must hold obvious placeholders, not material"
    vols = {v["name"]: v for v in spec["volumes"]}
    (mount,) = [m for m in c["volumeMounts"]
                if vols[m["name"]].get("secret", {}).get("secretName") == "cwpp-api-tls"]
    assert mount.get("readOnly") is True, "the TLS material is mounted read-only"
    assert vols[mount["name"]]["secret"].get("defaultMode", 0o644) & 0o007 == 0, \
        "the key must not be world-readable"
    for var, key in (("CWPP_API_TLS_CERT_FILE", "tls.crt"), ("CWPP_API_TLS_KEY_FILE", "tls.key")):
        assert vals[var] == mount["mountPath"].rstrip("/") + "/" + key, var
    api_port = int(vals["CWPP_API_PORT"])
    ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
    assert api_port in ports.values()
    assert vals["CWPP_API_ADDRESS"] == "0.0.0.0"
    svc = k8s_object("Service", "cwpp-api")
    assert any((ports.get(p["targetPort"]) if isinstance(p["targetPort"], str)
                else p["targetPort"]) == api_port for p in svc["spec"]["ports"])
    assert "CWPP_PG_PASSWORD_API" in k8s_object("Secret", "cwpp-db-admin")["stringData"]


# ------------------------------------------------ transport security and least privilege

# Each part's Kafka principal: compose service / k8s object -> SASL user name.
PRINCIPALS = {"ingest": "cwpp-ingest", "whitelist-filter": "cwpp-whitelist",
              "correlator": "cwpp-correlator", "responder": "cwpp-responder",
              "exporter": "cwpp-exporter", "api": "cwpp-api", "enforcer": "cwpp-enforcer",
              "init": "cwpp-admin"}
K8S_PRINCIPALS = {"cwpp-ingest": "cwpp-ingest", "cwpp-whitelist-filter": "cwpp-whitelist",
                  "cwpp-correlator": "cwpp-correlator", "cwpp-responder": "cwpp-responder",
                  "cwpp-exporter": "cwpp-exporter", "cwpp-api": "cwpp-api",
                  "cwpp-enforcer": "cwpp-enforcer", "cwpp-migrate": "cwpp-admin"}
REQUIRED_VAR = re.compile(r"\$\{(\w+):\?[^}]*\}")


def compose_secret_path(service, path):
    """The compose secret a service reads at path (/run/secrets/NAME or a long-syntax
    target), or None."""
    for x in service.get("secrets", []):
        src = x if isinstance(x, str) else x["source"]
        target = f"/run/secrets/{src}" if isinstance(x, str) else \
            (x.get("target") if str(x.get("target", "")).startswith("/")
             else f"/run/secrets/{x.get('target', src)}")
        if target == path:
            return src
    return None


def k8s_file_source(spec, container, path):
    """(volume, key within it) a k8s container reads at path, through its volumeMounts."""
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    assert best is not None, f"{container['name']}: nothing mounted at {path}"
    return vols[best["name"]], path[len(best["mountPath"].rstrip("/")) + 1:]


def k8s_key_present(vol, key):
    """True when the ConfigMap or Secret volume vol provides key (items or whole object)."""
    for kind, ref in (("ConfigMap", "configMap"), ("Secret", "secret")):
        if ref in vol:
            name = vol[ref].get("name") or vol[ref].get("secretName")
            items = vol[ref].get("items")
            if items:
                key = next((i["key"] for i in items if i["path"] == key), None)
                if key is None:
                    return False
            obj = k8s_object(kind, name)
            return key in (obj.get("data") or {}) or key in (obj.get("stringData") or {})
    return False


# Pins down: every part of the pipeline talks to Kafka over SASL_SSL with SCRAM-SHA-512 as
# its own principal, its password from a required variable (compose) or a Secret (k8s),
# verifying the brokers with a CA file it really has.
def test_every_service_authenticates_to_kafka_as_itself():
    svcs = compose()["services"]
    seen = {}
    for name, principal in PRINCIPALS.items():
        s = svcs[name]
        env = env_map(s.get("environment"))
        assert env.get("CWPP_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", name
        assert env.get("CWPP_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512", name
        assert env.get("CWPP_KAFKA_SASL_USERNAME") == principal, name
        assert REQUIRED_VAR.fullmatch(env.get("CWPP_KAFKA_SASL_PASSWORD", "")), \
            f"compose {name}: the Kafka password must be a required variable"
        assert compose_secret_path(s, env.get("CWPP_KAFKA_SSL_CA_LOCATION")), \
            f"compose {name}: the broker CA is not a mounted secret"
        seen.setdefault(env["CWPP_KAFKA_SASL_PASSWORD"], name)
    assert len(seen) == len(PRINCIPALS), "each principal has a password of its own"
    kenv = env_map(svcs["kafka"]["environment"])
    assert "SASL_SSL" in kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert "PLAINTEXT:PLAINTEXT" not in kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert kenv["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kenv["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kenv["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    for n in {p.split("-", 1)[1].upper() for p in PRINCIPALS.values()}:
        assert REQUIRED_VAR.fullmatch(kenv.get(f"CWPP_KAFKA_PASSWORD_{n}", "")), \
            f"the broker lacks the credential of cwpp-{n.lower()}"
    # k8s
    users = {}
    for obj, spec, c in our_k8s_containers():
        if obj not in K8S_PRINCIPALS or c in spec.get("initContainers", []):
            continue
        vals, names = k8s_env_values(c), k8s_env_names(c)
        assert vals.get("CWPP_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", obj
        assert vals.get("CWPP_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512", obj
        assert vals.get("CWPP_KAFKA_SASL_USERNAME") == K8S_PRINCIPALS[obj], obj
        assert "CWPP_KAFKA_SASL_PASSWORD" in names, obj
        assert not any(e["name"] == "CWPP_KAFKA_SASL_PASSWORD" and "value" in e
                       for e in c.get("env", [])), f"{obj}: the password inline"
        src = [x["secretRef"]["name"] for x in c.get("envFrom", []) if "secretRef" in x
               and "CWPP_KAFKA_SASL_PASSWORD" in k8s_object(
                   "Secret", x["secretRef"]["name"]).get("stringData", {})]
        assert len(src) == 1, f"{obj}: the Kafka password from one Secret"
        users.setdefault(src[0], set()).add(obj)
        vol, key = k8s_file_source(spec, c, vals["CWPP_KAFKA_SSL_CA_LOCATION"])
        assert k8s_key_present(vol, key), f"{obj}: no broker CA at the path given"
    assert set(K8S_PRINCIPALS) <= {o for s in users.values() for o in s}
    assert all(len(objs) == 1 for objs in users.values()), "a Secret per principal"


# Pins down: no password has a default: compose requires each (${VAR:?...}) and the k8s
# Secrets hold placeholders only; no development password is written anywhere.
def test_no_default_passwords():
    text = COMPOSE.read_text()
    assert "cwpp-dev" not in text, "a development password in docker-compose.yml"
    for m in re.finditer(r"\$\{(\w*PASSWORD\w*)(:?[-?])", text):
        assert m.group(2) == ":?", f"{m.group(1)} has a default in docker-compose.yml"
    for name, s in compose()["services"].items():
        for k, v in env_map(s.get("environment")).items():
            if "PASSWORD" in k:
                assert REQUIRED_VAR.fullmatch(v), f"compose {name}: {k} = {v!r}"
            for pw in re.findall(r"password=(\S+)", v):
                assert REQUIRED_VAR.fullmatch(pw), f"compose {name}: {k} password {pw!r}"
    for p in k8s_files():
        assert "cwpp-dev" not in p.read_text(), f"a development password in {p.name}"
    for _, o in k8s_objects():
        if o["kind"] != "Secret":
            continue
        for k, v in o.get("stringData", {}).items():
            if "PASSWORD" in k or k.endswith(".key"):
                assert "REPLACE-ME" in v, f"Secret {o['metadata']['name']}: {k}"
            for pw in re.findall(r"password=(\S+)", v):
                assert "REPLACE-ME" in pw, f"Secret {o['metadata']['name']}: {k}"


# Pins down: every database client verifies the server (sslmode=verify-full) against a CA
# it really has; no DSN says otherwise (it would be refused); compose's server speaks TLS.
def test_pg_verify_full_with_a_ca():
    svcs = compose()["services"]
    for name, s in our_compose_services().items():
        env = env_map(s.get("environment"))
        assert env.get("CWPP_PG_SSLMODE") == "verify-full", name
        assert compose_secret_path(s, env.get("CWPP_PG_SSLROOTCERT")), \
            f"compose {name}: CWPP_PG_SSLROOTCERT is not a mounted secret"
        for k, v in env.items():
            assert "sslmode=" not in v or "sslmode=verify-full" in v, f"{name}: {k}"
    pg = svcs["postgres"]
    cmd = " ".join(pg["command"]) if isinstance(pg["command"], list) else pg["command"]
    assert "ssl=on" in cmd and "ssl_cert_file=/run/secrets/" in cmd and "ssl_key_file=" in cmd
    assert {"tls_server_cert", "tls_server_key"} <= set(pg["secrets"])
    cm = k8s_object("ConfigMap", "cwpp-config")["data"]
    assert cm["CWPP_PG_SSLMODE"] == "verify-full"
    for obj, spec, c in our_k8s_containers():
        if c in spec.get("initContainers", []) or obj == "cwpp-enforcer":
            continue
        vals = k8s_env_values(c)
        assert vals.get("CWPP_PG_SSLMODE") == "verify-full", obj
        vol, key = k8s_file_source(spec, c, vals["CWPP_PG_SSLROOTCERT"])
        assert k8s_key_present(vol, key), f"{obj}: no PostgreSQL CA at the path given"
        for k, v in vals.items():
            assert "sslmode=" not in str(v) or "sslmode=verify-full" in str(v), f"{obj}: {k}"
    for _, o in k8s_objects():
        if o["kind"] == "Secret":
            for k, v in o.get("stringData", {}).items():
                assert "sslmode=" not in v or "sslmode=verify-full" in v, k


# Pins down: the k8s Job creates the topics with replication 3, then the ACLs, as the
# admin principal; compose's init makes the ACLs too (replication 1: one broker).
def test_setup_creates_topics_with_replication_and_acls():
    job = k8s_object("Job", "cwpp-migrate")
    c = job["spec"]["template"]["spec"]["containers"][0]
    cmds = simple_commands((c.get("command") or []) + (c.get("args") or []))
    admin = [w for w in cmds if w[0] == "cwpp-admin"]
    verbs = [w[1] for w in admin]
    assert verbs == ["topics", "acls"], verbs
    topics = admin[0]
    vals = k8s_env_values(c)
    rf = topics[topics.index("--replication-factor") + 1] if "--replication-factor" in topics \
        else vals.get("CWPP_TOPIC_REPLICATION")
    assert rf == "3", f"replication factor {rf}"
    assert "CWPP_TOPIC_REPLICATION" in ADMIN_SRC.read_text(), \
        "cwpp-admin does not read CWPP_TOPIC_REPLICATION"
    assert vals.get("CWPP_KAFKA_SASL_USERNAME") == "cwpp-admin"
    init = compose()["services"]["init"]
    verbs = [w[1] for w in simple_commands(init["command"]) if w[0] == "cwpp-admin"]
    assert verbs == ["topics", "acls"], verbs


# Pins down: the responder signs with the key of Secret cwpp-action-signing, kept readable
# by its uid only; the enforcers verify with the public key of ConfigMap cwpp-action-verify.
def test_action_signing_keys():
    dep = k8s_object("Deployment", "cwpp-responder")
    spec = dep["spec"]["template"]["spec"]
    (c,) = [c for c in spec["containers"] if c["name"] == "responder"]
    vals = k8s_env_values(c)
    path = vals["CWPP_RESPONDER_SIGNING_KEY_FILE"]
    assert path == "/etc/cwpp/keys/action-signing.key"
    vol, key = k8s_file_source(spec, c, path)
    assert "emptyDir" in vol, "the key is copied to a private volume"
    (init,) = spec["initContainers"]
    assert init["command"][0] == "install" and "0400" in init["command"]
    src_vol, src_key = k8s_file_source(spec, init, init["command"][-2])
    assert src_vol["secret"]["secretName"] == "cwpp-action-signing"
    assert k8s_key_present(src_vol, src_key) and src_key == "action-signing.key"
    assert any(m["name"] == vol["name"] and init["command"][-1].startswith(m["mountPath"])
               for m in init["volumeMounts"])
    ds = k8s_object("DaemonSet", "cwpp-enforcer")
    spec = ds["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    path = k8s_env_values(c)["CWPP_ENFORCER_VERIFY_KEY_FILE"]
    assert path == "/etc/cwpp/keys/action-signing.pub"
    vol, key = k8s_file_source(spec, c, path)
    assert vol["configMap"]["name"] == "cwpp-action-verify" and k8s_key_present(vol, key)
    svcs = compose()["services"]
    assert compose_secret_path(svcs["responder"], env_map(svcs["responder"]["environment"])[
        "CWPP_RESPONDER_SIGNING_KEY_FILE"]) == "action_signing_key"
    assert compose_secret_path(svcs["enforcer"], env_map(svcs["enforcer"]["environment"])[
        "CWPP_ENFORCER_VERIFY_KEY_FILE"]) == "action_verify_key"


# Pins down: the enforcer DaemonSet gets what the agent needs and nothing more: the node's
# processes and network, exactly ENFORCER_CAPS (each with its reason in a comment), the
# node's / at /host for quarantine, scan and usermod, a hostPath state dir; not privileged.
def test_enforcer_daemonset_least_privilege():
    ds = k8s_object("DaemonSet", "cwpp-enforcer")
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostPID"] is True and spec["hostNetwork"] is True
    assert not spec.get("hostIPC"), "the agent needs no host IPC"
    (c,) = spec["containers"]
    assert not spec.get("initContainers")
    csc = c["securityContext"]
    assert csc.get("privileged") is not True
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert set(csc["capabilities"]["add"]) == ENFORCER_CAPS
    text = (K8S / "enforcer-daemonset.yaml").read_text()
    for cap in ENFORCER_CAPS:
        m = re.search(r"((?:^[ \t]*#[^\n]*\n)+)[ \t]*- " + cap + r"\s*$", text, re.M)
        assert m, f"capability {cap} has no comment giving its reason"
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: vols[m["name"]] for m in c["volumeMounts"]}
    host = {p: v["hostPath"]["path"] for p, v in mounts.items() if "hostPath" in v}
    assert host == {"/host": "/", "/var/lib/cwpp-enforcer": "/var/lib/cwpp-enforcer"}, host
    assert all("hostPath" not in v or v["hostPath"]["path"] in ("/", "/var/lib/cwpp-enforcer")
               for v in vols.values())
    assert set(mounts) == {"/host", "/var/lib/cwpp-enforcer", "/tmp", "/etc/cwpp/ca",
                           "/etc/cwpp/keys"}, sorted(mounts)
    assert all(m.get("readOnly") for m in c["volumeMounts"]
               if m["mountPath"] in ("/etc/cwpp/ca", "/etc/cwpp/keys"))
    vals = k8s_env_values(c)
    assert vals["CWPP_ENFORCER_HOST_ROOT"] == "/host"
    assert vals["CWPP_ENFORCER_USERMOD_ROOT"] == "/host"
    assert vals["CWPP_ENFORCER_STATE_DIR"] == "/var/lib/cwpp-enforcer"
    assert "CWPP_PG_DSN" not in vals, "the agent uses no database"
