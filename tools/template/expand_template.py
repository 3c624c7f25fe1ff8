#!/usr/bin/env python3
"""Expands the SAM template into plain CloudFormation, as `sam deploy` has CloudFormation do.

`python tools/template/expand_template.py template.yaml target/template/expanded.json`

cfn-lint reads template.yaml with SAM's schemas, but the resources SAM generates (the S3 and SNS
permissions and subscriptions, the bucket's notification and its DependsOn, the Function URL, the
event invoke configs) exist only after the transform. Linting the expansion catches what shows
only there, circular dependencies above all. Offline: no AWS call is made. The functions' CodeUri
(the workspace) is replaced by a placeholder S3 location, as `sam package` would replace it by
the uploaded zip.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PLACEHOLDER_CODE = "s3://placeholder-bucket/function.zip"


class _NoManagedPolicies:
    """SAM asks for managed policy ARNs only for names in a function's `Policies`; ours has none."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: dict) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform

    template = json.loads(json.dumps(template))
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = PLACEHOLDER_CODE
    for resource in (template.get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = PLACEHOLDER_CODE
    return transform(template, {}, _NoManagedPolicies())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    from cfnlint.decode import cfn_yaml

    source, target = Path(argv[0]), Path(argv[1])
    expanded = expand(json.loads(json.dumps(cfn_yaml.load(str(source)))))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(expanded, indent=1) + "\n", encoding="utf-8")
    print(f"expanded {source} into {target} ({len(expanded.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
