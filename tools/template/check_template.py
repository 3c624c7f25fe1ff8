#!/usr/bin/env python3
"""Checks template.yaml against the Rust code it deploys, and a few security rules.

Run from the repository root (or pass --repo): `python tools/template/check_template.py template.yaml`.
Exits 1 with one line per problem, 0 with a summary of what was derived from the code.

What is derived from the code, not written down here:
- the Lambda binaries: crates whose src/main.rs calls `lambda_runtime::run` or `lambda_http::run`,
  named by their Cargo.toml;
- the environment variables each binary reads: the `*Settings::from_env` its main.rs calls, and
  the `pub const NAME: &str = "COCHL_..."` constants that function body names, directly or through
  the functions of settings.rs it calls (another settings type's `from_env` included); those read
  with `env.required(..)` are required, the others optional (crates/aws/src/settings.rs);
- the SDK calls each binary makes: the adapter types of crates/aws/src (structs holding an
  `aws_sdk_<service>::Client`), the SDK operations each of their methods calls on that client
  (following calls to other methods of the same type), and the adapter methods each binary's
  code calls on fields, parameters and variables of those types (or of type parameters bound by
  the port trait an adapter implements, `S: JobStore`), or through the free functions of
  crates/aws generic over those ports (e.g. `admission::reclaim_leaked_slots(&store, ..)`). A
  binary's code is its own crate's and that of the workspace crates its Cargo.toml
  `[dependencies]` name by path, directly or through `[workspace.dependencies]`, transitively
  (crates/aws and crates/core aside: the adapters, read as above, and the domain, which has no
  SDK): the sweeper settles jobs through on-result's handler, so on-result's calls are its own;
- the indexes a DynamoDB query names (`.index_name(CONST)`), whose ARNs the role must name;
- which object reads name a version: an adapter method whose request sets a version id
  (`.version_id(..)`, `.set_version_id(..)`) needs the version's action (VERSION_ACTIONS) when a
  call of the binary passes it something other than a literal `None` for its `version` parameter
  (a call through a crates/aws helper counts as naming one);
- the table's keys, indexes (hash and range keys, projection) and TTL attribute, from
  crates/aws/src/dynamo/provision.rs and schema.rs;
- the metrics the functions emit as Embedded Metric Format log lines (namespace CochlSense): the
  names written as `Metric::count("Name")`, `Metric { name: "Name", .. }`, `"Name": "Name"` in a
  `json!` declaration, or the first item of a pair in a `fn metric..` (emitted_metrics). Every
  CochlSense metric an alarm or the dashboard names must be one of them.

A function may leave an optional variable unset on purpose (the code then computes its value):
it says so, and why, in its Metadata, `cochl-check: {unset-environment: {NAME: why}}`. Variables
Lambda itself defines (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, ...) need no setting, and must not be set.

What is written down here (SDK_ACTIONS) is the SDK operation -> IAM action table, which is AWS's
mapping, not the project's: an operation the code calls that is missing from it, and not of the
plain `<prefix>:<Operation>` form, still shows as a missing permission. Likewise
EVENT_SOURCE_ACTIONS, what Lambda's poller does with the function's role for an `SQS` event of
the template: those actions are needed on exactly that event's queue.

Every queue a function consumes (an `SQS` event) must also be one a message cannot be lost from
or stuck in: a RedrivePolicy to a dead-letter queue of the template that keeps messages at least
as long, 14 days' retention, encryption, a visibility timeout of at least six times the
function's timeout, and partial batch responses (ReportBatchItemFailures) on the event.

Rules of the template alone, written down here with the AWS documentation they follow: a
variable set on several functions has the same value on all; a grant
letting a service reach the stack's resources names its one source (aws:SourceArn exact, and
aws:SourceAccount for S3); a role SageMaker assumes trusts it for the stack's account only
(aws:SourceAccount, aws:SourceArn), and every other service a role trusts is listed with why it
needs neither; cloudwatch:PutMetricData is pinned to a namespace that is not
AWS's; ECR image pulls name the account they read from; every alarm acts on a topic or a scaling
policy; a dashboard's body is JSON once substituted, and its metric graphs name their region,
stay within the grid's 24 columns and give their metrics distinct, lowercase-first ids.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the two keys read below, by pattern
    tomllib = None
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

#: IAM action prefix of each SDK crate (`aws_sdk_<crate>`).
SERVICE_PREFIX = {
    "dynamodb": "dynamodb",
    "s3": "s3",
    "sns": "sns",
    "sqs": "sqs",
    "sagemakerruntime": "sagemaker",
}

#: SDK operations whose IAM actions are not just `<prefix>:<Operation>`.
SDK_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # HeadObject is authorised by s3:GetObject. Without s3:ListBucket on the bucket, S3 answers
    # 403 instead of 404 for a missing key, and the code's "object is gone" branch never runs.
    ("s3", "HeadObject"): ("s3:GetObject", "s3:ListBucket"),
    # CopyObject has no action of its own: s3:GetObject on the source object (s3:GetObjectVersion
    # when the copy source names a versionId, as the code does on a versioned bucket) and
    # s3:PutObject on the destination (S3 API reference, CopyObject, "Permissions"). The
    # resources differ; the template's statements say which.
    ("s3", "CopyObject"): ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"),
}

#: Reads that name an object version are authorised by another action than reads of the current
#: version: "If you include a versionId in your request, you must have the s3:GetObjectVersion
#: permission" (S3 API reference, GetObject and HeadObject, "Permissions"). Needed when the code
#: sets a version id on the request (see `Adapter.versioned`); CopyObject names its source's
#: version inside the copy source, so SDK_ACTIONS lists the action for it outright.
VERSION_ACTIONS: dict[tuple[str, str], str] = {
    ("s3", "HeadObject"): "s3:GetObjectVersion",
    ("s3", "GetObject"): "s3:GetObjectVersion",
}

#: Transactions have no IAM action of their own: each item of one is authorised by the action of
#: its single-item twin (DynamoDB, "Using IAM with DynamoDB transactions"). So the action a
#: transaction needs depends on the kinds of items the code builds for it:
#: `TransactWriteItem::builder().put(..)` needs dynamodb:PutItem, and so on.
TRANSACTION_ITEMS: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("dynamodb", "TransactWriteItems"): ("TransactWriteItem", {
        "put": "dynamodb:PutItem",
        "update": "dynamodb:UpdateItem",
        "delete": "dynamodb:DeleteItem",
        "condition_check": "dynamodb:ConditionCheckItem",
    }),
    ("dynamodb", "TransactGetItems"): ("TransactGetItem", {"get": "dynamodb:GetItem"}),
}

#: What Lambda's event source mapping does with the function's role, per SAM event type, on the
#: event's queue. SAM adds no policy for them when the function names its own Role.
EVENT_SOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "SQS": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
}

#: Lambda's advice for a queue it polls: a visibility timeout of at least six times the function's
#: timeout, so a batch retried after a throttle does not become visible while still in work.
VISIBILITY_TIMEOUT_FACTOR = 6

#: SQS's longest retention, kept by every consumed queue: a backlog (the endpoint busy, the
#: function paused) waits up to 14 days instead of SQS's default 4.
QUEUE_RETENTION_SECONDS = 1209600

#: What SQS and Lambda assume when the template says nothing.
SQS_DEFAULTS = {"MessageRetentionPeriod": 345600, "VisibilityTimeout": 30}
LAMBDA_DEFAULT_TIMEOUT = 3

#: Environment variables Lambda defines in every function ("Defined runtime environment
#: variables", Lambda developer guide): the code may read them without the template setting them,
#: and Lambda refuses a function configuration that sets the reserved ones.
LAMBDA_RUNTIME_VARIABLES = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
}

#: Workspace crates that are not part of a binary's own code: crates/aws holds the adapters (read
#: as adapters), crates/core the domain (no SDK, no I/O).
SHARED_CRATES = {"aws", "core"}

#: Actions every Lambda function's role needs for its own log group.
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

#: Actions whose API takes no resource, so `Resource: "*"` is the only form.
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}

#: How a function's build is expected to look.
FUNCTION_SHAPE = {
    "Runtime": "provided.al2023",
    "Handler": "bootstrap",
    "Architectures": ["arm64"],
}

#: Condition operators that pin a key to the values given. The `...IfExists` forms (and the set
#: operators) let a request without the key through, so they do not count.
PINNING_OPERATORS = ("ArnEquals", "ArnLike", "StringEquals", "StringLike")

#: Service principals whose resource-policy grants must also name the source account: an S3
#: bucket's ARN carries no account, so aws:SourceArn alone would admit a bucket of that name
#: in another account (S3 user guide, "Granting permissions to publish event notification
#: messages to a destination").
SOURCE_ACCOUNT_SERVICES = {"s3.amazonaws.com"}

#: SAM event types whose generated AWS::Lambda::Permission has no SourceArn (measured with the
#: pinned aws-sam-translator): any source of that service could invoke the function.
SAM_EVENTS_WITHOUT_SOURCE_ARN = {
    # SAM sets SourceAccount only: naming the bucket would make the bucket's notification
    # depend on the permission and the permission on the bucket.
    "S3": "send the bucket's events to an SQS queue whose policy names the bucket by its spelled-out name",
    "AlexaSkill": "give the event a SkillId, or declare the AWS::Lambda::Permission yourself",
}

#: Services whose roles' trust policies must say for whom the service may assume them (the
#: confused deputy): aws:SourceAccount, the stack's account, and aws:SourceArn, an ARN of that
#: account. SageMaker sends both when it assumes a model's execution role ("Cross-service
#: confused deputy prevention", SageMaker developer guide). Services that do not document the
#: keys for role assumption are left out: a key the service does not send denies the role.
TRUST_SOURCE_SERVICES = {"sagemaker.amazonaws.com"}

#: Services trusted without those keys, and why. Every service principal a role of the template
#: trusts is in one of the two tables, so a new one is a decision, not an oversight.
TRUST_WITHOUT_SOURCE_KEYS = {
    "lambda.amazonaws.com": (
        "the Lambda developer guide's execution-role trust policy has no condition keys; only a "
        "function whose configuration names the role (iam:PassRole) runs with it"
    ),
    "batchoperations.s3.amazonaws.com": (
        "the S3 user guide's Batch Operations trust policy has no condition keys; only a job whose "
        "creator may pass the role (s3:CreateJob, iam:PassRole, principals of this account) uses it"
    ),
}

#: CloudWatch namespaces reserved for AWS services: PutMetricData refuses them to everyone else
#: (CloudWatch API reference, PutMetricData, Namespace).
RESERVED_NAMESPACE_PREFIX = "AWS/"

#: ECR actions that read a repository's images: a grant must name the account whose
#: repositories it opens, not every account's.
IMAGE_PULL_ACTIONS = {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}

NO_VALUE = {"Ref": "AWS::NoValue"}


# --------------------------------------------------------------------------------------------
# Rust source reading
# --------------------------------------------------------------------------------------------


def strip_rust(text: str) -> str:
    """Removes comments and blanks string and char literal contents (keeping the quotes), so
    braces and words inside them cannot confuse the brace matching and searches below."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        prev = text[i - 1] if i > 0 else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "/" and nxt == "*":
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
            continue
        raw = re.match(r'(?:br|r)(#*)"', text[i:]) if not (prev.isalnum() or prev == "_") else None
        if raw:
            hashes = raw.group(1)
            end = text.find('"' + hashes, i + raw.end())
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
            continue
        if c == "'":
            char = re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:])
            if char:
                out.append("' '")
                i += char.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def matching_brace(text: str, open_at: int) -> int:
    """Index of the `}` closing the `{` at `open_at` (in stripped source)."""
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError("unbalanced braces")


def strip_tests(text: str) -> str:
    """Removes `#[cfg(test)]` items (test modules and functions) from stripped source."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]", text)
        if not m:
            return text
        brace, semi = text.find("{", m.end()), text.find(";", m.end())
        if semi >= 0 and (brace < 0 or semi < brace):
            end = semi
        else:
            end = matching_brace(text, brace)
        text = text[: m.start()] + text[end + 1 :]


def normalise_calls(text: str) -> str:
    """Joins method chains split over lines: `self\\n    .client\\n    .query()` -> `self.client.query()`."""
    return re.sub(r"\s*\.\s*(?=[A-Za-z_])", ".", text)


def read_code(path: Path) -> str:
    return normalise_calls(strip_tests(strip_rust(path.read_text(encoding="utf-8"))))


def scan_rust(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The source with comments and the contents of string and char literals blanked, at the
    same length (so offsets match the source), and the string literals outside comments as
    (start, end, contents): start is the opening quote's offset, end past the closing one."""
    out = list(text)
    literals: list[tuple[int, int, str]] = []

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, len(out))):
            if out[k] != "\n":
                out[k] = " "

    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        prev = text[i - 1] if i > 0 else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if c == "/" and nxt == "*":
            start, depth, i = i, 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            blank(start, i)
            continue
        raw = re.match(r'(?:br|r)(#*)"', text[i:]) if not (prev.isalnum() or prev == "_") else None
        if raw:
            hashes = raw.group(1)
            open_at = i + raw.end() - 1
            end = text.find('"' + hashes, open_at + 1)
            end = n if end < 0 else end
            literals.append((open_at, end + 1, text[open_at + 1 : end]))
            blank(open_at + 1, end)
            i = end + 1 + len(hashes)
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            literals.append((i, j + 1, text[i + 1 : j]))
            blank(i + 1, j)
            i = j + 1
            continue
        if c == "'":
            char = re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:])
            if char:
                blank(i + 1, i + char.end() - 1)
                i += char.end()
                continue
        i += 1
    return "".join(out), literals


def test_spans(masked: str) -> list[tuple[int, int]]:
    """The `#[cfg(test)]` items of a source blanked by scan_rust, as (start, end) offsets."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]", masked):
        brace, semi = masked.find("{", m.end()), masked.find(";", m.end())
        end = semi if semi >= 0 and (brace < 0 or semi < brace) else matching_brace(masked, brace)
        spans.append((m.start(), end + 1))
    return spans


#: A metric name: what CloudWatch shows, PascalCase by the project's convention.
METRIC_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")


def emitted_metrics(text: str) -> set[str]:
    """The metric names a Rust source declares for its EMF lines (crates/aws/src/metrics.rs),
    outside tests, in the shapes the code writes them:
    - `Metric::count("Name")`, and a helper of the same name, `count("Name", n)`;
    - `Metric { name: "Name", .. }`;
    - `"Name": "Name"` in a `json!` object (an EMF metric declaration, as in `in_flight_line`);
    - `("Name", ..)`, a pair whose first item is the name, inside a `fn metric..` (an outcome's
      metric and its dimension, as submit's `RecordOutcome::metric`).
    A name passed in a variable is found where its literal is written in one of these shapes."""
    masked, literals = scan_rust(text)
    tests = test_spans(masked)
    live = [lit for lit in literals if not any(a <= lit[0] < b for a, b in tests)]
    metric_fns = []
    for m in re.finditer(r"\bfn\s+metrics?\w*\s*[<(]", masked):
        brace, semi = masked.find("{", m.end()), masked.find(";", m.end())
        if brace >= 0 and (semi < 0 or brace < semi):
            metric_fns.append((brace, matching_brace(masked, brace)))
    names: set[str] = set()
    for k, (start, end, value) in enumerate(live):
        if not METRIC_NAME.fullmatch(value):
            continue
        before = masked[max(0, start - 300) : start]
        after = masked[end : end + 40]
        prev = live[k - 1] if k else None
        if (
            re.search(r"\bcount\s*\(\s*$", before)
            or re.search(r"\bMetric\s*\{[^{}]*\bname\s*:\s*$", before)
            or (prev is not None and prev[2] == "Name" and re.fullmatch(r"\s*:\s*", masked[prev[1] : start]))
            or (
                re.search(r"\(\s*$", before)
                and re.match(r"\s*,", after)
                and any(a < start < b for a, b in metric_fns)
            )
        ):
            names.add(value)
    return names


def code_metrics(crates: Path) -> set[str]:
    """The metric names every crate's source (src/, tests aside) declares: emitted_metrics."""
    names: set[str] = set()
    for path in sorted(crates.glob("*/src/**/*.rs")):
        names |= emitted_metrics(path.read_text(encoding="utf-8"))
    return names


def blocks(text: str, header: str) -> Iterator[tuple[re.Match[str], str]]:
    """Yields (match, body) for every `header ... {` block; body excludes the braces."""
    for m in re.finditer(header, text):
        open_at = text.find("{", m.end() - 1)
        close = matching_brace(text, open_at)
        yield m, text[open_at + 1 : close]


@dataclass
class FnItem:
    """A `fn` item with a body: its name, its signature (generics, parameters, return type, where
    clause) and its body (without the braces); `start` is where `fn` is in the text."""

    name: str
    header: str
    body: str
    start: int


def fn_items(text: str) -> list[FnItem]:
    """Every `fn name(...) ... { body }` of a text, nested ones included, in order."""
    found: list[FnItem] = []
    for m in re.finditer(r"\bfn\s+(\w+)\s*(?:<[^{;]*?>)?\s*\(", text):
        # The body starts at the first `{` outside parentheses and brackets after the name; a
        # `;` there first means a declaration without body (`[u8; 4]` sits inside brackets).
        depth, k = 0, m.end() - 1
        while k < len(text):
            c = text[k]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif depth == 0 and c in "{;":
                break
            k += 1
        if k < len(text) and text[k] == "{":
            found.append(FnItem(m.group(1), text[m.start() : k], text[k + 1 : matching_brace(text, k)], m.start()))
    return found


def functions_in(body: str) -> dict[str, str]:
    """`fn name(...) ... { body }` items directly in an impl body."""
    found: dict[str, str] = {}
    for item in fn_items(body):
        found.setdefault(item.name, item.body)
    return found


def item_spans(text: str, header: str) -> list[tuple[int, int]]:
    """(start, end) of every `header ... { ... }` item of a text."""
    spans = []
    for m in re.finditer(header, text):
        open_at = text.find("{", m.end() - 1)
        if open_at >= 0:
            spans.append((m.start(), matching_brace(text, open_at)))
    return spans


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


# --------------------------------------------------------------------------------------------
# The code model
# --------------------------------------------------------------------------------------------


@dataclass
class Adapter:
    """A type of crates/aws holding one SDK client."""

    name: str
    service: str  # the SDK crate, e.g. "dynamodb"
    # method -> SDK operations it calls directly, other methods of the type it calls, indexes
    ops: dict[str, set[str]] = field(default_factory=dict)
    calls: dict[str, set[str]] = field(default_factory=dict)
    indexes: dict[str, set[str]] = field(default_factory=dict)
    # method -> (transaction operation, item kind) of the transaction items it builds
    items: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    opaque: dict[str, str] = field(default_factory=dict)  # method -> why it cannot be analysed
    # method -> SDK operations whose request it gives a version id (`.set_version_id(..)`), and
    # the position of its parameter naming the version (`version_id: Option<&str>`, not
    # counting `self`), if it has one
    versioned: dict[str, set[str]] = field(default_factory=dict)
    version_param: dict[str, int] = field(default_factory=dict)

    def closure(self, method: str) -> tuple[set[str], set[str], set[tuple[str, str]], list[str], set[str]]:
        """SDK operations, indexes, transaction items and problems of a method and what it calls
        on self, and the methods visited (itself included)."""
        seen, todo = set(), [method]
        ops: set[str] = set()
        indexes: set[str] = set()
        items: set[tuple[str, str]] = set()
        problems: list[str] = []
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            ops |= self.ops.get(m, set())
            indexes |= self.indexes.get(m, set())
            items |= self.items.get(m, set())
            if m in self.opaque:
                problems.append(f"{self.name}::{m} {self.opaque[m]}")
            todo.extend(self.calls.get(m, set()))
        return ops, indexes, items, problems, seen


@dataclass
class Binary:
    """A Lambda binary of the workspace."""

    name: str
    crate: Path
    http: bool  # lambda_http
    settings_type: str | None
    env: set[str] = field(default_factory=set)
    required_env: set[str] = field(default_factory=set)  # read with `env.required(..)`
    # the workspace crates whose code counts as the binary's (its own first)
    sources: list[Path] = field(default_factory=list)
    uses: set[tuple[str, str]] = field(default_factory=set)  # (adapter, method)
    sdk_calls: set[tuple[str, str]] = field(default_factory=set)  # (service, Operation)
    # (service, transaction Operation, item kind), e.g. ("dynamodb", "TransactWriteItems", "put")
    transaction_items: set[tuple[str, str, str]] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    # (service, Operation) of the SDK calls it makes naming an object version
    versioned_calls: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class TableShape:
    hash_key: str
    range_key: str
    # name -> (hash, range, projection); range "" for a hash-only index, projection as
    # CloudFormation spells it (ALL, KEYS_ONLY, INCLUDE)
    indexes: dict[str, tuple[str, str, str]]
    attributes: dict[str, str]  # name -> type
    pay_per_request: bool
    ttl_attribute: str | None = None  # the attribute UpdateTimeToLive enables, if any


@dataclass
class Code:
    binaries: dict[str, Binary]
    adapters: dict[str, Adapter]
    table: TableShape | None
    problems: list[str]
    # the names of the CochlSense metrics the functions' EMF lines declare (emitted_metrics)
    metrics: set[str] = field(default_factory=set)


def parse_constants(text: str) -> dict[str, str]:
    """`pub const NAME: &str = "value";` (read from raw source: the values are strings)."""
    return dict(re.findall(r'pub\s+const\s+(\w+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"\s*;', text))


@dataclass
class SettingsReads:
    """The environment variables a settings type's `from_env` reads, and which of them it
    requires (`env.required(NAME)`: the function fails to start without them)."""

    reads: set[str]
    required: set[str]


def parse_settings(path: Path) -> tuple[dict[str, SettingsReads], list[str]]:
    """Settings type -> the environment variables its `from_env` reads, directly or through the
    functions of the same file it calls (`helper(env)`, `Self::helper(env)`, and another settings
    type's `OtherSettings::from_env(env)`)."""
    raw = path.read_text(encoding="utf-8")
    constants = {k: v for k, v in parse_constants(raw).items() if re.fullmatch(r"[A-Z][A-Z0-9_]*", v)}
    code = read_code(path)
    everywhere = functions_in(code)
    impls = {m.group(1): functions_in(body) for m, body in blocks(code, r"\bimpl\s+(\w+Settings)\s*\{")}
    impls = {name: fns for name, fns in impls.items() if "from_env" in fns}
    found: dict[str, SettingsReads] = {}
    problems: list[str] = []
    for settings_type, fns in impls.items():
        # (where, function): where is a settings type (its impl block) or "" (the whole file)
        seen: set[tuple[str, str]] = {(settings_type, "from_env")}
        todo = [(settings_type, fns["from_env"])]
        words: set[str] = set()
        required: set[str] = set()
        while todo:
            own, fn_body = todo.pop()
            words |= set(re.findall(r"\b[A-Z][A-Z0-9_]*\b", fn_body))
            required |= set(re.findall(r"\brequired\(\s*([A-Z][A-Z0-9_]*)\s*\)", fn_body))
            called = [(own, n) for n in re.findall(r"\bSelf::(\w+)\s*\(", fn_body)]
            called += [("", n) for n in re.findall(r"(?<![\w.:])(\w+)\s*\(", fn_body) if n != "from_env"]
            called += re.findall(r"(?<![\w.:])(\w+Settings)::(\w+)\s*\(", fn_body)
            for where, name in called:
                table = impls.get(where, {}) if where else everywhere
                if (where, name) not in seen and name in table:
                    seen.add((where, name))
                    todo.append((where, table[name]))
        found[settings_type] = SettingsReads(
            reads={constants[w] for w in words if w in constants},
            required={constants[w] for w in required if w in constants},
        )
    if not found:
        problems.append(f"{path}: found no `impl *Settings {{ fn from_env }}`")
    return found, problems


def parse_adapters(aws_src: Path) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    files = sorted(aws_src.rglob("*.rs"))
    codes = {f: read_code(f) for f in files}
    for f, code in codes.items():
        services = re.findall(r"\buse\s+aws_sdk_(\w+)::Client\s*;", code)
        if len(services) != 1:
            continue
        for m, body in blocks(code, r"\bpub\s+struct\s+(\w+)\s*\{"):
            if re.search(r"\bclient\s*:\s*Client\b", body):
                adapters[m.group(1)] = Adapter(m.group(1), services[0])
    for f, code in codes.items():
        for m, body in blocks(code, r"\bimpl(?:\s*<[^>]*>)?\s+(\w+)\s*\{"):
            adapter = adapters.get(m.group(1))
            if adapter is None:
                continue
            for name, fn_body in functions_in(body).items():
                direct = set(re.findall(r"\bself\.client(?:\(\))?\.(\w+)\(", fn_body))
                adapter.ops[name] = {pascal(op) for op in direct}
                # The client used in place (`self.client().query()`) is an SDK call read above,
                # not a call of the `client()` accessor; any other use of it is (opaque below).
                leftover = re.sub(r"\bself\.client(?:\(\))?\.(\w+)\(", "", fn_body)
                adapter.calls[name] = set(re.findall(r"\bself\.(\w+)\(", leftover)) | set(
                    re.findall(r"\bSelf::(\w+)\(", leftover)
                )
                # An index is named directly (`.index_name(TAG_INDEX)`) or handed to the one
                # pagination loop in a listing's description (`index: TAG_INDEX`).
                adapter.indexes[name] = set(re.findall(r"\.index_name\((\w+)\)", fn_body)) | set(
                    re.findall(r"\bindex:\s*([A-Z][A-Z0-9_]*)\b", fn_body)
                )
                adapter.items[name] = {
                    (op, kind)
                    for (service, op), (builder, kinds) in TRANSACTION_ITEMS.items()
                    if service == adapter.service
                    for kind in re.findall(rf"\b{builder}::builder\(\)\.(\w+)\(", fn_body)
                    if kind in kinds
                }
                if re.search(r"\bself\.client\b", leftover):
                    adapter.opaque[name] = (
                        "hands its SDK client to other code, so its SDK calls cannot be read"
                    )
                adapter.versioned[name] = versioned_operations(fn_body)
            for item in fn_items(body):
                params = parameter_names(item.header)
                position = next((i for i, p in enumerate(params) if "version" in p), None)
                if position is not None:
                    adapter.version_param.setdefault(item.name, position)
    return adapters


def versioned_operations(fn_body: str) -> set[str]:
    """The SDK operations a method body calls with a version id set on the request: the chain
    from `self.client.op(` to its `.send()` sets `.version_id(..)` or `.set_version_id(..)`."""
    found = set()
    for m in re.finditer(r"\bself\.client(?:\(\))?\.(\w+)\(", fn_body):
        end = fn_body.find(".send()", m.end())
        chain = fn_body[m.end() : end if end >= 0 else len(fn_body)]
        if re.search(r"\.(?:set_)?version_id\(", chain):
            found.add(pascal(m.group(1)))
    return found


def split_arguments(text: str) -> list[str]:
    """The top-level, comma-separated parts of an argument list (without its parentheses)."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def parameter_names(header: str) -> list[str]:
    """The parameter names of a `fn` signature, without `self`."""
    open_at = header.find("(")
    if open_at < 0:
        return []
    depth, close = 0, len(header)
    for k in range(open_at, len(header)):
        depth += {"(": 1, ")": -1}.get(header[k], 0)
        if depth == 0:
            close = k
            break
    names = []
    for part in split_arguments(header[open_at + 1 : close]):
        m = re.match(r"(?:mut\s+)?(\w+)\s*:", part)
        if m and m.group(1) != "self":
            names.append(m.group(1))
    return names


def call_arguments(text: str, open_at: int) -> list[str]:
    """The arguments of the call whose `(` is at `open_at`."""
    depth = 0
    for k in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return split_arguments(text[open_at + 1 : k])
    return split_arguments(text[open_at + 1 :])


def names_a_version(
    text: str, bindings: dict[str, set[str]], adapter: str, method: str, position: int | None
) -> bool:
    """Whether a call of `adapter.method` in `text` may name a version: some call passes
    anything but a literal `None` at the method's version parameter, or no call can be read
    (the method is reached through a helper, or has no version parameter)."""
    if position is None:
        return True
    calls = 0
    for name, types in bindings.items():
        if adapter not in types:
            continue
        for m in re.finditer(rf"\b{re.escape(name)}\.{re.escape(method)}\(", text):
            calls += 1
            arguments = call_arguments(text, m.end() - 1)
            if position >= len(arguments) or arguments[position] != "None":
                return True
    return calls == 0


def crate_binaries(crates: Path) -> Iterator[tuple[str, Path, bool]]:
    for cargo in sorted(crates.glob("*/Cargo.toml")):
        main = cargo.parent / "src" / "main.rs"
        if not main.exists():
            continue
        code = read_code(main)
        lambda_runtime = "lambda_runtime::run(" in code
        lambda_http = "lambda_http::run(" in code
        if not (lambda_runtime or lambda_http):
            continue
        manifest = read_manifest(cargo.read_text(encoding="utf-8"))
        names = [b["name"] for b in manifest.get("bin", []) if b.get("path", "src/main.rs") == "src/main.rs"]
        yield (names[0] if names else manifest["package"]["name"]), cargo.parent, lambda_http


def read_manifest(text: str) -> dict[str, Any]:
    """The package name, `[[bin]]` tables, `[dependencies]` and `[workspace.dependencies]` of a
    Cargo.toml (without tomllib: only the `path` and `workspace` keys of a dependency)."""
    if tomllib is not None:
        return tomllib.loads(text)
    tables = re.split(r"^\s*(\[\[?[\w.-]+\]\]?)\s*$", text, flags=re.M)
    manifest: dict[str, Any] = {"package": {}, "bin": [], "dependencies": {}, "workspace": {"dependencies": {}}}

    def dependencies(body: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for name, inline in re.findall(r"^\s*([\w-]+)\s*=\s*\{([^}]*)\}", body, flags=re.M):
            spec: dict[str, Any] = {}
            path = re.search(r'\bpath\s*=\s*"([^"]*)"', inline)
            if path:
                spec["path"] = path.group(1)
            if re.search(r"\bworkspace\s*=\s*true\b", inline):
                spec["workspace"] = True
            found[name] = spec
        for name in re.findall(r"^\s*([\w-]+)\.workspace\s*=\s*true\b", body, flags=re.M):
            found[name] = {"workspace": True}
        return found

    for header, body in zip(tables[1::2], tables[2::2]):
        values = dict(re.findall(r'^\s*([\w-]+)\s*=\s*"([^"]*)"', body, flags=re.M))
        if header == "[package]":
            manifest["package"] = values
        elif header == "[[bin]]":
            manifest["bin"].append(values)
        elif header == "[dependencies]":
            manifest["dependencies"] = dependencies(body)
        elif header == "[workspace.dependencies]":
            manifest["workspace"]["dependencies"] = dependencies(body)
    return manifest


def parse_ports(aws_src: Path, adapters: dict[str, Adapter]) -> dict[str, set[str]]:
    """Port trait -> the adapters of crates/aws implementing it (`impl JobStore for DynamoStore`),
    so code generic over a port (`S: JobStore`) is read as calling that adapter."""
    ports: dict[str, set[str]] = {}
    for f in sorted(aws_src.rglob("*.rs")):
        for trait, ty in re.findall(r"\bimpl(?:\s*<[^>]*>)?\s+(\w+)\s+for\s+(\w+)\s*\{", read_code(f)):
            if ty in adapters:
                ports.setdefault(trait, set()).add(ty)
    return ports


def type_bindings(text: str, adapters: dict[str, Adapter], ports: dict[str, set[str]]) -> dict[str, set[str]]:
    """Names of `text` bound to adapter types: `name: Adapter` (fields, parameters, struct literal
    fields `store: DynamoStore::new(..)`), `name: &impl Port`, `name: S` where the type parameter
    `S` is bound by a port trait somewhere in the text (`<S: JobStore>`, `where S: JobStore`), and
    `let name = Adapter::new(..)`."""
    kinds: dict[str, set[str]] = {ty: {ty} for ty in adapters}
    kinds.update({trait: set(tys) for trait, tys in ports.items()})
    for var, bounds in re.findall(r"(?<![\w:])([A-Z]\w*)\s*:\s*((?:\??[\w:']+\s*\+\s*)*\??[\w:']+)", text):
        for bound in re.split(r"\s*\+\s*", bounds):
            trait = bound.split("::")[-1].lstrip("?")
            if trait in ports and var not in adapters:
                kinds.setdefault(var, set()).update(ports[trait])
    names = "|".join(map(re.escape, sorted(kinds, key=len, reverse=True))) or r"\A\b"
    bindings: dict[str, set[str]] = {}
    for name, ty in re.findall(
        rf"\b([a-z_]\w*)\s*:\s*&?\s*(?:'\w+\s+)?(?:mut\s+)?(?:impl\s+)?(?:[\w:]+::)?({names})\b(?!::)", text
    ):
        bindings.setdefault(name, set()).update(kinds[ty])
    types = "|".join(map(re.escape, adapters)) or r"\A\b"
    for name, ty in re.findall(
        rf"\b([a-z_]\w*)\s*:\s*(?:[\w:]+::)?({types})::new\(", text
    ) + re.findall(rf"\blet\s+(?:mut\s+)?(\w+)\s*=\s*(?:[\w:]+::)?({types})::new\(", text):
        bindings.setdefault(name, set()).add(ty)
    return bindings


def method_uses(text: str, bindings: dict[str, set[str]], adapters: dict[str, Adapter]) -> set[tuple[str, str]]:
    """(adapter, method) for every `name.method(` of `text` whose name is bound to an adapter
    that has the method."""
    uses: set[tuple[str, str]] = set()
    for name, tys in bindings.items():
        for method in re.findall(rf"\b{re.escape(name)}\.(\w+)\(", text):
            uses |= {(ty, method) for ty in tys if method in adapters[ty].ops}
    return uses


@dataclass
class Helper:
    """A free function of crates/aws taking adapters or ports as parameters (e.g.
    `admission::reclaim_leaked_slots(store: &S, ..)`): code calling it makes its adapter calls."""

    name: str
    uses: set[tuple[str, str]]
    calls: set[str]  # other helpers it calls


def parse_helpers(aws_src: Path, adapters: dict[str, Adapter], ports: dict[str, set[str]]) -> dict[str, Helper]:
    """The free functions of crates/aws (outside impl and trait blocks) that call adapter methods
    on their parameters, directly or through one another, by name."""
    candidates: dict[str, Helper] = {}
    bodies: dict[str, str] = {}
    for f in sorted(aws_src.rglob("*.rs")):
        code = read_code(f)
        inside = item_spans(code, r"\b(?:impl|trait)\b[^{;]*\{")
        for item in fn_items(code):
            if any(a <= item.start <= b for a, b in inside):
                continue  # a method: adapters' are read as adapters, others take no adapter
            bindings = type_bindings(item.header, adapters, ports)
            candidates[item.name] = Helper(item.name, method_uses(item.body, bindings, adapters), set())
            bodies[item.name] = item.body
    for name, helper in candidates.items():
        helper.calls = {n for n in candidates if n != name and calls_function(bodies[name], n)}

    # Keep those that reach an adapter call, directly or through another helper.
    def reaches(name: str, seen: set[str]) -> bool:
        h = candidates[name]
        return bool(h.uses) or any(reaches(c, seen | {name}) for c in h.calls if c not in seen)

    return {n: h for n, h in candidates.items() if reaches(n, set())}


def calls_function(text: str, name: str, qualified_only: bool = False) -> bool:
    """Whether `text` calls the free function `name` (`name(..)` or `path::name(..)`), not a
    method of that name (`x.name(..)`) nor its definition (`fn name(..)`)."""
    for m in re.finditer(rf"(\bfn\s+)?(?<![.\w])((?:\w+::)*){re.escape(name)}\s*(?:::<[^>]*>\s*)?\(", text):
        if m.group(1):
            continue
        if qualified_only and not m.group(2):
            continue
        return True
    return False


def helper_uses(code: str, helpers: dict[str, Helper]) -> set[tuple[str, str]]:
    """The adapter calls a binary's code makes through the helpers of crates/aws it calls. A
    bare call counts unless the code defines a function of that name itself (then only a
    path-qualified call, `admission::name(..)`, is the helper)."""
    uses: set[tuple[str, str]] = set()
    todo = [
        n for n in helpers
        if calls_function(code, n, qualified_only=bool(re.search(rf"\bfn\s+{re.escape(n)}\b", code)))
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        uses |= helpers[name].uses
        todo.extend(helpers[name].calls)
    return uses


def workspace_dependencies(crate: Path, repo: Path) -> list[Path]:
    """The workspace crates whose code counts as the binary crate's: itself, then the crates its
    Cargo.toml `[dependencies]` name by path (`{ path = ".." }`, or `.workspace = true` with a
    path in the root's `[workspace.dependencies]`), transitively, without crates/aws and
    crates/core. Dev- and build-dependencies never ship in the binary."""
    root_manifest = repo / "Cargo.toml"
    root = read_manifest(root_manifest.read_text(encoding="utf-8")) if root_manifest.exists() else {}
    shared = ((root.get("workspace") or {}).get("dependencies")) or {}
    crates = (repo / "crates").resolve()
    order: list[Path] = []
    todo = [crate.resolve()]
    while todo:
        here = todo.pop(0)
        if here in order:
            continue
        order.append(here)
        manifest_path = here / "Cargo.toml"
        if not manifest_path.exists():
            continue
        manifest = read_manifest(manifest_path.read_text(encoding="utf-8"))
        for name, spec in (manifest.get("dependencies") or {}).items():
            if not isinstance(spec, dict):
                continue
            if "path" in spec:
                target = (here / spec["path"]).resolve()
            elif spec.get("workspace") is True and isinstance(shared.get(name), dict) and "path" in shared[name]:
                target = (repo / shared[name]["path"]).resolve()
            else:
                continue
            if target.parent == crates and target.name not in SHARED_CRATES:
                todo.append(target)
    return order


def adapter_uses(
    crate: Path,
    adapters: dict[str, Adapter],
    ports: dict[str, set[str]] | None = None,
    helpers: dict[str, Helper] | None = None,
    sources: list[Path] | None = None,
    versioned: set[tuple[str, str]] | None = None,
) -> tuple[set[tuple[str, str]], list[str]]:
    """(adapter, method) pairs a binary's code calls, and problems. Its code is that of
    `sources` (default: the crate alone; see workspace_dependencies). `versioned`, if given,
    receives the pairs whose calls may name an object version (see names_a_version)."""
    versioned = set() if versioned is None else versioned
    ports = ports or {}
    problems: list[str] = []
    code = "\n".join(
        read_code(f) for source in (sources or [crate]) for f in sorted((source / "src").rglob("*.rs"))
    )
    bindings = type_bindings(code, adapters, ports)
    direct = method_uses(code, bindings, adapters)
    uses = direct | helper_uses(code, helpers or {})
    versioned.clear()
    for ty, method in uses:
        if not any(adapters[ty].versioned.get(m) for m in adapters[ty].closure(method)[4]):
            continue
        position = adapters[ty].version_param.get(method) if (ty, method) in direct else None
        if names_a_version(code, bindings, ty, method, position):
            versioned.add((ty, method))
    types = "|".join(map(re.escape, adapters)) or r"\A\b"
    constructed = set(re.findall(rf"\b({types})::new\(", code))
    for ty in sorted(constructed):
        if not any(t == ty for t, _ in uses):
            problems.append(
                f"{crate.name}: builds a {ty} but no call of one of its methods was recognised "
                "(bind it to a field, parameter or `let` of that type and call methods on it)"
            )
    return uses, problems


#: The SDK's `ProjectionType` variants as CloudFormation spells them.
PROJECTIONS = {"All": "ALL", "KeysOnly": "KEYS_ONLY", "Include": "INCLUDE"}


def parse_table(aws_src: Path) -> tuple[TableShape | None, list[str]]:
    """The table `create_table` of provision.rs creates, and what of it could not be read. An
    index is built by a function of provision.rs (`index(NAME, PK, SK)`, `keys_only_index(NAME,
    PK)`) whose body names its parameters in `.index_name(..)` and `key(.., KeyType::Hash|Range)`
    and sets one `ProjectionType`; the call's arguments name the index and its keys."""
    provision = aws_src / "dynamo" / "provision.rs"
    schema = aws_src / "dynamo" / "schema.rs"
    if not (provision.exists() and schema.exists()):
        return None, []
    names = parse_constants(schema.read_text(encoding="utf-8"))
    code = read_code(provision)
    items = {item.name: item for item in fn_items(code)}
    body = items["create_table"].body if "create_table" in items else ""
    problems: list[str] = []

    def resolve(ident: str) -> str:
        return names.get(ident.strip(), ident.strip())

    keys = dict(
        (kind, resolve(name)) for name, kind in re.findall(r"\.key_schema\(key\((\w+),\s*KeyType::(\w+)\)", body)
    )
    builders: dict[str, tuple[list[str], str, str, str, str]] = {}  # fn -> (params, name, hash, range, projection)
    for item in items.values():
        if "GlobalSecondaryIndex::builder()" not in item.body:
            continue
        params = re.findall(r"(\w+)\s*:", item.header.split("(", 1)[1]) if "(" in item.header else []
        name = re.search(r"\.index_name\((\w+)\)", item.body)
        hash_key = re.search(r"\bkey\((\w+),\s*KeyType::Hash\)", item.body)
        range_key = re.search(r"\bkey\((\w+),\s*KeyType::Range\)", item.body)
        projection = re.findall(r"\bProjectionType::(\w+)", item.body)
        builders[item.name] = (
            params,
            name.group(1) if name else "",
            hash_key.group(1) if hash_key else "",
            range_key.group(1) if range_key else "",
            PROJECTIONS.get(projection[0], projection[0]) if len(projection) == 1 else "",
        )
    indexes: dict[str, tuple[str, str, str]] = {}
    for call in re.findall(r"\.global_secondary_indexes\(([^;]*?)\)\??\)", body):
        m = re.fullmatch(r"\s*(\w+)\((.*)", call)
        builder = builders.get(m.group(1)) if m else None
        if builder is None or not builder[1] or not builder[2] or not builder[4]:
            problems.append(
                f"{provision}: cannot read the index built by `{call.strip()})`: build each index with "
                "a function of provision.rs that names its parameters in .index_name(..) and "
                "key(.., KeyType::..) and sets one ProjectionType"
            )
            continue
        params, name, hash_key, range_key, projection = builder
        args = dict(zip(params, (a.strip() for a in m.group(2).split(","))))

        def arg(param: str) -> str:
            return resolve(args.get(param, param)) if param else ""

        if not all(re.fullmatch(r"\w+", args.get(q, "")) for q in (name, hash_key, range_key) if q):
            problems.append(
                f"{provision}: cannot read the index built by `{call.strip()})`: name the index and its "
                "keys with constants of schema.rs"
            )
            continue
        indexes[arg(name)] = (arg(hash_key), arg(range_key), projection)
    loop = re.search(r"for\s+\w+\s+in\s+\[([^\]]*)\]\s*\{(.*?)ScalarAttributeType::(\w+)", body, re.S)
    attributes: dict[str, str] = {}
    if loop:
        kind = {"S": "S", "N": "N", "B": "B"}.get(loop.group(3), loop.group(3))
        attributes = {resolve(x.strip()): kind for x in loop.group(1).split(",") if x.strip()}
    ttl = None
    if ".update_time_to_live()" in body:
        spec = re.search(
            r"TimeToLiveSpecification::builder\(\)((?:\.\w+\([^()]*\))*)", body
        )
        attribute = re.search(r"\.attribute_name\((\w+)\)", spec.group(1)) if spec else None
        if attribute and re.search(r"\.enabled\(true\)", spec.group(1)):
            ttl = resolve(attribute.group(1))
        else:
            problems.append(
                f"{provision}: create_table calls update_time_to_live, but its attribute cannot be read "
                "(TimeToLiveSpecification::builder().attribute_name(CONST).enabled(true))"
            )
    return TableShape(
        hash_key=keys.get("Hash", ""),
        range_key=keys.get("Range", ""),
        indexes=indexes,
        attributes=attributes,
        pay_per_request="BillingMode::PayPerRequest" in body,
        ttl_attribute=ttl,
    ), problems


def load_code(repo: Path) -> Code:
    crates = repo / "crates"
    aws_src = crates / "aws" / "src"
    problems: list[str] = []
    settings, settings_problems = parse_settings(aws_src / "settings.rs")
    problems += settings_problems
    adapters = parse_adapters(aws_src)
    if not adapters:
        problems.append(f"{aws_src}: found no adapter type (a struct with `client: Client`)")
    ports = parse_ports(aws_src, adapters)
    helpers = parse_helpers(aws_src, adapters, ports)
    binaries: dict[str, Binary] = {}
    for name, crate, http in crate_binaries(crates):
        main = read_code(crate / "src" / "main.rs")
        used = re.findall(r"\b(\w+Settings)::from_env\b", main)
        settings_type = used[0] if used else None
        binary = Binary(name, crate, http, settings_type)
        if settings_type is None:
            problems.append(f"{name}: its main.rs calls no `*Settings::from_env`")
        elif settings_type not in settings:
            problems.append(f"{name}: {settings_type}::from_env not found in crates/aws/src/settings.rs")
        else:
            binary.env = settings[settings_type].reads
            binary.required_env = settings[settings_type].required
        binary.sources = workspace_dependencies(crate, repo)
        versioned: set[tuple[str, str]] = set()
        binary.uses, use_problems = adapter_uses(crate, adapters, ports, helpers, binary.sources, versioned)
        problems += use_problems
        for ty, method in sorted(binary.uses):
            ops, indexes, items, opaque, reached = adapters[ty].closure(method)
            if (ty, method) in versioned:
                binary.versioned_calls |= {
                    (adapters[ty].service, op) for m in reached for op in adapters[ty].versioned.get(m, set())
                }
            problems += [f"{name}: calls {p}" for p in opaque]
            service = adapters[ty].service
            binary.sdk_calls |= {(service, op) for op in ops}
            binary.indexes |= indexes
            binary.transaction_items |= {(service, op, kind) for op, kind in items if op in ops}
            for op in sorted(ops):
                if (service, op) in TRANSACTION_ITEMS and not any(o == op for o, _ in items):
                    builder = TRANSACTION_ITEMS[(service, op)][0]
                    problems.append(
                        f"{name}: {ty}::{method} calls {op}, but none of the methods it reaches builds its "
                        f"items ({builder}::builder().<kind>(..)), so the actions it needs cannot be read"
                    )
        binaries[name] = binary
    schema_names = parse_constants((aws_src / "dynamo" / "schema.rs").read_text(encoding="utf-8")) if (
        aws_src / "dynamo" / "schema.rs"
    ).exists() else {}
    for b in binaries.values():
        b.indexes = {schema_names.get(i, i) for i in b.indexes}
    if not binaries:
        problems.append(f"{crates}: found no Lambda binary (src/main.rs calling lambda_runtime::run or lambda_http::run)")
    table, table_problems = parse_table(aws_src)
    return Code(binaries, adapters, table, problems + table_problems, metrics=code_metrics(crates))


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    if (service, operation) in SDK_ACTIONS:
        return SDK_ACTIONS[(service, operation)]
    return (f"{SERVICE_PREFIX.get(service, service)}:{operation}",)


def binary_actions(binary: Binary) -> dict[str, str]:
    """IAM action -> the SDK call needing it, for every SDK call of a binary (a transaction's
    through the kinds of items the code builds for it)."""
    needed: dict[str, str] = {}
    for service, op in sorted(binary.sdk_calls):
        if (service, op) in TRANSACTION_ITEMS:
            kinds = TRANSACTION_ITEMS[(service, op)][1]
            for s, o, kind in sorted(binary.transaction_items):
                if (s, o) == (service, op):
                    needed.setdefault(kinds[kind], f"the SDK call {op} ({kind} items)")
            continue
        for action in iam_actions(service, op):
            needed.setdefault(action, f"the SDK call {op}")
    for service, op in sorted(binary.versioned_calls):
        if (service, op) in VERSION_ACTIONS:
            needed.setdefault(VERSION_ACTIONS[(service, op)], f"the SDK call {op} naming an object version")
    return needed


# --------------------------------------------------------------------------------------------
# Template reading
# --------------------------------------------------------------------------------------------


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml  # the tools venv (make tools-venv)

    return to_plain(cfn_yaml.load(str(path)))


def loads_template(text: str) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    return to_plain(cfn_yaml.loads(text))


def to_plain(node: Any) -> Any:
    """cfn-lint's nodes (with line marks) as plain dicts, lists and strings."""
    return json.loads(json.dumps(node))


def merge_globals(global_value: Any, local: Any) -> Any:
    """SAM's Globals rule: maps merge (the function wins per key), lists concatenate, other values
    are replaced by the function's."""
    if isinstance(global_value, dict) and isinstance(local, dict):
        merged = dict(global_value)
        for k, v in local.items():
            merged[k] = merge_globals(global_value[k], v) if k in global_value else v
        return merged
    if isinstance(global_value, list) and isinstance(local, list):
        return global_value + local
    return local


def branches(value: Any) -> Iterator[Any]:
    """Every value `value` can take under the template's conditions (both sides of Fn::If),
    without AWS::NoValue."""
    if isinstance(value, dict) and list(value) == ["Fn::If"] and len(value["Fn::If"]) == 3:
        for side in value["Fn::If"][1:]:
            yield from branches(side)
    elif value != NO_VALUE:
        yield value


def as_list(value: Any) -> list[Any]:
    out: list[Any] = []
    for v in branches(value):
        for item in v if isinstance(v, list) else [v]:
            out.extend(branches(item))
    return out


def logical_id(ref: Any) -> str | None:
    """The logical id a Ref or GetAtt (either form) names."""
    if isinstance(ref, dict):
        if "Ref" in ref:
            return ref["Ref"]
        if "Fn::GetAtt" in ref:
            att = ref["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


@dataclass
class Function:
    logical_id: str
    props: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def binary(self) -> str | None:
        return (self.metadata.get("BuildProperties") or {}).get("Binary")


@dataclass
class QueueEvent:
    """An `SQS` event of a function: the event source mapping from a queue."""

    name: str
    props: dict[str, Any]
    queue: str | None  # the queue's logical id, when the event names it by Ref/GetAtt


def queue_events(fn: Function) -> list[QueueEvent]:
    out = []
    for name, event in (fn.props.get("Events") or {}).items():
        if isinstance(event, dict) and event.get("Type") == "SQS":
            props = event.get("Properties") or {}
            out.append(QueueEvent(name, props, logical_id(props.get("Queue"))))
    return out


def number(value: Any) -> int | None:
    """A literal integer of the template (YAML may give it as a string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def template_functions(template: dict[str, Any]) -> list[Function]:
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    out = []
    for lid, res in (template.get("Resources") or {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            props = merge_globals(globals_, res.get("Properties") or {})
            out.append(Function(lid, props, res.get("Metadata") or {}))
    return out


def statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def actions_of(statement: dict[str, Any]) -> list[str]:
    return [a for a in as_list(statement.get("Action")) if isinstance(a, str)]


def role_statements(template: dict[str, Any], role_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Statements of a role's inline policies and of the AWS::IAM::Policy resources attached to it."""
    resources = template.get("Resources") or {}
    role = resources.get(role_id) or {}
    props = role.get("Properties") or {}
    found: list[dict[str, Any]] = []
    problems: list[str] = []
    for policy in as_list(props.get("Policies")):
        found += statements(policy.get("PolicyDocument") if isinstance(policy, dict) else None)
    if props.get("ManagedPolicyArns"):
        problems.append(f"{role_id}: managed policies cannot be checked against the code; use inline statements")
    for lid, res in resources.items():
        if res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            rp = res.get("Properties") or {}
            if role_id in {logical_id(r) for r in as_list(rp.get("Roles"))}:
                found += statements(rp.get("PolicyDocument"))
    return found, problems


def all_policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, policy document) for every IAM and resource policy of the template."""
    for lid, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        kind = res.get("Type", "")
        if kind == "AWS::IAM::Role":
            for policy in as_list(props.get("Policies")):
                if isinstance(policy, dict):
                    yield f"{lid} ({policy.get('PolicyName')})", policy.get("PolicyDocument")
        elif kind in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::SNS::TopicPolicy",
            "AWS::SQS::QueuePolicy",
        ):
            yield lid, props.get("PolicyDocument")
        elif kind == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies")):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield f"{lid} (Policies)", policy


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def check_binaries(template: dict[str, Any], code: Code) -> list[str]:
    problems = []
    functions = template_functions(template)
    named: dict[str, list[str]] = {}
    for fn in functions:
        if not fn.binary:
            problems.append(f"{fn.logical_id}: no Metadata.BuildProperties.Binary (which workspace binary is it?)")
            continue
        named.setdefault(fn.binary, []).append(fn.logical_id)
    for binary in sorted(code.binaries):
        if binary not in named:
            problems.append(f"binary {binary} ({code.binaries[binary].crate.name}) has no function in the template")
    for binary, ids in sorted(named.items()):
        if binary not in code.binaries:
            problems.append(f"{', '.join(ids)}: builds binary {binary}, which no crate of the workspace defines as a Lambda")
        if len(ids) > 1:
            problems.append(f"binary {binary} is deployed by more than one function: {', '.join(ids)}")
    return problems


def check_build(template: dict[str, Any]) -> list[str]:
    problems = []
    for fn in template_functions(template):
        if fn.metadata.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{fn.logical_id}: Metadata.BuildMethod must be rust-cargolambda")
        for key, want in FUNCTION_SHAPE.items():
            if fn.props.get(key) != want:
                problems.append(f"{fn.logical_id}: {key} is {fn.props.get(key)!r}, expected {want!r}")
        if (fn.props.get("LoggingConfig") or {}).get("LogFormat") != "JSON":
            problems.append(f"{fn.logical_id}: LoggingConfig.LogFormat must be JSON")
    return problems


def check_environment(template: dict[str, Any], code: Code) -> list[str]:
    problems = []
    every_read = set().union(*(b.env for b in code.binaries.values())) if code.binaries else set()
    for fn in template_functions(template):
        binary = code.binaries.get(fn.binary or "")
        if binary is None:
            continue
        label = f"{fn.logical_id} ({binary.name})"
        variables = ((fn.props.get("Environment") or {}).get("Variables") or {})
        set_names = set(variables)
        unset = (((fn.metadata.get("cochl-check") or {}).get("unset-environment")) or {})
        if not isinstance(unset, dict):
            problems.append(f"{label}: Metadata.cochl-check.unset-environment must map variable names to why")
            unset = {}
        for name, why in sorted(unset.items()):
            if not (isinstance(why, str) and why.strip()):
                problems.append(f"{label}: Metadata.cochl-check.unset-environment.{name} must say why it is unset")
            if name not in binary.env:
                problems.append(f"{label}: leaves {name} unset on purpose, but {binary.settings_type}::from_env does not read it")
            elif name in binary.required_env:
                problems.append(
                    f"{label}: leaves {name} unset on purpose, but {binary.settings_type}::from_env requires it "
                    "(env.required): the function would fail to start"
                )
            if name in set_names:
                problems.append(f"{label}: sets {name}, which its Metadata.cochl-check.unset-environment says it leaves unset")
        for name in sorted(binary.env - set_names - set(unset) - LAMBDA_RUNTIME_VARIABLES):
            problems.append(
                f"{label}: environment variable {name} is read by "
                f"{binary.settings_type}::from_env but not set in the template"
            )
        for name in sorted(set_names & LAMBDA_RUNTIME_VARIABLES):
            problems.append(f"{label}: sets {name}, which Lambda itself defines (a reserved variable)")
        for name in sorted(n for n in set_names - binary.env if n.startswith("COCHL_")):
            where = "another function" if name in every_read else "no function"
            problems.append(
                f"{label}: sets {name}, which {binary.settings_type}::from_env "
                f"does not read ({where} reads it)"
            )
        if "RUST_LOG" not in set_names:
            problems.append(f"{label}: RUST_LOG is not set")
    return problems


def check_shared_settings(template: dict[str, Any]) -> list[str]:
    """A variable set on several functions has one value: the stack has one table, one margin,
    one object size limit (the backfill remerges with on-result's margins, and refuses what submit
    would reject). The values are compared as the template writes them."""
    problems = []
    values: dict[str, dict[str, list[str]]] = {}  # name -> value (as JSON) -> functions
    for fn in template_functions(template):
        variables = (fn.props.get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            if name.startswith("COCHL_"):
                values.setdefault(name, {}).setdefault(json.dumps(value, sort_keys=True), []).append(fn.logical_id)
    for name, seen in sorted(values.items()):
        if len(seen) > 1:
            spelled = "; ".join(f"{', '.join(ids)}: {value}" for value, ids in sorted(seen.items()))
            problems.append(f"{name} differs between functions ({spelled}); set it from the same parameter or value")
    return problems


def check_permissions(template: dict[str, Any], code: Code) -> list[str]:
    problems = []
    for fn in template_functions(template):
        binary = code.binaries.get(fn.binary or "")
        if binary is None:
            continue
        label = f"{fn.logical_id} ({binary.name})"
        role_id = logical_id(fn.props.get("Role"))
        if role_id is None:
            problems.append(
                f"{label}: no Role: give it its own AWS::IAM::Role (!GetAtt Role.Arn) so its "
                "permissions can be checked against its SDK calls"
            )
            continue
        stmts, role_problems = role_statements(template, role_id)
        problems += [f"{label}: {p}" for p in role_problems]
        granted: dict[str, list[dict[str, Any]]] = {}
        for s in stmts:
            if s.get("Effect") == "Allow":
                for a in actions_of(s):
                    granted.setdefault(a, []).append(s)
        needed = binary_actions(binary)
        sdk_actions = set(needed)
        for action in LOG_ACTIONS:
            needed.setdefault(action, "its log group")
        # Event source mappings: these actions on exactly the events' queues (checked below).
        event_queues: dict[str, dict[str, str]] = {}  # action -> queue -> event
        for event in queue_events(fn):
            for action in EVENT_SOURCE_ACTIONS["SQS"]:
                needed.setdefault(action, f"its SQS event {event.name}")
                event_queues.setdefault(action, {})[event.queue or "?"] = event.name
        on_failure = ((fn.props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
        if isinstance(on_failure, dict):
            destination = {"SQS": "sqs:SendMessage", "SNS": "sns:Publish", "Lambda": "lambda:InvokeFunction",
                           "EventBridge": "events:PutEvents"}.get(on_failure.get("Type", ""))
            if destination:
                needed.setdefault(destination, "its on-failure destination")
        for action in sorted(set(needed) - set(granted)):
            problems.append(f"{label}: its role does not allow {action}, needed for {needed[action]}")
        for action in sorted(set(granted) - set(needed)):
            problems.append(
                f"{label}: its role allows {action}, which matches no SDK call or event source of the function "
                f"(it calls: {', '.join(sorted(op for _, op in binary.sdk_calls)) or 'nothing'})"
            )
        for action, queues in sorted(event_queues.items()):
            grants = granted.get(action, [])
            if not grants:
                continue  # reported above as not allowed
            named = {logical_id(r) for s in grants for r in as_list(s.get("Resource"))}
            for queue, event in sorted(queues.items()):
                if queue not in named:
                    problems.append(
                        f"{label}: its role allows {action}, but not on {queue}, the queue of its SQS "
                        f"event {event} (name it by !GetAtt {queue}.Arn)"
                    )
            if action in sdk_actions:
                continue  # the code calls it too, on queues of its own
            for s in grants:
                for r in as_list(s.get("Resource")):
                    if logical_id(r) not in queues:
                        problems.append(
                            f"{label}: its role allows {action} on {logical_id(r) or json.dumps(r)}, which is "
                            "the queue of none of its SQS events, and no SDK call of the function needs it"
                        )
        for index in sorted(binary.indexes):
            resources = json.dumps([s.get("Resource") for s in granted.get("dynamodb:Query", [])])
            if f"/index/{index}" not in resources and "/index/*" not in resources:
                problems.append(
                    f"{label}: queries the index {index}, but no dynamodb:Query statement names "
                    f"<table ARN>/index/{index}"
                )
    return problems


def check_policy_shapes(template: dict[str, Any]) -> list[str]:
    problems = []
    for where, document in all_policy_documents(template):
        for s in statements(document):
            if s.get("Effect") != "Allow":
                continue  # a broad Deny (e.g. s3:* without TLS) only takes away
            sid = s.get("Sid", "?")
            actions = actions_of(s)
            for a in actions:
                if "*" in a:
                    problems.append(f"{where} statement {sid}: action {a!r} is a wildcard; name single actions")
            if "NotAction" in s or "NotResource" in s:
                problems.append(f"{where} statement {sid}: NotAction/NotResource grant more than they name")
            resources = as_list(s.get("Resource"))
            if "*" in resources:
                broad = [a for a in actions if a not in STAR_RESOURCE_ACTIONS]
                if broad:
                    problems.append(
                        f"{where} statement {sid}: Resource \"*\" for {', '.join(broad)}, whose API "
                        "takes a resource; name it"
                    )
    return problems


def service_principals(principal: Any) -> list[str]:
    """The service principals of a statement's Principal (`{"Service": ..}`), or of an
    AWS::Lambda::Permission's Principal (a string such as `s3.amazonaws.com`)."""
    if isinstance(principal, str):
        return [principal] if "." in principal and ":" not in principal else []
    if isinstance(principal, dict):
        return [p for p in as_list(principal.get("Service")) if isinstance(p, str)]
    return []


def template_text(value: Any) -> str:
    """A value of the template as the text it becomes: a literal, the pattern of an Fn::Sub, or
    `${Name}` for a Ref or GetAtt (a resource's own ARN or name is one exact value)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            return sub[0] if isinstance(sub, list) and sub and isinstance(sub[0], str) else str(sub)
        lid = logical_id(value)
        if lid is not None:
            return "${" + lid + "}"
    return json.dumps(value)


def pinned_values(statement: dict[str, Any], key: str) -> list[Any]:
    """The values a statement's Condition pins `key` to (case-insensitive, as IAM reads keys)
    with one of PINNING_OPERATORS; [] when it does not pin it."""
    found: list[Any] = []
    for operator, keys in (statement.get("Condition") or {}).items():
        if operator not in PINNING_OPERATORS or not isinstance(keys, dict):
            continue
        for name, value in keys.items():
            if name.lower() == key.lower():
                found += as_list(value)
    return found


def is_exact(value: Any) -> bool:
    """A value with no wildcard: it names one resource."""
    return not any(c in template_text(value) for c in "*?")


def names_own_account(value: Any) -> bool:
    """Whether a value is (or is an ARN naming) the stack's account: `${AWS::AccountId}` or a
    literal 12-digit account."""
    text = template_text(value)
    return "${AWS::AccountId}" in text or bool(re.fullmatch(r"\d{12}", text) or re.search(r":\d{12}:", text))


def check_service_principal_sources(template: dict[str, Any]) -> list[str]:
    """Every grant that lets an AWS service reach the stack's resources (a statement of a queue,
    topic or bucket policy, an AWS::Lambda::Permission, an event SAM turns into one) names the one
    source allowed: aws:SourceArn (SourceArn) pinned to an exact ARN, and for S3, whose bucket
    ARNs carry no account, aws:SourceAccount (SourceAccount) too. Without them any resource of
    that service, in any account for S3, could send to it."""
    problems = []
    for lid, res in (template.get("Resources") or {}).items():
        kind = res.get("Type", "")
        props = res.get("Properties") or {}
        if kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            for s in statements(props.get("PolicyDocument")):
                if s.get("Effect") != "Allow":
                    continue
                sid = s.get("Sid", "?")
                for service in service_principals(s.get("Principal")):
                    arns = pinned_values(s, "aws:SourceArn")
                    if not arns or not all(is_exact(v) for v in arns):
                        problems.append(
                            f"{lid} statement {sid}: lets {service} in without aws:SourceArn pinned to the exact "
                            "ARN of its source (ArnEquals, no wildcard): any resource of that service could send"
                        )
                    if service in SOURCE_ACCOUNT_SERVICES:
                        accounts = pinned_values(s, "aws:SourceAccount")
                        if not accounts or not all(names_own_account(v) for v in accounts):
                            problems.append(
                                f"{lid} statement {sid}: lets {service} in without aws:SourceAccount pinned to "
                                "the stack's account (StringEquals: !Ref AWS::AccountId); its ARNs name no account"
                            )
        elif kind == "AWS::Lambda::Permission":
            for service in service_principals(props.get("Principal")):
                arn = props.get("SourceArn")
                if arn is None or not is_exact(arn):
                    problems.append(
                        f"{lid}: lets {service} invoke the function without SourceArn naming the exact source"
                    )
                if service in SOURCE_ACCOUNT_SERVICES and not (
                    props.get("SourceAccount") is not None and names_own_account(props.get("SourceAccount"))
                ):
                    problems.append(f"{lid}: lets {service} invoke the function without SourceAccount (the stack's account)")
    for fn in template_functions(template):
        for name, event in (fn.props.get("Events") or {}).items():
            kind = event.get("Type") if isinstance(event, dict) else None
            if kind in SAM_EVENTS_WITHOUT_SOURCE_ARN:
                problems.append(
                    f"{fn.logical_id} event {name}: SAM gives the {kind} event a permission without SourceArn, so "
                    f"any source of that service may invoke the function; {SAM_EVENTS_WITHOUT_SOURCE_ARN[kind]}"
                )
    return problems


def check_trust_policies(template: dict[str, Any]) -> list[str]:
    """A role a service of TRUST_SOURCE_SERVICES assumes trusts it only for the stack's account:
    aws:SourceAccount pinned to the account and aws:SourceArn pinned to ARNs of that account. Any
    other service a role trusts is one of TRUST_WITHOUT_SOURCE_KEYS."""
    problems = []
    for lid, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        document = (res.get("Properties") or {}).get("AssumeRolePolicyDocument")
        for s in statements(document):
            if s.get("Effect") != "Allow":
                continue
            for service in service_principals(s.get("Principal")):
                if service not in TRUST_SOURCE_SERVICES:
                    if service not in TRUST_WITHOUT_SOURCE_KEYS:
                        problems.append(
                            f"{lid}: its trust policy lets {service} assume it, a service the check knows "
                            "neither as sending aws:SourceAccount and aws:SourceArn (TRUST_SOURCE_SERVICES) "
                            "nor as trusted without them (TRUST_WITHOUT_SOURCE_KEYS): add it to one, after "
                            "what the service documents"
                        )
                    continue
                accounts = pinned_values(s, "aws:SourceAccount")
                if not accounts or not all(names_own_account(v) for v in accounts):
                    problems.append(
                        f"{lid}: its trust policy lets {service} assume it without aws:SourceAccount pinned to the "
                        "stack's account (StringEquals: !Ref AWS::AccountId): the service could assume it for "
                        "another account's request"
                    )
                arns = pinned_values(s, "aws:SourceArn")
                if not arns or not all(names_own_account(v) for v in arns):
                    problems.append(
                        f"{lid}: its trust policy lets {service} assume it without aws:SourceArn pinned to ARNs of "
                        "the stack's account (ArnLike: arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:*)"
                    )
    return problems


def may_match_reserved_namespace(value: Any) -> bool:
    """Whether a cloudwatch:namespace value can match a namespace AWS reserves (`AWS/...`):
    it starts with AWS/, or a wildcard comes before the text departs from it (`*`, `A*`)."""
    text = template_text(value)
    prefix = re.split(r"[*?]", text, maxsplit=1)[0]
    wildcard = prefix != text
    return text.startswith(RESERVED_NAMESPACE_PREFIX) or (wildcard and RESERVED_NAMESPACE_PREFIX.startswith(prefix))


def check_metric_namespaces(template: dict[str, Any]) -> list[str]:
    """cloudwatch:PutMetricData takes no resource, so a statement allowing it is limited by its
    cloudwatch:namespace condition alone: it must have one, and not name (or match) a namespace
    AWS reserves, which nobody else may write."""
    problems = []
    for where, document in all_policy_documents(template):
        for s in statements(document):
            if s.get("Effect") != "Allow" or "cloudwatch:PutMetricData" not in actions_of(s):
                continue
            sid = s.get("Sid", "?")
            namespaces = pinned_values(s, "cloudwatch:namespace")
            if not namespaces:
                problems.append(
                    f"{where} statement {sid}: allows cloudwatch:PutMetricData without a cloudwatch:namespace "
                    "condition (StringEquals): metrics could be written in any namespace"
                )
            for value in namespaces:
                if may_match_reserved_namespace(value):
                    problems.append(
                        f"{where} statement {sid}: cloudwatch:namespace {template_text(value)!r} names namespaces "
                        f"starting with {RESERVED_NAMESPACE_PREFIX}, which AWS reserves for its services; name the "
                        "namespace the role writes"
                    )
    return problems


def check_image_pulls(template: dict[str, Any]) -> list[str]:
    """ECR image-pull actions name the account whose repositories they open
    (`arn:aws:ecr:<region>:<account>:repository/<name>`), never every account's."""
    problems = []
    for where, document in all_policy_documents(template):
        for s in statements(document):
            pulls = sorted(set(actions_of(s)) & IMAGE_PULL_ACTIONS)
            if s.get("Effect") != "Allow" or not pulls:
                continue
            for r in as_list(s.get("Resource")):
                text = template_text(r)
                # A ${..} of the pattern (${AWS::AccountId}) is one value: it names the account.
                m = re.fullmatch(r"arn:[^:]*:ecr:[^:]*:([^:]*):repository/.+", re.sub(r"\$\{[^}]*\}", "_", text))
                if m is None or not m.group(1) or any(c in m.group(1) for c in "*?"):
                    problems.append(
                        f"{where} statement {s.get('Sid', '?')}: {', '.join(pulls)} on {text!r} opens the images of "
                        "every account's repositories; name the account (and repository) the image lives in, or "
                        "drop the statement if the service pulls the image itself"
                    )
    return problems


def check_alarm_actions(template: dict[str, Any]) -> list[str]:
    """Every CloudWatch alarm acts: its AlarmActions name, at least under one of the template's
    conditions, an SNS topic or a scaling policy of the template. An alarm without action only
    changes colour in the console, and nobody learns of the failure it watches for."""
    problems = []
    resources = template.get("Resources") or {}
    for lid, res in resources.items():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        targets = {logical_id(a) for a in as_list((res.get("Properties") or {}).get("AlarmActions"))}
        kinds = {(resources.get(t) or {}).get("Type") for t in targets if t}
        if not kinds & {"AWS::SNS::Topic", "AWS::ApplicationAutoScaling::ScalingPolicy"}:
            problems.append(
                f"{lid}: its AlarmActions name no topic or scaling policy of the template "
                "(!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]): it would alarm unheard"
            )
    return problems


#: The namespace of the functions' own metrics (crates/aws/src/metrics.rs, NAMESPACE).
CODE_NAMESPACE = "CochlSense"
#: A dashboard's grid is 24 columns wide.
DASHBOARD_COLUMNS = 24
#: The id of a metric or expression of a graph, which expressions refer to.
METRIC_ID = re.compile(r"[a-z][A-Za-z0-9_]*")


def dashboard_json(body: Any) -> tuple[Any, str | None]:
    """A DashboardBody as the JSON it becomes: a string, or an Fn::Sub whose `${Name}` become 0
    (valid in a string and as a number) and whose `${!Text}` become the literal `${Text}` (a
    dynamic label). (None, why) when it cannot be read."""
    if isinstance(body, str):
        text = body
    elif isinstance(body, dict) and list(body) == ["Fn::Sub"]:
        sub = body["Fn::Sub"]
        text = sub[0] if isinstance(sub, list) and sub else sub
        if not isinstance(text, str):
            return None, "an Fn::Sub whose pattern is not a string"
        text = re.sub(r"\$\{(?!!)[^}]*\}", "0", text).replace("${!", "${")
    else:
        return None, "neither a string nor an Fn::Sub of one, so the check cannot read it"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"not JSON once substituted ({e})"


def search_metrics(expression: str) -> list[tuple[str, str]]:
    """(namespace, metric name) of every `MetricName=` term of the SEARCH calls of a metric math
    expression, the namespace being its schema's (`{Namespace,Dimension,..}`, maybe quoted)."""
    found = []
    for m in re.finditer(r"SEARCH\(\s*'([^']*)'", expression):
        query = m.group(1)
        schema = re.match(r'\s*\{\s*(?:"([^"]*)"|([^,}\s]+))', query)
        namespace = (schema.group(1) if schema.group(1) is not None else schema.group(2)) if schema else ""
        found += [(namespace, name) for name in re.findall(r'MetricName\s*=\s*"?([A-Za-z0-9_.\-]+)', query)]
    return found


def dashboard_widgets(lid: str, dashboard: Any) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The metrics a dashboard's graphs name, as (where, namespace, name), and what is wrong with
    its widgets: a metric graph without a region or metrics, a widget past the grid's 24
    columns, an id that is not a lowercase-first word or not unique in its graph. A row's `"."`
    repeats the value of the row above, as the console writes it."""
    refs: list[tuple[str, str, str]] = []
    problems: list[str] = []
    widgets = dashboard.get("widgets") if isinstance(dashboard, dict) else None
    if not isinstance(widgets, list):
        return refs, [f"{lid}: DashboardBody has no widgets array"]
    for n, widget in enumerate(widgets):
        if not isinstance(widget, dict):
            problems.append(f"{lid}: widget {n} is not an object")
            continue
        props = widget.get("properties") or {}
        where = f"{lid} widget {n} ({props.get('title') or widget.get('type')})"
        x, width = widget.get("x", 0), widget.get("width", 6)
        if isinstance(x, int) and isinstance(width, int) and x + width > DASHBOARD_COLUMNS:
            problems.append(f"{where}: reaches column {x + width}, past the grid's {DASHBOARD_COLUMNS}")
        if widget.get("type") != "metric":
            continue
        if not props.get("region"):
            problems.append(f"{where}: a metric graph needs its region (\"region\": \"${{AWS::Region}}\")")
        rows = props.get("metrics")
        if not isinstance(rows, list) or not rows:
            problems.append(f"{where}: a metric graph needs a metrics array")
            continue
        ids: list[str] = []
        above: list[Any] = []
        for row in rows:
            if not isinstance(row, list) or not row:
                problems.append(f"{where}: a row of metrics is not a non-empty array: {row!r}")
                continue
            options = row[-1] if isinstance(row[-1], dict) else {}
            if "id" in options:
                ids.append(options["id"])
            if isinstance(row[0], dict):
                refs += [(where, ns, name) for ns, name in search_metrics(str(row[0].get("expression", "")))]
                continue
            values = [v for v in row if not isinstance(v, dict)]
            values = [above[k] if v == "." and k < len(above) else v for k, v in enumerate(values)]
            above = values
            if len(values) < 2:
                problems.append(f"{where}: a metric row names no namespace and metric: {row!r}")
                continue
            refs.append((where, str(values[0]), str(values[1])))
        for i in ids:
            if not isinstance(i, str) or not METRIC_ID.fullmatch(i):
                problems.append(f"{where}: id {i!r} must start with a lowercase letter (letters, digits, _)")
        for i in sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1}):
            problems.append(f"{where}: id {i!r} is used twice")
    return refs, problems


def named_metrics(template: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every (where, namespace, metric name) the alarms and dashboards of the template name, and
    the dashboards' problems (dashboard_widgets)."""
    refs: list[tuple[str, str, str]] = []
    problems: list[str] = []
    for lid, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::CloudWatch::Alarm":
            if isinstance(props.get("Namespace"), str) and isinstance(props.get("MetricName"), str):
                refs.append((lid, props["Namespace"], props["MetricName"]))
            for query in as_list(props.get("Metrics")):
                metric = ((query or {}).get("MetricStat") or {}).get("Metric") or {}
                if isinstance(metric.get("Namespace"), str) and isinstance(metric.get("MetricName"), str):
                    refs.append((lid, metric["Namespace"], metric["MetricName"]))
                refs += [(lid, ns, name) for ns, name in search_metrics(str((query or {}).get("Expression", "")))]
        elif res.get("Type") == "AWS::CloudWatch::Dashboard":
            dashboard, why = dashboard_json(props.get("DashboardBody"))
            if why:
                problems.append(f"{lid}: DashboardBody is {why}")
                continue
            found, widget_problems = dashboard_widgets(lid, dashboard)
            refs += found
            problems += widget_problems
    return refs, problems


def check_dashboards(template: dict[str, Any]) -> list[str]:
    """A dashboard's body is JSON once substituted, and its widgets are well formed
    (dashboard_widgets): CloudFormation takes the body as an opaque string, and cfn-lint does
    not read it, so a mistake would only show when the stack is deployed."""
    return named_metrics(template)[1]


def check_metric_names(template: dict[str, Any], code: Code) -> list[str]:
    """Every metric of the functions' namespace (CochlSense) an alarm or a dashboard names is one
    an EMF line of the code declares (emitted_metrics): a renamed or misspelt metric would leave
    a graph empty and an alarm never firing, silently."""
    refs, _ = named_metrics(template)
    return [
        f"{where}: names the {CODE_NAMESPACE} metric {name!r}, which no EMF line of the code declares "
        f"(the code emits {', '.join(sorted(code.metrics)) or 'none'})"
        for where, namespace, name in refs
        if namespace == CODE_NAMESPACE and name not in code.metrics
    ]


def check_queues(template: dict[str, Any]) -> list[str]:
    """Every queue a function consumes, and the event consuming it."""
    problems = []
    resources = template.get("Resources") or {}

    def queue(lid: str | None) -> dict[str, Any] | None:
        res = resources.get(lid or "")
        if isinstance(res, dict) and res.get("Type") == "AWS::SQS::Queue":
            return res.get("Properties") or {}
        return None

    for fn in template_functions(template):
        for event in queue_events(fn):
            label = f"{fn.logical_id} event {event.name}"
            if "ReportBatchItemFailures" not in as_list(event.props.get("FunctionResponseTypes")):
                problems.append(
                    f"{label}: FunctionResponseTypes lacks ReportBatchItemFailures (without it, one "
                    "failed message sends the whole batch back to the queue, to be processed again)"
                )
            props = queue(event.queue)
            if props is None:
                problems.append(f"{label}: Queue is not an AWS::SQS::Queue of this template (!GetAtt <queue>.Arn)")
                continue
            lid = event.queue
            redrive = props.get("RedrivePolicy")
            dlq_id = logical_id(redrive.get("deadLetterTargetArn")) if isinstance(redrive, dict) else None
            dlq = queue(dlq_id)
            if dlq is None:
                problems.append(
                    f"{lid}: no RedrivePolicy to a dead-letter queue of this template (deadLetterTargetArn: "
                    "!GetAtt <queue>.Arn); a message that keeps failing would be retried until it expires"
                )
            elif "maxReceiveCount" not in redrive:
                problems.append(f"{lid}: its RedrivePolicy has no maxReceiveCount")
            retention = number(props.get("MessageRetentionPeriod", SQS_DEFAULTS["MessageRetentionPeriod"]))
            if retention != QUEUE_RETENTION_SECONDS:
                problems.append(
                    f"{lid}: MessageRetentionPeriod is {props.get('MessageRetentionPeriod', 'not set')!r}, "
                    f"expected {QUEUE_RETENTION_SECONDS} (14 days, so a backlog outlives a long outage)"
                )
            if dlq is not None and retention is not None:
                dlq_retention = number(dlq.get("MessageRetentionPeriod", SQS_DEFAULTS["MessageRetentionPeriod"]))
                if dlq_retention is None or dlq_retention < retention:
                    problems.append(
                        f"{dlq_id}: keeps messages {dlq.get('MessageRetentionPeriod', 'the default 345600')} s, "
                        f"less than {lid} ({retention} s); a dead letter expires by the time it entered {lid}"
                    )
            visibility = number(props.get("VisibilityTimeout", SQS_DEFAULTS["VisibilityTimeout"]))
            timeout = number(fn.props.get("Timeout", LAMBDA_DEFAULT_TIMEOUT))
            if visibility is None or timeout is None:
                problems.append(
                    f"{lid}: VisibilityTimeout and {fn.logical_id}'s Timeout must be numbers to be checked "
                    f"(at least {VISIBILITY_TIMEOUT_FACTOR} x the function's timeout)"
                )
            elif visibility < VISIBILITY_TIMEOUT_FACTOR * timeout:
                problems.append(
                    f"{lid}: VisibilityTimeout {visibility} s is below {VISIBILITY_TIMEOUT_FACTOR} x the Timeout "
                    f"of {fn.logical_id}, which consumes it ({VISIBILITY_TIMEOUT_FACTOR * timeout} s)"
                )
    return problems


def tls_only(document: Any, resource_id: str) -> bool:
    for s in statements(document):
        condition = (s.get("Condition") or {}).get("Bool") or {}
        value = condition.get("aws:SecureTransport")
        if s.get("Effect") == "Deny" and str(value).lower() == "false":
            if resource_id in json.dumps(s.get("Resource")):
                return True
    return False


def check_storage(template: dict[str, Any], code: Code) -> list[str]:
    problems = []
    resources = template.get("Resources") or {}
    for lid, res in resources.items():
        props = res.get("Properties") or {}
        kind = res.get("Type")
        if kind == "AWS::S3::Bucket":
            block = props.get("PublicAccessBlockConfiguration") or {}
            for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
                if block.get(key) is not True:
                    problems.append(f"{lid}: PublicAccessBlockConfiguration.{key} must be true")
            rules = ((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
            if not rules:
                problems.append(f"{lid}: no BucketEncryption (SSE-S3 or SSE-KMS)")
            policies = [
                (r.get("Properties") or {}).get("PolicyDocument")
                for r in resources.values()
                if r.get("Type") == "AWS::S3::BucketPolicy"
                and logical_id((r.get("Properties") or {}).get("Bucket")) == lid
            ]
            if not any(tls_only(d, lid) for d in policies):
                problems.append(f"{lid}: no bucket policy denying requests without TLS (aws:SecureTransport false)")
        elif kind == "AWS::DynamoDB::Table":
            sse = props.get("SSESpecification") or {}
            if sse.get("SSEEnabled") is not True:
                problems.append(f"{lid}: SSESpecification.SSEEnabled must be true")
            pitr = props.get("PointInTimeRecoverySpecification") or {}
            if pitr.get("PointInTimeRecoveryEnabled") is not True:
                problems.append(f"{lid}: point-in-time recovery is off")
            if code.table is not None:
                problems += [f"{lid}: {p}" for p in compare_table(props, code.table)]
        elif kind == "AWS::SQS::Queue":
            if props.get("SqsManagedSseEnabled") is not True and not props.get("KmsMasterKeyId"):
                problems.append(f"{lid}: queue is not encrypted (SqsManagedSseEnabled: true or KmsMasterKeyId)")
        elif kind == "AWS::SNS::Topic":
            if not props.get("KmsMasterKeyId"):
                reason = ((res.get("Metadata") or {}).get("cochl-check") or {}).get("unencrypted-topic")
                if not (isinstance(reason, str) and reason.strip()):
                    problems.append(
                        f"{lid}: topic is not encrypted (KmsMasterKeyId); if it cannot be, say why in "
                        "Metadata.cochl-check.unencrypted-topic"
                    )
    return problems


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


SPELLED_NAMES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SQS::Queue": "QueueName",
}


def check_spelled_names(template: dict[str, Any]) -> list[str]:
    """A bucket, endpoint or queue whose name is spelled out (`Fn::Sub: [pattern, vars]`, to break a
    circular dependency) must be spelled the same way wherever the template names it by string."""
    problems = []
    for lid, res in (template.get("Resources") or {}).items():
        key = SPELLED_NAMES.get(res.get("Type", ""))
        name = (res.get("Properties") or {}).get(key) if key else None
        if not (isinstance(name, dict) and isinstance(name.get("Fn::Sub"), list)):
            continue
        pattern, variables = name["Fn::Sub"][0], name["Fn::Sub"][1]
        stem = pattern.split("${", 1)[0].rstrip("-_./")
        if len(stem) < 4:
            continue
        for node in walk(template.get("Resources")):
            sub = node.get("Fn::Sub") if isinstance(node, dict) else None
            if node is name or sub is None:
                continue
            text, given = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
            if isinstance(text, str) and stem in text and (pattern not in text or given != variables):
                problems.append(f"{lid}: its name is spelled differently in {text!r}; spell it as {pattern!r} with the same variables")
    return problems


def compare_table(props: dict[str, Any], want: TableShape) -> list[str]:
    problems = []

    def keys(schema: Any) -> tuple[str, str]:
        kinds = {k.get("KeyType"): k.get("AttributeName") for k in as_list(schema) if isinstance(k, dict)}
        return kinds.get("HASH", ""), kinds.get("RANGE", "")

    def spell(hash_key: str, range_key: str) -> str:
        return f"({hash_key}, {range_key})" if range_key else f"({hash_key}, hash key only)"

    if keys(props.get("KeySchema")) != (want.hash_key, want.range_key):
        problems.append(
            f"key schema {spell(*keys(props.get('KeySchema')))} differs from provision.rs "
            f"{spell(want.hash_key, want.range_key)}"
        )
    got_indexes = {
        i.get("IndexName"): i for i in as_list(props.get("GlobalSecondaryIndexes")) if isinstance(i, dict)
    }
    if set(got_indexes) != set(want.indexes):
        problems.append(f"global secondary indexes {sorted(got_indexes)} differ from provision.rs {sorted(want.indexes)}")
    for name, (h, r, projection) in want.indexes.items():
        index = got_indexes.get(name)
        if index is None:
            continue
        if keys(index.get("KeySchema")) != (h, r):
            problems.append(
                f"index {name} keys {spell(*keys(index.get('KeySchema')))} differ from provision.rs {spell(h, r)}"
            )
        got = (index.get("Projection") or {}).get("ProjectionType")
        if got != projection:
            problems.append(f"index {name} projects {got!r}, provision.rs projects {projection}")
    got_attributes = {
        a.get("AttributeName"): a.get("AttributeType") for a in as_list(props.get("AttributeDefinitions")) if isinstance(a, dict)
    }
    if got_attributes != want.attributes:
        problems.append(f"attribute definitions {got_attributes} differ from provision.rs {want.attributes}")
    if want.pay_per_request and props.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append(f"BillingMode is {props.get('BillingMode')!r}, provision.rs creates PAY_PER_REQUEST")
    ttl = props.get("TimeToLiveSpecification") or {}
    got_ttl = ttl.get("AttributeName") if ttl.get("Enabled") is True else None
    if got_ttl != want.ttl_attribute:
        if want.ttl_attribute is None:
            problems.append(f"TimeToLiveSpecification enables TTL on {got_ttl!r}; provision.rs enables none")
        else:
            problems.append(
                f"TimeToLiveSpecification is {ttl or 'not set'}; provision.rs enables TTL on "
                f"{want.ttl_attribute!r} (items carrying it would never expire)"
            )
    return problems


def check_http_auth(template: dict[str, Any], code: Code) -> list[str]:
    problems = []
    for fn in template_functions(template):
        url = fn.props.get("FunctionUrlConfig")
        if isinstance(url, dict) and url.get("AuthType") != "AWS_IAM":
            problems.append(f"{fn.logical_id}: FunctionUrlConfig.AuthType is {url.get('AuthType')!r}, expected AWS_IAM")
        http_events = []
        for name, event in (fn.props.get("Events") or {}).items():
            if isinstance(event, dict) and event.get("Type") in ("HttpApi", "Api"):
                http_events.append(name)
                auth = ((event.get("Properties") or {}).get("Auth") or {}).get("Authorizer")
                if auth != "AWS_IAM":
                    problems.append(f"{fn.logical_id}: HTTP event {name} is not IAM-authorised (Auth.Authorizer: AWS_IAM)")
        binary = code.binaries.get(fn.binary or "")
        if binary is not None and binary.http and not isinstance(url, dict) and not http_events:
            problems.append(f"{fn.logical_id} ({binary.name}): an HTTP function with no Function URL or HTTP API event")
    for lid, res in (template.get("Resources") or {}).items():
        if res.get("Type") == "AWS::Lambda::Url" and (res.get("Properties") or {}).get("AuthType") != "AWS_IAM":
            problems.append(f"{lid}: Function URL AuthType must be AWS_IAM")
    return problems


CHECKS = (
    ("binaries", lambda t, c: check_binaries(t, c)),
    ("build", lambda t, c: check_build(t)),
    ("environment", check_environment),
    ("shared settings", lambda t, c: check_shared_settings(t)),
    ("permissions", check_permissions),
    ("policy shapes", lambda t, c: check_policy_shapes(t)),
    ("service principals' sources", lambda t, c: check_service_principal_sources(t)),
    ("trust policies", lambda t, c: check_trust_policies(t)),
    ("metric namespaces", lambda t, c: check_metric_namespaces(t)),
    ("image pulls", lambda t, c: check_image_pulls(t)),
    ("alarm actions", lambda t, c: check_alarm_actions(t)),
    ("dashboards", lambda t, c: check_dashboards(t)),
    ("metric names", check_metric_names),
    ("storage and encryption", check_storage),
    ("queues", lambda t, c: check_queues(t)),
    ("HTTP auth", check_http_auth),
    ("spelled-out names", lambda t, c: check_spelled_names(t)),
)


def check(template: dict[str, Any], code: Code) -> list[str]:
    problems = list(code.problems)
    for _, run in CHECKS:
        problems += run(template, code)
    return problems


def summary(code: Code) -> Iterable[str]:
    yield f"  metrics ({CODE_NAMESPACE}): {', '.join(sorted(code.metrics)) or 'none'}"
    for name, b in sorted(code.binaries.items()):
        calls = ", ".join(f"{s}.{op}" for s, op in sorted(b.sdk_calls))
        uses = ", ".join(f"{t}::{m}" for t, m in sorted(b.uses))
        if len(b.sources) > 1:
            yield f"  {name}: code of crates {', '.join(p.name for p in b.sources)}"
        yield f"  {name}: reads {', '.join(sorted(b.env))}"
        yield f"  {name}: calls {uses} -> {calls}" + (f" (indexes: {', '.join(sorted(b.indexes))})" if b.indexes else "")
        if b.versioned_calls:
            yield f"  {name}: names object versions in {', '.join(f'{s}.{op}' for s, op in sorted(b.versioned_calls))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("template", nargs="?", default="template.yaml")
    parser.add_argument("--repo", default=None, help="repository root (default: two levels above this script)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    args = parser.parse_args(argv)
    repo = Path(args.repo) if args.repo else Path(__file__).resolve().parents[2]
    code = load_code(repo)
    template = load_template(Path(args.template))
    problems = check(template, code)
    if problems:
        for p in problems:
            print(f"template check: {p}", file=sys.stderr)
        print(f"template check: {len(problems)} problem(s) in {args.template}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"template check: {args.template} matches the code ({len(code.binaries)} functions, {len(CHECKS)} checks)")
        for line in summary(code):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
