"""Unit tests of check_template.py: the real template passes, and every rule fails on a template
(or a copy of the code) broken in the way that rule exists to catch.

Run with the tools venv: `.venv-tools/bin/python -m unittest discover -s tools/template -p 'test_*.py'`
(`make test-template`).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import check_template as ct  # noqa: E402

TEMPLATE = ct.load_template(REPO / "template.yaml")
CODE = ct.load_code(REPO)


def resources(template: dict) -> dict:
    return template["Resources"]


def role_statements(template: dict, role: str) -> list:
    return resources(template)[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def statement(template: dict, role: str, sid: str) -> dict:
    return next(s for s in role_statements(template, role) if s.get("Sid") == sid)


class TemplateCase(unittest.TestCase):
    """Helpers: break a copy of the real template and expect a named problem."""

    def broken(self, mutate, code: ct.Code | None = None) -> list[str]:
        template = copy.deepcopy(TEMPLATE)
        mutate(template)
        return ct.check(template, code or CODE)

    def assertProblem(self, problems: list[str], *fragments: str) -> None:
        for p in problems:
            if all(f in p for f in fragments):
                return
        self.fail(f"no problem mentions {fragments}; got:\n  " + "\n  ".join(problems or ["(none)"]))


class RealTemplate(TemplateCase):
    def test_real_template_passes(self):
        self.assertEqual(ct.check(TEMPLATE, CODE), [])

    def test_code_model_matches_the_functions(self):
        self.assertEqual(
            set(CODE.binaries), {"cochl-submit", "cochl-on-result", "cochl-sweeper", "cochl-backfill", "cochl-query"}
        )
        submit = CODE.binaries["cochl-submit"]
        self.assertIn(("sagemakerruntime", "InvokeEndpointAsync"), submit.sdk_calls)
        self.assertIn(("s3", "HeadObject"), submit.sdk_calls)
        self.assertIn(("s3", "CopyObject"), submit.sdk_calls)
        self.assertIn("COCHL_ENDPOINT_NAME", submit.env)
        self.assertIn("COCHL_ENDPOINT_NAME", submit.required_env)
        self.assertNotIn("COCHL_CLAIM_LEASE_SECONDS", submit.required_env)
        # Leaked slots are found through cochl_aws::admission, a helper generic over JobStore.
        self.assertIn(("DynamoStore", "expired_slots"), submit.uses)
        query = CODE.binaries["cochl-query"]
        self.assertEqual({op for _, op in query.sdk_calls}, {"Query", "BatchGetItem"})
        self.assertEqual(query.indexes, {"by-tag", "by-status"})
        self.assertEqual(query.env, {"COCHL_TABLE_NAME"})
        on_result = CODE.binaries["cochl-on-result"]
        self.assertIn(("sns", "Publish"), on_result.sdk_calls)
        self.assertEqual(on_result.indexes, {"by-inference"})
        # HeadObject of the version a backfill manifest names (submit heads it again); the
        # sweeper heads results without a version.
        backfill = CODE.binaries["cochl-backfill"]
        self.assertEqual([p.name for p in backfill.sources], ["backfill", "on-result"])
        self.assertEqual(backfill.versioned_calls, {("s3", "HeadObject")})
        self.assertEqual(submit.versioned_calls, {("s3", "HeadObject")})
        self.assertEqual(CODE.binaries["cochl-sweeper"].versioned_calls, set())
        self.assertIn("COCHL_BUCKET", backfill.required_env)
        self.assertLessEqual(on_result.env, backfill.env)

    def test_the_sweeper_is_its_crate_and_on_results(self):
        sweeper, on_result = CODE.binaries["cochl-sweeper"], CODE.binaries["cochl-on-result"]
        self.assertEqual([p.name for p in sweeper.sources], ["sweeper", "on-result"])
        # Dev-dependencies never ship: submit's tests run on-result and devstack, submit does not.
        self.assertEqual([p.name for p in CODE.binaries["cochl-submit"].sources], ["submit"])
        self.assertLessEqual(on_result.uses, sweeper.uses)
        self.assertLessEqual(on_result.sdk_calls, sweeper.sdk_calls)
        self.assertIn(("DynamoStore", "submitted_before"), sweeper.uses)
        self.assertIn(("s3", "HeadObject"), sweeper.sdk_calls)
        self.assertEqual(sweeper.indexes, {"by-status", "by-inference"})
        # SweepSettings::from_env reads ResultSettings' variables through ResultSettings::from_env.
        self.assertLessEqual(on_result.env, sweeper.env)
        self.assertLessEqual(on_result.required_env, sweeper.required_env)
        self.assertIn("COCHL_SWEEP_AFTER_SECONDS", sweeper.env)
        self.assertNotIn("COCHL_SWEEP_AFTER_SECONDS", sweeper.required_env)

    def test_table_model(self):
        table = CODE.table
        self.assertEqual(table.indexes["by-inference"], ("gsi3pk", "", "KEYS_ONLY"))
        self.assertEqual(table.indexes["by-tag"], ("gsi1pk", "gsi1sk", "ALL"))
        self.assertEqual(table.ttl_attribute, "purge_at")


class Environment(TemplateCase):
    def test_variable_the_code_reads_but_the_template_does_not_set(self):
        def drop(t):
            del resources(t)["SubmitFunction"]["Properties"]["Environment"]["Variables"]["COCHL_INPUT_PREFIX"]

        self.assertProblem(self.broken(drop), "SubmitFunction", "COCHL_INPUT_PREFIX", "not set")

    def test_variable_set_on_the_wrong_function(self):
        def add(t):
            resources(t)["ResultFunction"]["Properties"]["Environment"]["Variables"]["COCHL_ENDPOINT_NAME"] = "x"

        self.assertProblem(self.broken(add), "ResultFunction", "COCHL_ENDPOINT_NAME", "another function reads it")

    def test_misspelt_variable(self):
        def add(t):
            resources(t)["QueryFunction"]["Properties"]["Environment"]["Variables"]["COCHL_TABLE"] = "x"

        self.assertProblem(self.broken(add), "QueryFunction", "COCHL_TABLE", "no function reads it")

    def test_rust_log_comes_from_globals_and_is_required(self):
        def drop(t):
            del t["Globals"]["Function"]["Environment"]

        problems = self.broken(drop)
        for fn in ("SubmitFunction", "ResultFunction", "SweeperFunction", "QueryFunction"):
            self.assertProblem(problems, fn, "RUST_LOG")

    def test_variables_lambda_defines_need_no_setting_and_must_not_be_set(self):
        self.assertIn("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", CODE.binaries["cochl-on-result"].env)

        def add(t):
            resources(t)["ResultFunction"]["Properties"]["Environment"]["Variables"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "512"

        self.assertProblem(self.broken(add), "ResultFunction", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "Lambda itself defines")

    def test_variable_set_under_a_condition_counts_as_set(self):
        variables = resources(TEMPLATE)["ResultFunction"]["Properties"]["Environment"]["Variables"]
        self.assertIn("Fn::If", variables["COCHL_MAX_RESULT_BYTES"])
        self.assertEqual([p for p in ct.check(TEMPLATE, CODE) if "COCHL_MAX_RESULT_BYTES" in p], [])

    def test_backfill_merges_and_limits_as_on_result_and_submit(self):
        for name, other in (("COCHL_INTERVAL_MARGIN", "ResultFunction"), ("COCHL_MAX_OBJECT_BYTES", "SubmitFunction"),
                            ("COCHL_STAGING_PREFIX", "SubmitFunction"), ("COCHL_MAX_RESULT_BYTES", "SweeperFunction")):
            with self.subTest(name=name):
                def change(t, name=name):
                    resources(t)["BackfillFunction"]["Properties"]["Environment"]["Variables"][name] = "7"

                self.assertProblem(self.broken(change), name, "differs between functions", "BackfillFunction", other)

    def test_optional_variable_left_unset_must_say_why(self):
        def drop(t):
            del resources(t)["SubmitFunction"]["Metadata"]["cochl-check"]

        self.assertProblem(self.broken(drop), "SubmitFunction", "COCHL_CLAIM_LEASE_SECONDS", "not set")

        def blank(t):
            unset = resources(t)["SubmitFunction"]["Metadata"]["cochl-check"]["unset-environment"]
            unset["COCHL_CLAIM_LEASE_SECONDS"] = " "

        self.assertProblem(self.broken(blank), "SubmitFunction", "COCHL_CLAIM_LEASE_SECONDS", "say why")

    def test_required_variable_cannot_be_left_unset(self):
        def change(t):
            del resources(t)["SubmitFunction"]["Properties"]["Environment"]["Variables"]["COCHL_ENDPOINT_NAME"]
            unset = resources(t)["SubmitFunction"]["Metadata"]["cochl-check"]["unset-environment"]
            unset["COCHL_ENDPOINT_NAME"] = "the function finds it"

        problems = self.broken(change)
        self.assertProblem(problems, "SubmitFunction", "COCHL_ENDPOINT_NAME", "requires it", "fail to start")

    def test_unset_variable_must_be_read_and_not_set(self):
        def change(t):
            unset = resources(t)["SubmitFunction"]["Metadata"]["cochl-check"]["unset-environment"]
            unset["COCHL_SWEEP_AFTER_SECONDS"] = "not submit's"
            unset["COCHL_INPUT_PREFIX"] = "set all the same"

        problems = self.broken(change)
        self.assertProblem(problems, "SubmitFunction", "COCHL_SWEEP_AFTER_SECONDS", "does not read it")
        self.assertProblem(problems, "SubmitFunction", "sets COCHL_INPUT_PREFIX", "leaves unset")


class Binaries(TemplateCase):
    def test_binary_without_function(self):
        def drop(t):
            del resources(t)["QueryFunction"]

        self.assertProblem(self.broken(drop), "binary cochl-query", "has no function")

    def test_function_naming_a_binary_that_does_not_exist(self):
        def rename(t):
            resources(t)["QueryFunction"]["Metadata"]["BuildProperties"]["Binary"] = "cochl-querry"

        self.assertProblem(self.broken(rename), "cochl-querry", "no crate")

    def test_function_without_binary(self):
        def drop(t):
            del resources(t)["QueryFunction"]["Metadata"]["BuildProperties"]

        self.assertProblem(self.broken(drop), "QueryFunction", "no Metadata.BuildProperties.Binary")

    def test_build_shape(self):
        def change(t):
            t["Globals"]["Function"]["Architectures"] = ["x86_64"]
            resources(t)["SubmitFunction"]["Properties"]["LoggingConfig"]["LogFormat"] = "Text"
            resources(t)["QueryFunction"]["Metadata"]["BuildMethod"] = "makefile"

        problems = self.broken(change)
        self.assertProblem(problems, "ResultFunction", "Architectures")
        self.assertProblem(problems, "SubmitFunction", "LogFormat")
        self.assertProblem(problems, "QueryFunction", "rust-cargolambda")


class Permissions(TemplateCase):
    def test_action_no_sdk_call_needs(self):
        def add(t):
            statement(t, "SubmitFunctionRole", "Jobs")["Action"].append("dynamodb:Scan")

        self.assertProblem(self.broken(add), "SubmitFunction", "allows dynamodb:Scan", "matches no SDK call")

    def test_sdk_call_without_action(self):
        def drop(t):
            statements = role_statements(t, "ResultFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") != "Detections"]

        self.assertProblem(self.broken(drop), "ResultFunction", "does not allow sns:Publish", "Publish")

    def test_copy_object_needs_get_of_the_source_and_put_of_the_destination(self):
        def drop(t):
            statements = role_statements(t, "SubmitFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") != "StageCopies"]
            statement(t, "SubmitFunctionRole", "ReadUploads")["Action"] = "s3:GetObject"

        problems = self.broken(drop)
        self.assertProblem(problems, "SubmitFunction", "does not allow s3:PutObject", "CopyObject")
        self.assertProblem(problems, "SubmitFunction", "does not allow s3:GetObjectVersion", "CopyObject")
        self.assertFalse([p for p in problems if "s3:CopyObject" in p], problems)

    def test_sweeper_must_name_the_indexes_it_queries(self):
        def drop(t):
            s = statement(t, "SweeperFunctionRole", "ListForgottenJobsAndSlots")
            s["Resource"] = [r for r in s["Resource"] if "by-status" not in str(r)]

        self.assertProblem(self.broken(drop), "SweeperFunction", "index by-status")

    def test_on_result_must_name_the_inference_index(self):
        def drop(t):
            statements = role_statements(t, "ResultFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") != "FindJobOfInference"]

        problems = self.broken(drop)
        self.assertProblem(problems, "ResultFunction", "does not allow dynamodb:Query")
        self.assertProblem(problems, "ResultFunction", "index by-inference")

    def test_head_object_needs_list_bucket(self):
        def drop(t):
            statements = role_statements(t, "SubmitFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") != "MissingUploadsAre404"]

        self.assertProblem(self.broken(drop), "SubmitFunction", "s3:ListBucket", "HeadObject")

    def test_backfill_heads_the_manifests_version(self):
        def drop(t):
            statement(t, "BackfillFunctionRole", "ReadBackfillObjects")["Action"] = "s3:GetObject"

        self.assertProblem(self.broken(drop), "BackfillFunction", "does not allow s3:GetObjectVersion",
                           "HeadObject naming an object version")

    def test_sweeper_needs_no_version_reads(self):
        def add(t):
            statement(t, "SweeperFunctionRole", "ReadResultsAndFailures")["Action"] = ["s3:GetObject", "s3:GetObjectVersion"]

        self.assertProblem(self.broken(add), "SweeperFunction", "allows s3:GetObjectVersion", "matches no SDK call")

    def test_backfill_queues_for_submit_and_finds_jobs_as_on_result(self):
        def drop(t):
            statements = role_statements(t, "BackfillFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") not in ("QueueBackfillRequests", "FindJobOfInference")]

        problems = self.broken(drop)
        self.assertProblem(problems, "BackfillFunction", "does not allow sqs:SendMessage")
        self.assertProblem(problems, "BackfillFunction", "index by-inference")

    def test_logs_needed(self):
        def drop(t):
            statements = role_statements(t, "QueryFunctionRole")
            statements[:] = [s for s in statements if s.get("Sid") != "Logs"]

        self.assertProblem(self.broken(drop), "QueryFunction", "logs:PutLogEvents")

    def test_queried_index_must_be_named(self):
        def drop(t):
            s = statement(t, "QueryFunctionRole", "ReadJobsAndIndexes")
            s["Resource"] = [r for r in s["Resource"] if "by-tag" not in str(r)]

        self.assertProblem(self.broken(drop), "QueryFunction", "index by-tag")

    def test_actions_in_attached_policy_resources_count(self):
        def move(t):
            statements = role_statements(t, "QueryFunctionRole")
            moved = [s for s in statements if s.get("Sid") == "CheckCurrentAnalyses"]
            statements[:] = [s for s in statements if s.get("Sid") != "CheckCurrentAnalyses"]
            resources(t)["ExtraQueryPolicy"] = {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "extra",
                    "Roles": [{"Ref": "QueryFunctionRole"}],
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": moved + [
                        {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["JobsTable", "Arn"]}}
                    ]},
                },
            }

        problems = self.broken(move)
        self.assertProblem(problems, "QueryFunction", "allows dynamodb:Scan")
        self.assertFalse([p for p in problems if "does not allow dynamodb:BatchGetItem" in p], problems)

    def test_function_without_own_role(self):
        def drop(t):
            del resources(t)["QueryFunction"]["Properties"]["Role"]

        self.assertProblem(self.broken(drop), "QueryFunction", "no Role")

    def test_managed_policies_are_refused(self):
        def add(t):
            resources(t)["QueryFunctionRole"]["Properties"]["ManagedPolicyArns"] = [
                "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"
            ]

        self.assertProblem(self.broken(add), "QueryFunctionRole", "managed policies")


def queue_fragment() -> dict:
    """A template of one function consuming one queue (with its dead-letter queue) and its role,
    right by every queue rule; the code is WORKER_CODE, which makes no SDK call."""
    arn = lambda lid: {"Fn::GetAtt": [lid, "Arn"]}  # noqa: E731
    return {
        "Globals": {"Function": {"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": ["arm64"],
                                 "LoggingConfig": {"LogFormat": "JSON"},
                                 "Environment": {"Variables": {"RUST_LOG": "info"}}}},
        "Resources": {
            "Work": {"Type": "AWS::SQS::Queue", "Properties": {
                "MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True, "VisibilityTimeout": 360,
                "RedrivePolicy": {"deadLetterTargetArn": arn("WorkDeadLetters"), "maxReceiveCount": 5}}},
            "WorkDeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {
                "MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}},
            "Other": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True}},
            "WorkerRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": "worker", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [
                    {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                     "Resource": "arn:aws:logs:eu-west-1:123456789012:log-group:worker"},
                    {"Sid": "Consume", "Effect": "Allow",
                     "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                     "Resource": arn("Work")},
                ]}}]}},
            "Worker": {"Type": "AWS::Serverless::Function",
                       "Metadata": {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "cochl-worker"}},
                       "Properties": {"Timeout": 60, "Role": arn("WorkerRole"), "Events": {"Jobs": {"Type": "SQS", "Properties": {
                           "Queue": arn("Work"), "BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                           "ScalingConfig": {"MaximumConcurrency": 5}}}}}},
        },
    }


WORKER_CODE = ct.Code(
    binaries={"cochl-worker": ct.Binary("cochl-worker", Path("crates/worker"), False, "WorkerSettings")},
    adapters={}, table=None, problems=[],
)


class Queues(TemplateCase):
    """The rules for a queue a function consumes, on a small template (independent of the code)."""

    def problems(self, mutate=lambda t: None, code: ct.Code = WORKER_CODE) -> list[str]:
        template = queue_fragment()
        mutate(template)
        return ct.check(template, code)

    @staticmethod
    def queue(t: dict, lid: str = "Work") -> dict:
        return resources(t)[lid]["Properties"]

    @staticmethod
    def event(t: dict) -> dict:
        return resources(t)["Worker"]["Properties"]["Events"]["Jobs"]["Properties"]

    def test_fragment_passes(self):
        self.assertEqual(self.problems(), [])

    def test_real_template_queues_pass(self):
        self.assertEqual(ct.check_queues(TEMPLATE), [])
        self.assertEqual([p for p in ct.check_storage(TEMPLATE, CODE) if "queue" in p], [])

    def test_event_source_needs_its_three_actions(self):
        def drop(t):
            role_statements(t, "WorkerRole")[1]["Action"].remove("sqs:GetQueueAttributes")

        self.assertProblem(self.problems(drop), "Worker", "does not allow sqs:GetQueueAttributes", "SQS event Jobs")

    def test_event_source_actions_on_another_queue(self):
        def move(t):
            role_statements(t, "WorkerRole")[1]["Resource"] = {"Fn::GetAtt": ["Other", "Arn"]}

        problems = self.problems(move)
        self.assertProblem(problems, "Worker", "sqs:ReceiveMessage", "not on Work", "SQS event Jobs")
        self.assertProblem(problems, "Worker", "sqs:DeleteMessage on Other", "none of its SQS events")

    def test_event_source_actions_without_event(self):
        def drop(t):
            del resources(t)["Worker"]["Properties"]["Events"]

        problems = self.problems(drop)
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
            self.assertProblem(problems, "Worker", f"allows {action}", "matches no SDK call or event source")

    def test_extra_queue_action_beside_the_event_source(self):
        def add(t):
            role_statements(t, "WorkerRole")[1]["Action"].append("sqs:PurgeQueue")

        self.assertProblem(self.problems(add), "Worker", "allows sqs:PurgeQueue", "matches no SDK call")

    def test_sdk_call_of_an_event_source_action_may_name_other_queues(self):
        # The code deletes messages of Other itself: DeleteMessage may name it beside Work.
        code = copy.deepcopy(WORKER_CODE)
        code.binaries["cochl-worker"].sdk_calls = {("sqs", "DeleteMessage")}

        def add(t):
            role_statements(t, "WorkerRole").append({"Sid": "Tidy", "Effect": "Allow", "Action": "sqs:DeleteMessage",
                                                    "Resource": {"Fn::GetAtt": ["Other", "Arn"]}})

        self.assertEqual(self.problems(add, code), [])

    def test_on_failure_destination_needs_send(self):
        def add(t):
            resources(t)["Worker"]["Properties"]["EventInvokeConfig"] = {
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["Other", "Arn"]}}},
            }

        self.assertProblem(self.problems(add), "Worker", "sqs:SendMessage", "on-failure destination")

    def test_event_without_partial_batch_responses(self):
        def drop(t):
            del self.event(t)["FunctionResponseTypes"]

        self.assertProblem(self.problems(drop), "Worker event Jobs", "ReportBatchItemFailures")

    def test_event_from_a_queue_outside_the_template(self):
        def change(t):
            self.event(t)["Queue"] = "arn:aws:sqs:eu-west-1:123456789012:elsewhere"

        self.assertProblem(self.problems(change), "Worker event Jobs", "not an AWS::SQS::Queue of this template")

    def test_queue_without_dead_letter_queue(self):
        def drop(t):
            del self.queue(t)["RedrivePolicy"]

        self.assertProblem(self.problems(drop), "Work:", "no RedrivePolicy")

    def test_redrive_to_something_that_is_not_a_queue(self):
        def change(t):
            self.queue(t)["RedrivePolicy"]["deadLetterTargetArn"] = {"Fn::GetAtt": ["WorkerRole", "Arn"]}

        self.assertProblem(self.problems(change), "Work:", "no RedrivePolicy to a dead-letter queue")

    def test_redrive_without_max_receive_count(self):
        def drop(t):
            del self.queue(t)["RedrivePolicy"]["maxReceiveCount"]

        self.assertProblem(self.problems(drop), "Work:", "maxReceiveCount")

    def test_queue_with_short_retention(self):
        def change(t):
            self.queue(t)["MessageRetentionPeriod"] = 345600

        self.assertProblem(self.problems(change), "Work:", "MessageRetentionPeriod", "1209600")

    def test_queue_with_default_retention(self):
        def drop(t):
            del self.queue(t)["MessageRetentionPeriod"]

        self.assertProblem(self.problems(drop), "Work:", "MessageRetentionPeriod is 'not set'")

    def test_dead_letter_queue_keeping_messages_less_long(self):
        def drop(t):
            del self.queue(t, "WorkDeadLetters")["MessageRetentionPeriod"]

        self.assertProblem(self.problems(drop), "WorkDeadLetters:", "less than Work")

    def test_unencrypted_queue(self):
        def drop(t):
            del self.queue(t)["SqsManagedSseEnabled"]

        self.assertProblem(self.problems(drop), "Work:", "not encrypted")

    def test_queue_encrypted_with_a_kms_key(self):
        def change(t):
            del self.queue(t)["SqsManagedSseEnabled"]
            self.queue(t)["KmsMasterKeyId"] = "alias/cochl"

        self.assertEqual(self.problems(change), [])

    def test_unencrypted_dead_letter_queue(self):
        def change(t):
            self.queue(t, "WorkDeadLetters")["SqsManagedSseEnabled"] = False

        self.assertProblem(self.problems(change), "WorkDeadLetters:", "not encrypted")

    def test_visibility_timeout_below_six_function_timeouts(self):
        def change(t):
            self.queue(t)["VisibilityTimeout"] = 359

        self.assertProblem(self.problems(change), "Work:", "VisibilityTimeout 359 s", "Worker", "360 s")

    def test_visibility_timeout_follows_a_longer_function_timeout(self):
        def change(t):
            resources(t)["Worker"]["Properties"]["Timeout"] = 61

        self.assertProblem(self.problems(change), "Work:", "VisibilityTimeout 360 s", "366 s")

    def test_timeout_from_globals_and_default_visibility(self):
        def change(t):
            del resources(t)["Worker"]["Properties"]["Timeout"]
            t["Globals"]["Function"]["Timeout"] = 10
            del self.queue(t)["VisibilityTimeout"]

        self.assertProblem(self.problems(change), "Work:", "VisibilityTimeout 30 s", "60 s")

    def test_visibility_timeout_that_cannot_be_read(self):
        def change(t):
            self.queue(t)["VisibilityTimeout"] = {"Ref": "Visibility"}

        self.assertProblem(self.problems(change), "Work:", "must be numbers")


class PolicyShapes(TemplateCase):
    def test_wildcard_action(self):
        def add(t):
            statement(t, "ResultFunctionRole", "ReadResults")["Action"] = "s3:*"

        self.assertProblem(self.broken(add), "ResultFunctionRole", "ReadResults", "'s3:*' is a wildcard")

    def test_star_action_in_a_resource_policy(self):
        def add(t):
            doc = resources(t)["DetectionsTopicPolicy"]["Properties"]["PolicyDocument"]
            doc["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Principal": "*", "Action": "*",
                                     "Resource": {"Ref": "DetectionsTopic"}})

        self.assertProblem(self.broken(add), "DetectionsTopicPolicy", "Everything", "wildcard")

    def test_star_resource_where_the_api_takes_one(self):
        def add(t):
            statement(t, "ResultFunctionRole", "Detections")["Resource"] = "*"

        self.assertProblem(self.broken(add), "ResultFunctionRole", "Detections", 'Resource "*"', "sns:Publish")

    def test_star_resource_allowed_where_the_api_requires_it(self):
        # The endpoint role's cloudwatch:PutMetricData on "*" is in the real template.
        self.assertEqual([p for p in ct.check_policy_shapes(TEMPLATE) if "EndpointMetrics" in p], [])

        def add(t):
            doc = resources(t)["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"]
            doc["Statement"].append({"Sid": "PullToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
                                     "Resource": "*"})

        self.assertEqual([p for p in ct.check_policy_shapes(_changed(TEMPLATE, add)) if "PullToken" in p], [])

    def test_not_action(self):
        def add(t):
            s = statement(t, "ResultFunctionRole", "Detections")
            s["NotAction"] = s.pop("Action")

        self.assertProblem(self.broken(add), "Detections", "NotAction")


def sources_fragment() -> dict:
    """A bucket notifying a queue, topics notifying another queue, a rule invoking a function:
    every grant to a service names its one source, as the service-principal rule wants."""
    arn = lambda lid: {"Fn::GetAtt": [lid, "Arn"]}  # noqa: E731
    bucket_arn = {"Fn::Sub": "arn:${AWS::Partition}:s3:::cochl-audio-${AWS::AccountId}"}
    return {"Resources": {
        "Uploads": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Q"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [
                {"Sid": "FromBucket", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                 "Action": "sqs:SendMessage", "Resource": arn("Q"),
                 "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn},
                               "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}},
                {"Sid": "FromTopics", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                 "Action": "sqs:SendMessage", "Resource": arn("Q"),
                 "Condition": {"ArnEquals": {"aws:SourceArn": [{"Ref": "Done"}, {"Ref": "Failed"}]}}},
                # Deny statements only take away: no source needed.
                {"Sid": "NoPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
                 "Resource": arn("Q"), "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]}}},
        "Schedule": {"Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "Fn"}, "Principal": "events.amazonaws.com",
            "SourceArn": arn("Rule")}},
        "Callers": {"Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "Fn"}, "Principal": "123456789012"}},
    }}


class ServicePrincipalSources(unittest.TestCase):
    """A service that may reach the stack's resources is pinned to its one source (aws:SourceArn,
    and aws:SourceAccount for S3), on a small template."""

    def problems(self, mutate=lambda t: None) -> list[str]:
        template = sources_fragment()
        mutate(template)
        return ct.check_service_principal_sources(template)

    @staticmethod
    def grant(t: dict, sid: str) -> dict:
        doc = t["Resources"]["Uploads"]["Properties"]["PolicyDocument"]
        return next(s for s in doc["Statement"] if s.get("Sid") == sid)

    def assertProblem(self, problems: list[str], *fragments: str) -> None:
        TemplateCase.assertProblem(self, problems, *fragments)

    def test_fragment_passes(self):
        self.assertEqual(self.problems(), [])

    def test_real_template_passes(self):
        self.assertEqual(ct.check_service_principal_sources(TEMPLATE), [])

    def test_grant_without_source_arn(self):
        def drop(t):
            del self.grant(t, "FromTopics")["Condition"]

        self.assertProblem(self.problems(drop), "Uploads statement FromTopics", "sns.amazonaws.com", "aws:SourceArn")

    def test_source_arn_with_a_wildcard_is_not_one_source(self):
        def widen(t):
            self.grant(t, "FromBucket")["Condition"]["ArnEquals"]["aws:SourceArn"] = "arn:aws:s3:::cochl-audio-*"

        self.assertProblem(self.problems(widen), "FromBucket", "s3.amazonaws.com", "aws:SourceArn")

    def test_if_exists_does_not_pin(self):
        def weaken(t):
            c = self.grant(t, "FromTopics")["Condition"]
            c["ArnEqualsIfExists"] = c.pop("ArnEquals")

        self.assertProblem(self.problems(weaken), "FromTopics", "aws:SourceArn")

    def test_condition_keys_are_case_insensitive(self):
        def respell(t):
            c = self.grant(t, "FromTopics")["Condition"]["ArnEquals"]
            c["AWS:SourceARN"] = c.pop("aws:SourceArn")

        self.assertEqual(self.problems(respell), [])

    def test_s3_needs_the_source_account_too(self):
        def drop(t):
            del self.grant(t, "FromBucket")["Condition"]["StringEquals"]

        self.assertProblem(self.problems(drop), "FromBucket", "s3.amazonaws.com", "aws:SourceAccount")

    def test_s3_source_account_of_another_account(self):
        def change(t):
            self.grant(t, "FromBucket")["Condition"]["StringEquals"]["aws:SourceAccount"] = "*"

        self.assertProblem(self.problems(change), "FromBucket", "aws:SourceAccount")

    def test_grant_in_a_condition_branch_is_checked(self):
        def wrap(t):
            doc = t["Resources"]["Uploads"]["Properties"]["PolicyDocument"]
            grant = self.grant(t, "FromTopics")
            del grant["Condition"]
            doc["Statement"] = [{"Fn::If": ["HasTopics", grant, {"Ref": "AWS::NoValue"}]}]

        self.assertProblem(self.problems(wrap), "FromTopics", "aws:SourceArn")

    def test_lambda_permission_without_source_arn(self):
        def drop(t):
            del t["Resources"]["Schedule"]["Properties"]["SourceArn"]

        self.assertProblem(self.problems(drop), "Schedule:", "events.amazonaws.com", "SourceArn")

    def test_lambda_permission_for_s3_needs_the_account(self):
        def change(t):
            props = t["Resources"]["Schedule"]["Properties"]
            props["Principal"] = "s3.amazonaws.com"
            props["SourceArn"] = "arn:aws:s3:::cochl-audio"

        self.assertProblem(self.problems(change), "Schedule:", "s3.amazonaws.com", "SourceAccount")

    def test_sam_s3_event_has_no_source_arn(self):
        def add(t):
            t["Resources"]["Fn"] = {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
                "Uploads": {"Type": "S3", "Properties": {"Bucket": {"Ref": "B"}, "Events": "s3:ObjectCreated:*"}}}}}

        self.assertProblem(self.problems(add), "Fn event Uploads", "S3", "without SourceArn")

    def test_real_submit_queue_without_its_bucket(self):
        def drop(t):
            grant = resources(t)["SubmitQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
            del grant["Condition"]["ArnEquals"]

        problems = ct.check_service_principal_sources(_changed(TEMPLATE, drop))
        self.assertProblem(problems, "SubmitQueuePolicy", "UploadEvents", "aws:SourceArn")


def endpoint_role() -> dict:
    """A SageMaker execution role trusting SageMaker for the stack's account only."""
    return {"Resources": {"EndpointRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:*"}},
            }}]}}},
        # Lambda documents no source keys for role assumption: its roles are not checked.
        "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
    }}


class TrustPolicies(unittest.TestCase):
    """The SageMaker execution role trusts SageMaker for the stack's account only (confused deputy)."""

    def problems(self, mutate=lambda t: None) -> list[str]:
        template = endpoint_role()
        mutate(template)
        return ct.check_trust_policies(template)

    @staticmethod
    def condition(t: dict) -> dict:
        return t["Resources"]["EndpointRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]

    def assertProblem(self, problems: list[str], *fragments: str) -> None:
        TemplateCase.assertProblem(self, problems, *fragments)

    def test_fragment_passes(self):
        self.assertEqual(self.problems(), [])

    def test_real_template_passes(self):
        self.assertEqual(ct.check_trust_policies(TEMPLATE), [])

    def test_trust_without_source_account(self):
        def drop(t):
            del self.condition(t)["StringEquals"]

        self.assertProblem(self.problems(drop), "EndpointRole", "sagemaker.amazonaws.com", "aws:SourceAccount")

    def test_trust_without_source_arn(self):
        def drop(t):
            del self.condition(t)["ArnLike"]

        self.assertProblem(self.problems(drop), "EndpointRole", "aws:SourceArn")

    def test_trust_without_any_condition(self):
        def drop(t):
            t["Resources"]["EndpointRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].pop("Condition")

        problems = self.problems(drop)
        self.assertProblem(problems, "EndpointRole", "aws:SourceAccount")
        self.assertProblem(problems, "EndpointRole", "aws:SourceArn")

    def test_source_arn_of_any_account(self):
        def widen(t):
            self.condition(t)["ArnLike"]["aws:SourceArn"] = "arn:aws:sagemaker:*:*:*"

        self.assertProblem(self.problems(widen), "EndpointRole", "aws:SourceArn")

    def test_literal_account_counts(self):
        def literal(t):
            self.condition(t)["StringEquals"]["aws:SourceAccount"] = "123456789012"
            self.condition(t)["ArnLike"]["aws:SourceArn"] = "arn:aws:sagemaker:eu-west-1:123456789012:*"

        self.assertEqual(self.problems(literal), [])

    def test_a_service_the_check_does_not_know_is_a_decision_to_make(self):
        def other(t):
            t["Resources"]["EndpointRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] = {
                "Service": "glue.amazonaws.com"}

        self.assertProblem(self.problems(other), "EndpointRole", "glue.amazonaws.com", "TRUST_WITHOUT_SOURCE_KEYS")

    def test_batch_operations_is_trusted_as_s3_documents_it(self):
        # The real role trusts batchoperations.s3.amazonaws.com without condition keys; S3 documents
        # none, so the rule asks none.
        trust = resources(TEMPLATE)["BatchOperationsRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual([s["Principal"] for s in trust], [{"Service": "batchoperations.s3.amazonaws.com"}])
        self.assertIn("batchoperations.s3.amazonaws.com", ct.TRUST_WITHOUT_SOURCE_KEYS)

    def test_real_endpoint_role_without_its_condition(self):
        def drop(t):
            resources(t)["SageMakerExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].pop("Condition")

        problems = ct.check_trust_policies(_changed(TEMPLATE, drop))
        self.assertProblem(problems, "SageMakerExecutionRole", "aws:SourceAccount")


def endpoint_policy() -> dict:
    """An endpoint role's policy writing its instance metrics, scoped as the metric-namespace and
    image-pull rules want, with a pull from one account's repository."""
    return {"Resources": {"EndpointPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": "endpoint", "Roles": [{"Ref": "EndpointRole"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [
                {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
                 "Condition": {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}},
                {"Sid": "Pull", "Effect": "Allow",
                 "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                 "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/cochl"}},
            ]}}}}}


class EndpointRoleScope(unittest.TestCase):
    """PutMetricData pinned to a namespace of one's own, image pulls to a named account."""

    @staticmethod
    def grant(t: dict, sid: str) -> dict:
        doc = t["Resources"]["EndpointPolicy"]["Properties"]["PolicyDocument"]
        return next(s for s in doc["Statement"] if s.get("Sid") == sid)

    def problems(self, mutate=lambda t: None) -> list[str]:
        template = endpoint_policy()
        mutate(template)
        return ct.check_metric_namespaces(template) + ct.check_image_pulls(template)

    def assertProblem(self, problems: list[str], *fragments: str) -> None:
        TemplateCase.assertProblem(self, problems, *fragments)

    def test_fragment_passes(self):
        self.assertEqual(self.problems(), [])

    def test_real_template_passes(self):
        self.assertEqual(ct.check_metric_namespaces(TEMPLATE) + ct.check_image_pulls(TEMPLATE), [])

    def test_real_endpoint_role_pulls_no_image(self):
        # SageMaker pulls the Marketplace model package's image itself.
        stmts, _ = ct.role_statements(TEMPLATE, "SageMakerExecutionRole")
        self.assertFalse([a for s in stmts for a in ct.actions_of(s) if a.startswith("ecr:")])

    def test_metrics_in_a_reserved_namespace(self):
        def add(t):
            self.grant(t, "Metrics")["Condition"]["StringEquals"]["cloudwatch:namespace"] = [
                "/aws/sagemaker/Endpoints", "AWS/SageMaker"]

        self.assertProblem(self.problems(add), "EndpointPolicy statement Metrics", "'AWS/SageMaker'", "reserves")

    def test_metrics_pattern_that_matches_reserved_namespaces(self):
        def widen(t):
            c = self.grant(t, "Metrics")["Condition"]
            c["StringLike"] = {"cloudwatch:namespace": "A*"}
            del c["StringEquals"]

        self.assertProblem(self.problems(widen), "Metrics", "'A*'", "reserves")

    def test_metrics_prefix_pattern_of_ones_own(self):
        def widen(t):
            c = self.grant(t, "Metrics")["Condition"]
            c["StringLike"] = {"cloudwatch:namespace": "/aws/sagemaker/*"}
            del c["StringEquals"]

        self.assertEqual(self.problems(widen), [])

    def test_metrics_without_namespace_condition(self):
        def drop(t):
            del self.grant(t, "Metrics")["Condition"]

        self.assertProblem(self.problems(drop), "Metrics", "without a cloudwatch:namespace condition")

    def test_pull_from_every_account(self):
        def widen(t):
            self.grant(t, "Pull")["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:*:repository/*"}

        self.assertProblem(self.problems(widen), "Pull", "ecr:BatchGetImage", "every account")

    def test_pull_from_anything(self):
        def widen(t):
            self.grant(t, "Pull")["Resource"] = "*"

        self.assertProblem(self.problems(widen), "Pull", "'*'", "every account")

    def test_the_old_endpoint_role_is_refused(self):
        # What the endpoint role granted before: every repository of the Region, and AWS/SageMaker.
        def revert(t):
            doc = resources(t)["SageMakerExecutionPolicy"]["Properties"]["PolicyDocument"]
            metrics = next(s for s in doc["Statement"] if s.get("Sid") == "EndpointMetrics")
            metrics["Condition"] = {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}}
            doc["Statement"].append({
                "Sid": "PullImage", "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:*:repository/*"}})

        reverted = _changed(TEMPLATE, revert)
        problems = ct.check_metric_namespaces(reverted) + ct.check_image_pulls(reverted)
        self.assertProblem(problems, "SageMakerExecutionPolicy statement EndpointMetrics", "AWS/SageMaker")
        self.assertProblem(problems, "SageMakerExecutionPolicy statement PullImage", "every account")


class AlarmActions(TemplateCase):
    """Every alarm notifies the alarm topic or drives a scaling policy."""

    def test_real_template_passes(self):
        self.assertEqual(ct.check_alarm_actions(TEMPLATE), [])

    def test_endpoint_alarms_notify_the_alarm_topic(self):
        for alarm, metric in (("EndpointWithoutCapacityAlarm", "HasBacklogWithoutCapacity"),
                              ("EndpointOldestRequestAlarm", "ApproximateAgeOfOldestRequest")):
            props = resources(TEMPLATE)[alarm]["Properties"]
            self.assertEqual((props["Namespace"], props["MetricName"]), ("AWS/SageMaker", metric))
            self.assertEqual(props["AlarmActions"], {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}],
                                                                {"Ref": "AWS::NoValue"}]})

    def test_alarm_without_actions(self):
        def drop(t):
            del resources(t)["EndpointOldestRequestAlarm"]["Properties"]["AlarmActions"]

        self.assertProblem(self.broken(drop), "EndpointOldestRequestAlarm", "AlarmActions", "unheard")

    def test_alarm_acting_on_something_outside_the_template(self):
        def change(t):
            props = resources(t)["EndpointWithoutCapacityAlarm"]["Properties"]
            props["AlarmActions"] = ["arn:aws:sns:eu-west-1:123456789012:elsewhere"]

        self.assertProblem(self.broken(change), "EndpointWithoutCapacityAlarm", "AlarmActions")

    def test_scaling_alarm_acts_through_its_policy(self):
        props = resources(TEMPLATE)["HasBacklogWithoutCapacityAlarm"]["Properties"]
        self.assertEqual(props["AlarmActions"], [{"Ref": "ScaleOutFromZero"}])


def _changed(template: dict, mutate) -> dict:
    copied = copy.deepcopy(template)
    mutate(copied)
    return copied


class DashboardAndMetrics(TemplateCase):
    """The dashboard's body is read as the JSON it becomes, and the CochlSense metrics the alarms
    and the dashboard name are the ones the code emits."""

    #: What the functions emit today (the brief of the dashboard, DEPLOY.md's table).
    EMITTED = {
        "InFlight", "InFlightAtLimit", "FilesSubmitted", "FilesRejected", "FilesFailed", "FilesDeferred",
        "FilesDeleted", "FilesCompleted", "FilesResubmitted", "UploadToResultLatency", "ResultBytes",
        "Detections", "SweepExamined", "SweepSettled", "SweepNotSent", "SweepErrors", "SweepSlotsReclaimed",
    }

    @staticmethod
    def edit_body(old: str, new: str):
        def mutate(t: dict) -> None:
            sub = resources(t)["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
            assert old in sub[0], f"the dashboard changed; update this test ({old!r})"
            sub[0] = sub[0].replace(old, new, 1)
        return mutate

    def test_the_code_emits_the_metrics_and_no_dimension_or_unit(self):
        self.assertLessEqual(self.EMITTED, CODE.metrics)
        self.assertFalse(CODE.metrics & {"Reason", "Tag", "EndpointName", "Count", "Bytes", "Milliseconds", "Other"})

    def test_the_dashboard_graphs_the_outcomes(self):
        refs, problems = ct.named_metrics(TEMPLATE)
        self.assertEqual(problems, [])
        graphed = {name for where, ns, name in refs if ns == "CochlSense" and where.startswith("Dashboard")}
        self.assertEqual(graphed, self.EMITTED - {"SweepExamined", "SweepNotSent"})
        searched = {name for where, ns, name in refs if ns == "CochlSense" and "by reason" in where}
        self.assertEqual(searched, {"FilesRejected", "FilesFailed"})

    def test_misspelt_metric_in_a_graph(self):
        self.assertProblem(self.broken(self.edit_body('"FilesCompleted"', '"FileCompleted"')),
                           "Dashboard widget", "Files per 5 minutes", "'FileCompleted'", "no EMF line")

    def test_misspelt_metric_in_a_search(self):
        self.assertProblem(self.broken(self.edit_body("FilesFailed", "FilesFaild")), "by reason", "'FilesFaild'")

    def test_misspelt_metric_in_an_alarm(self):
        def rename(t):
            resources(t)["InFlightAtLimitAlarm"]["Properties"]["MetricName"] = "InFlightLimit"
        self.assertProblem(self.broken(rename), "InFlightAtLimitAlarm", "'InFlightLimit'", "no EMF line")

    def test_misspelt_metric_in_an_alarm_on_metric_math(self):
        def math(t):
            props = resources(t)["InFlightAtLimitAlarm"]["Properties"]
            for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period"):
                props.pop(key)
            props["Metrics"] = [{"Id": "m", "MetricStat": {"Metric": {"Namespace": "CochlSense", "MetricName": "InFlightAtLimits"},
                                                              "Period": 60, "Stat": "Maximum"}}]
        self.assertProblem(self.broken(math), "InFlightAtLimitAlarm", "'InFlightAtLimits'")

    def test_other_namespaces_are_not_the_codes(self):
        self.assertEqual(self.broken(self.edit_body('"ApproximateBacklogSize"', '"SomethingElse"')), [])

    def test_body_that_is_not_json(self):
        self.assertProblem(self.broken(self.edit_body('"title": "Dead letters",', '"title": "Dead letters",,')),
                           "Dashboard: DashboardBody is not JSON once substituted")

    def test_body_that_cannot_be_read(self):
        def join(t):
            resources(t)["Dashboard"]["Properties"]["DashboardBody"] = {"Fn::Join": ["", ["{", "}"]]}
        self.assertProblem(self.broken(join), "Dashboard: DashboardBody is neither a string nor an Fn::Sub")

    def test_graph_without_region(self):
        self.assertProblem(self.broken(self.edit_body('"title": "Dead letters", "region": "${AWS::Region}",', '"title": "Dead letters",')),
                           "Dead letters", "needs its region")

    def test_widget_past_the_grid(self):
        self.assertProblem(self.broken(self.edit_body('"x": 16, "y": 20, "width": 8', '"x": 16, "y": 20, "width": 9')),
                           "Sweeper per 5 minutes", "column 25")

    def test_ids_distinct_and_lowercase_first(self):
        self.assertProblem(self.broken(self.edit_body('"id": "failed"', '"id": "rejected"')), "by reason", "'rejected' is used twice")
        self.assertProblem(self.broken(self.edit_body('"id": "processed"', '"id": "Processed"')), "Endpoint instances", "'Processed'")

    def test_sub_placeholders_and_escapes(self):
        body, why = ct.dashboard_json({"Fn::Sub": ['{"a": "q-${Q.QueueName}", "b": "${!PROP(\'Dim.Tag\')}", "n": ${N}}', {}]})
        self.assertIsNone(why)
        self.assertEqual(body, {"a": "q-0", "b": "${PROP('Dim.Tag')}", "n": 0})

    def test_rows_repeating_the_row_above(self):
        refs, problems = ct.dashboard_widgets("D", {"widgets": [{"type": "metric", "x": 0, "width": 24, "properties": {
            "region": "eu-west-1", "title": "t",
            "metrics": [["CochlSense", "FilesSubmitted", {"id": "a"}], [".", "FilesCompleted"], ["AWS/SQS", "."]]}}]})
        self.assertEqual(problems, [])
        self.assertEqual([(ns, name) for _, ns, name in refs],
                         [("CochlSense", "FilesSubmitted"), ("CochlSense", "FilesCompleted"), ("AWS/SQS", "FilesCompleted")])

    def test_search_terms(self):
        self.assertEqual(ct.search_metrics("SEARCH('{CochlSense,Reason} MetricName=\"FilesFailed\"', 'Sum', 300)"),
                         [("CochlSense", "FilesFailed")])
        self.assertEqual(
            ct.search_metrics("SEARCH('{\"/aws/x\",A} A=\"b\" AND (MetricName=\"P\" OR MetricName=Q)', 'Sum', 60) + 1"),
            [("/aws/x", "P"), ("/aws/x", "Q")])
        self.assertEqual(ct.search_metrics("FILL(cpu, 0)"), [])


class Backfill(TemplateCase):
    """What the template gives S3 Batch Operations and the backfill, beyond what the code derives."""

    def parameter(self, name: str) -> dict:
        return TEMPLATE["Parameters"][name]

    def test_prefix_patterns_keep_backfill_keys_out_of_uploads_and_staging(self):
        for name, good, bad in (
            ("InputPrefix", ["incoming/", "audio/in/"], ["backfill/", "backfill/manifests/", "results/", ""]),
            ("StagingPrefix", ["staging/"], ["backfill/", "backfill/x/", "failures/"]),
            ("BackfillPrefix", ["", "archive/", "incoming/"], ["backfill/", "backfill/reports/", "results/", "archive"]),
        ):
            pattern = self.parameter(name)["AllowedPattern"]
            for value in good:
                self.assertTrue(re.fullmatch(pattern, value), f"{name} refuses {value!r}")
            for value in bad:
                self.assertFalse(re.fullmatch(pattern, value), f"{name} accepts {value!r}")
        self.assertEqual(self.parameter("BackfillPrefix")["Default"], "")

    def test_batch_operations_role_reads_manifests_invokes_backfill_writes_reports(self):
        grants = {(a, json_text(s["Resource"])) for s in role_statements(TEMPLATE, "BatchOperationsRole")
                  for a in ct.as_list(s["Action"])}
        self.assertEqual({a for a, _ in grants},
                         {"s3:GetObject", "s3:GetObjectVersion", "lambda:InvokeFunction", "s3:PutObject"})
        for action, resource in grants:
            if action.startswith("s3:Get"):
                self.assertIn("/backfill/manifests/*", resource)
                self.assertIn("/backfill/inventory/*", resource)
            elif action == "s3:PutObject":
                self.assertIn("/backfill/reports/*", resource)
            else:
                self.assertIn("BackfillFunction", resource)

    def test_endpoint_and_submit_read_what_a_backfill_names(self):
        submit = json_text(statement(TEMPLATE, "SubmitFunctionRole", "ReadUploads")["Resource"])
        endpoint = json_text(next(s for s in resources(TEMPLATE)["SageMakerExecutionPolicy"]["Properties"]
                                  ["PolicyDocument"]["Statement"] if s.get("Sid") == "ReadUploads")["Resource"])
        backfill = json_text(statement(TEMPLATE, "BackfillFunctionRole", "ReadBackfillObjects")["Resource"])
        for resource in (submit, endpoint, backfill):
            self.assertIn("${InputPrefix}*", resource)
            self.assertIn("${BackfillPrefix}*", resource)

    def test_notifications_and_lifecycle_leave_backfill_keys_alone(self):
        bucket = resources(TEMPLATE)["AudioBucket"]["Properties"]
        prefixes = [r["Value"] for c in bucket["NotificationConfiguration"]["QueueConfigurations"]
                    for r in c["Filter"]["S3Key"]["Rules"]]
        self.assertEqual(prefixes, [{"Ref": "InputPrefix"}] * 2)
        expiring = {json_text(r.get("Prefix")) for r in ct.as_list(bucket["LifecycleConfiguration"]["Rules"])
                    if "ExpirationInDays" in r}
        self.assertEqual(expiring, {'"results/"', '"failures/"', '{"Ref": "StagingPrefix"}', '"backfill/inventory/"'})

    def test_backfill_is_capped_and_has_its_log_group(self):
        props = resources(TEMPLATE)["BackfillFunction"]["Properties"]
        self.assertEqual(props["ReservedConcurrentExecutions"], {"Ref": "BackfillReservedConcurrency"})
        self.assertEqual(props["LoggingConfig"]["LogGroup"], {"Ref": "BackfillLogGroup"})
        self.assertLessEqual(ct.number(props["Timeout"]), 300)
        for output in ("BackfillFunctionArn", "BatchOperationsRoleArn", "AudioBucketArn"):
            self.assertIn(output, TEMPLATE["Outputs"])


def json_text(value) -> str:
    return json.dumps(value, sort_keys=True)


class Storage(TemplateCase):
    def test_public_access_not_blocked(self):
        def change(t):
            resources(t)["AudioBucket"]["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = False

        self.assertProblem(self.broken(change), "AudioBucket", "RestrictPublicBuckets")

    def test_bucket_without_tls_only_policy(self):
        def drop(t):
            del resources(t)["AudioBucketPolicy"]

        self.assertProblem(self.broken(drop), "AudioBucket", "TLS")

    def test_bucket_policy_allowing_plain_http(self):
        def change(t):
            s = resources(t)["AudioBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
            s["Condition"]["Bool"]["aws:SecureTransport"] = "true"

        self.assertProblem(self.broken(change), "AudioBucket", "TLS")

    def test_bucket_without_encryption(self):
        def drop(t):
            del resources(t)["AudioBucket"]["Properties"]["BucketEncryption"]

        self.assertProblem(self.broken(drop), "AudioBucket", "BucketEncryption")

    def test_unencrypted_table(self):
        def change(t):
            resources(t)["JobsTable"]["Properties"]["SSESpecification"]["SSEEnabled"] = False

        self.assertProblem(self.broken(change), "JobsTable", "SSEEnabled")

    def test_table_without_point_in_time_recovery(self):
        def drop(t):
            del resources(t)["JobsTable"]["Properties"]["PointInTimeRecoverySpecification"]

        self.assertProblem(self.broken(drop), "JobsTable", "point-in-time recovery")

    def test_table_indexes_must_match_provision_rs(self):
        def change(t):
            indexes = resources(t)["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]
            indexes[0]["IndexName"] = "by-tags"
            indexes[1]["Projection"]["ProjectionType"] = "KEYS_ONLY"

        problems = self.broken(change)
        self.assertProblem(problems, "JobsTable", "global secondary indexes", "by-tags")
        self.assertProblem(problems, "JobsTable", "by-status", "KEYS_ONLY")

    def test_hash_only_keys_only_index_must_match_provision_rs(self):
        def change(t):
            index = next(i for i in resources(t)["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]
                         if i["IndexName"] == "by-inference")
            index["KeySchema"].append({"AttributeName": "gsi2sk", "KeyType": "RANGE"})
            index["Projection"]["ProjectionType"] = "ALL"

        problems = self.broken(change)
        self.assertProblem(problems, "JobsTable", "index by-inference keys (gsi3pk, gsi2sk)", "(gsi3pk, hash key only)")
        self.assertProblem(problems, "JobsTable", "by-inference projects 'ALL'", "KEYS_ONLY")

    def test_missing_index_is_found(self):
        def drop(t):
            props = resources(t)["JobsTable"]["Properties"]
            props["GlobalSecondaryIndexes"] = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] != "by-inference"]

        self.assertProblem(self.broken(drop), "JobsTable", "global secondary indexes", "by-inference")

    def test_table_ttl_must_match_provision_rs(self):
        def drop(t):
            del resources(t)["JobsTable"]["Properties"]["TimeToLiveSpecification"]

        self.assertProblem(self.broken(drop), "JobsTable", "TimeToLiveSpecification", "purge_at")

        def other(t):
            resources(t)["JobsTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] = "expires_at"

        self.assertProblem(self.broken(other), "JobsTable", "TimeToLiveSpecification", "purge_at")

        def disabled(t):
            resources(t)["JobsTable"]["Properties"]["TimeToLiveSpecification"]["Enabled"] = False

        self.assertProblem(self.broken(disabled), "JobsTable", "TimeToLiveSpecification", "purge_at")

    def test_table_keys_must_match_provision_rs(self):
        def change(t):
            props = resources(t)["JobsTable"]["Properties"]
            props["KeySchema"][1]["AttributeName"] = "gsi1sk"
            props["AttributeDefinitions"][0]["AttributeType"] = "N"
            props["BillingMode"] = "PROVISIONED"

        problems = self.broken(change)
        self.assertProblem(problems, "JobsTable", "key schema")
        self.assertProblem(problems, "JobsTable", "attribute definitions")
        self.assertProblem(problems, "JobsTable", "BillingMode")

    def test_unencrypted_topic(self):
        def drop(t):
            del resources(t)["DetectionsTopic"]["Properties"]["KmsMasterKeyId"]

        self.assertProblem(self.broken(drop), "DetectionsTopic", "not encrypted")

    def test_unencrypted_topic_needs_a_reason(self):
        def change(t):
            resources(t)["AlarmTopic"]["Metadata"]["cochl-check"]["unencrypted-topic"] = " "

        self.assertProblem(self.broken(change), "AlarmTopic", "not encrypted")


class SpelledNames(TemplateCase):
    def test_bucket_name_spelled_differently(self):
        def change(t):
            # The read of what a backfill may name (BackfillPrefix), beside the uploads'.
            sub = statement(t, "SubmitFunctionRole", "ReadUploads")["Resource"][1]["Fn::Sub"]
            self.assertIn("${BackfillPrefix}", sub[0])
            sub[0] = sub[0].replace("${AWS::Region}-", "")

        self.assertProblem(self.broken(change), "AudioBucket", "spelled differently")

    def test_bucket_name_with_other_variables(self):
        def change(t):
            sub = resources(t)["CochlEndpointConfig"]["Properties"]["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"]
            sub["Fn::Sub"][1]["Id"] = "fixed"

        self.assertProblem(self.broken(change), "AudioBucket", "s3://cochl-audio-")

    def test_queue_name_spelled_differently(self):
        def change(t):
            allow = resources(t)["SubmitDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
            allow["sourceQueueArns"][0]["Fn::Sub"][0] = allow["sourceQueueArns"][0]["Fn::Sub"][0].replace(
                "cochl-submit-", "cochl-submit")

        self.assertProblem(self.broken(change), "SubmitQueue", "spelled differently")

    def test_endpoint_name_spelled_differently(self):
        def change(t):
            env = resources(t)["SubmitFunction"]["Properties"]["Environment"]["Variables"]
            env["COCHL_ENDPOINT_NAME"]["Fn::If"][1]["Fn::Sub"][0] = "cochl-sense${Id}"

        self.assertProblem(self.broken(change), "CochlEndpoint", "spelled differently", "cochl-sense${Id}")


class HttpAuth(TemplateCase):
    def test_function_url_without_iam(self):
        def change(t):
            resources(t)["QueryFunction"]["Properties"]["FunctionUrlConfig"]["AuthType"] = "NONE"

        self.assertProblem(self.broken(change), "QueryFunction", "AWS_IAM")

    def test_http_function_without_entry_point(self):
        def drop(t):
            del resources(t)["QueryFunction"]["Properties"]["FunctionUrlConfig"]

        self.assertProblem(self.broken(drop), "QueryFunction", "no Function URL or HTTP API event")

    def test_http_api_event_without_iam(self):
        def change(t):
            props = resources(t)["QueryFunction"]["Properties"]
            del props["FunctionUrlConfig"]
            props["Events"] = {"Api": {"Type": "HttpApi", "Properties": {"Path": "/{proxy+}", "Method": "GET"}}}

        self.assertProblem(self.broken(change), "QueryFunction", "HTTP event Api", "IAM")

    def test_lambda_url_resource_without_iam(self):
        def add(t):
            resources(t)["OpenUrl"] = {"Type": "AWS::Lambda::Url",
                                       "Properties": {"AuthType": "NONE", "TargetFunctionArn": {"Ref": "QueryFunction"}}}

        self.assertProblem(self.broken(add), "OpenUrl", "AWS_IAM")


class CodeChanges(TemplateCase):
    """The code model follows the Rust source: change the code, and the same template fails."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.repo = Path(self._tmp.name)
        shutil.copytree(REPO / "crates", self.repo / "crates",
                        ignore=shutil.ignore_patterns("target", "*.wav", "*.mp3", "*.ogg", "*.pcm"))
        shutil.copy(REPO / "Cargo.toml", self.repo / "Cargo.toml")  # [workspace.dependencies]

    def tearDown(self):
        self._tmp.cleanup()

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.repo / relative
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"{relative} changed; update this test")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def test_copy_passes_unchanged(self):
        self.assertEqual(ct.check(TEMPLATE, ct.load_code(self.repo)), [])

    def test_new_setting_read_by_a_function(self):
        self.edit("crates/aws/src/settings.rs", 'pub const QUERY_URL: &str = "COCHL_QUERY_URL";',
                  'pub const QUERY_URL: &str = "COCHL_QUERY_URL";\npub const NEW_ONE: &str = "COCHL_NEW_ONE";')
        self.edit("crates/aws/src/settings.rs", "query_url: env.get(QUERY_URL),",
                  "query_url: env.get(QUERY_URL).or(env.get(NEW_ONE)),")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "ResultFunction", "COCHL_NEW_ONE", "ResultSettings::from_env", "not set")

    def test_changed_sdk_call_changes_the_permissions_needed(self):
        self.edit("crates/aws/src/dynamo/mod.rs", ".batch_write_item()", ".scan()")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        for fn in ("SubmitFunction", "ResultFunction"):
            self.assertProblem(problems, fn, "does not allow dynamodb:Scan")
            self.assertProblem(problems, fn, "allows dynamodb:BatchWriteItem", "matches no SDK call")

    def test_calls_through_other_methods_are_followed(self):
        # files_with_tag_counted reaches BatchGetItem only through current_inferences.
        self.edit("crates/aws/src/dynamo/read.rs", ".batch_get_item()", ".scan()")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "QueryFunction", "dynamodb:Scan")

    def test_client_handed_elsewhere_cannot_be_read(self):
        self.edit("crates/aws/src/dynamo/read.rs", "let pk = schema::file_pk(file);",
                  "let pk = schema::file_pk(file);\n        helper(&self.client);")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "cochl-query", "DynamoStore::get_file", "hands its SDK client")

    def test_adapter_built_but_calls_not_recognised(self):
        self.edit("crates/query/src/main.rs", "logging::init();",
                  "logging::init();\n    let _ = cochl_aws::notify::Topic::new(todo!(), \"arn\");")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "query", "builds a Topic")

    def test_new_lambda_crate_needs_a_function(self):
        crate = self.repo / "crates" / "archiver"
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(textwrap.dedent("""\
            [package]
            name = "cochl-archiver"
            version = "0.1.0"
        """), encoding="utf-8")
        (crate / "src" / "main.rs").write_text(textwrap.dedent("""\
            use cochl_aws::settings::{Env, QuerySettings};
            #[tokio::main]
            async fn main() -> Result<(), lambda_runtime::Error> {
                let settings = QuerySettings::from_env(&Env::process())?;
                lambda_runtime::run(service_fn(|e| async { Ok::<_, Error>(()) })).await
            }
        """), encoding="utf-8")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "binary cochl-archiver", "has no function")

    def test_the_code_of_a_path_dependency_counts(self):
        # Without on-result's code, the sweeper's role grants what only on-result's handler needs.
        self.edit("crates/sweeper/Cargo.toml", "cochl-on-result.workspace = true\n", "")
        code = ct.load_code(self.repo)
        self.assertEqual([p.name for p in code.binaries["cochl-sweeper"].sources], ["sweeper"])
        problems = ct.check(TEMPLATE, code)
        self.assertProblem(problems, "SweeperFunction", "allows sns:Publish", "matches no SDK call")
        self.assertProblem(problems, "SweeperFunction", "allows dynamodb:BatchWriteItem", "matches no SDK call")

    def test_a_dependency_by_path_counts_like_one_through_the_workspace(self):
        self.edit("crates/sweeper/Cargo.toml", "cochl-on-result.workspace = true",
                  'cochl-on-result = { path = "../on-result" }')
        self.assertEqual(ct.check(TEMPLATE, ct.load_code(self.repo)), [])

    def test_a_dev_dependency_does_not_count(self):
        self.edit("crates/sweeper/Cargo.toml", "cochl-on-result.workspace = true\n", "")
        self.edit("crates/sweeper/Cargo.toml", "[dev-dependencies]\n", "[dev-dependencies]\ncochl-on-result.workspace = true\n")
        self.assertEqual([p.name for p in ct.load_code(self.repo).binaries["cochl-sweeper"].sources], ["sweeper"])

    def test_calls_through_a_helper_of_crates_aws_count(self):
        # submit finds leaked slots only through cochl_aws::admission::reclaim_leaked_slots.
        self.edit("crates/aws/src/admission.rs", "store.expired_slots(now, max).await?", "Vec::new()")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "SubmitFunction", "allows dynamodb:Query", "matches no SDK call")

    def test_the_client_accessor_is_read_in_place_but_not_handed_out(self):
        # `self.client().query()` is a Query (the real code); handing `self.client()` on is opaque.
        self.edit("crates/aws/src/dynamo/lookup.rs", "let output = self", "helper(self.client());\n        let output = self")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "cochl-on-result", "DynamoStore::client", "hands its SDK client")

    def test_a_required_setting_cannot_be_left_unset(self):
        self.edit("crates/aws/src/settings.rs", ".number(CLAIM_LEASE_SECONDS, 1..=3_600)?",
                  ".number(CLAIM_LEASE_SECONDS, 1..=3_600).and(env.required(CLAIM_LEASE_SECONDS).map(|_| None))?")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "SubmitFunction", "COCHL_CLAIM_LEASE_SECONDS", "requires it")

    def test_new_index_in_provision_rs_needs_one_in_the_template(self):
        self.edit("crates/aws/src/dynamo/schema.rs", 'pub const GSI3_PK: &str = "gsi3pk";',
                  'pub const GSI3_PK: &str = "gsi3pk";\npub const EXTRA_INDEX: &str = "by-extra";')
        self.edit("crates/aws/src/dynamo/provision.rs",
                  ".global_secondary_indexes(keys_only_index(INFERENCE_INDEX, GSI3_PK)?);",
                  ".global_secondary_indexes(keys_only_index(INFERENCE_INDEX, GSI3_PK)?)\n"
                  "        .global_secondary_indexes(index(EXTRA_INDEX, GSI3_PK, GSI1_SK)?);")
        code = ct.load_code(self.repo)
        self.assertEqual(code.table.indexes["by-extra"], ("gsi3pk", "gsi1sk", "ALL"))
        self.assertProblem(ct.check(TEMPLATE, code), "JobsTable", "global secondary indexes", "by-extra")

    def test_an_index_that_cannot_be_read(self):
        provision = self.repo / "crates/aws/src/dynamo/provision.rs"
        original = provision.read_text(encoding="utf-8")
        for built in ("GlobalSecondaryIndex::builder().build()?", 'keys_only_index("by-extra", GSI3_PK)?'):
            with self.subTest(built=built):
                provision.write_text(original, encoding="utf-8")
                self.edit("crates/aws/src/dynamo/provision.rs",
                          ".global_secondary_indexes(keys_only_index(INFERENCE_INDEX, GSI3_PK)?);",
                          f".global_secondary_indexes({built});")
                problems = ct.load_code(self.repo).problems
                self.assertTrue(any("cannot read the index" in p for p in problems), problems)

    def test_a_read_naming_a_version_needs_the_version_action(self):
        # The sweeper heads its result with no version (None): s3:GetObject suffices.
        self.assertEqual(ct.load_code(self.repo).binaries["cochl-sweeper"].versioned_calls, set())
        self.edit("crates/sweeper/src/lib.rs", "objects.head(output, None)", "objects.head(output, Some(\"v1\"))")
        code = ct.load_code(self.repo)
        self.assertEqual(code.binaries["cochl-sweeper"].versioned_calls, {("s3", "HeadObject")})
        self.assertProblem(ct.check(TEMPLATE, code), "SweeperFunction", "does not allow s3:GetObjectVersion",
                           "HeadObject naming an object version")

    def test_a_request_without_version_needs_no_version_action(self):
        # Objects::head stops setting the version: nobody's HeadObject needs s3:GetObjectVersion.
        self.edit("crates/aws/src/objects.rs", ".set_version_id(version_id.map(str::to_string))", "")
        code = ct.load_code(self.repo)
        self.assertEqual({n: b.versioned_calls for n, b in code.binaries.items() if b.versioned_calls}, {})

    def test_renamed_metric_leaves_its_graph_empty(self):
        self.edit("crates/sweeper/src/lib.rs", 'count("SweepSettled"', 'count("SweepsSettled"')
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "Dashboard widget", "Sweeper", "'SweepSettled'", "no EMF line")

    def test_renamed_emf_declaration_silences_its_alarm(self):
        self.edit("crates/aws/src/metrics.rs", '{"Name": "InFlightAtLimit"', '{"Name": "AtLimit"')
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "InFlightAtLimitAlarm", "'InFlightAtLimit'", "no EMF line")
        self.assertProblem(problems, "Dashboard widget", "Admission control", "'InFlightAtLimit'")

    def test_ttl_dropped_from_provision_rs(self):
        self.edit("crates/aws/src/dynamo/provision.rs", "client\n        .update_time_to_live()", "client\n        .describe_time_to_live()")
        self.edit("crates/aws/src/dynamo/provision.rs", ".attribute_name(PURGE_AT)", ".attribute_name(PK)")
        problems = ct.check(TEMPLATE, ct.load_code(self.repo))
        self.assertProblem(problems, "JobsTable", "enables TTL on 'purge_at'", "provision.rs enables none")


class SyntheticCode(unittest.TestCase):
    """The code model on a small workspace of its own (one adapter, one binary), so the rules
    that the real code may not exercise yet are tested all the same."""

    SETTINGS = textwrap.dedent("""\
        pub const TABLE_NAME: &str = "COCHL_TABLE_NAME";
        pub const LIMIT: &str = "COCHL_LIMIT";
        pub const INSTANCES: &str = "COCHL_INSTANCES";
        pub const UNUSED: &str = "COCHL_UNUSED";
        pub struct WorkerSettings { pub table: String, pub limit: u32 }
        impl WorkerSettings {
            pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
                Ok(WorkerSettings { table: env.required(TABLE_NAME)?, limit: Self::limit(env)? })
            }
            /// LIMIT, else derived from INSTANCES.
            fn limit(env: &Env) -> Result<u32, SettingsError> {
                Ok(env.number(LIMIT)?.unwrap_or(derived(env)?))
            }
        }
        fn derived(env: &Env) -> Result<u32, SettingsError> {
            Ok(env.number(INSTANCES)?.unwrap_or(1) * 2)
        }
    """)
    STORE = textwrap.dedent("""\
        use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
        use aws_sdk_dynamodb::Client;
        pub struct Store {
            client: Client,
        }
        impl Store {
            pub fn new(client: Client) -> Self { Store { client } }
            pub async fn take(&self) -> Result<(), E> {
                let put = Put::builder().build();
                self.client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .transact_items(self.counter())
                    .send()
                    .await
            }
            fn counter(&self) -> TransactWriteItem {
                TransactWriteItem::builder().update(Update::builder().build()).build()
            }
        }
    """)
    MAIN = textwrap.dedent("""\
        use cochl_aws::settings::{Env, WorkerSettings};
        use cochl_aws::store::Store;
        #[tokio::main]
        async fn main() -> Result<(), lambda_runtime::Error> {
            let settings = WorkerSettings::from_env(&Env::process())?;
            let store = Store::new(client);
            store.take().await?;
            lambda_runtime::run(service_fn(|e| async { Ok::<_, Error>(()) })).await
        }
    """)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.repo = Path(self._tmp.name)
        self.write("crates/aws/src/settings.rs", self.SETTINGS)
        self.write("crates/aws/src/store.rs", self.STORE)
        self.write("crates/worker/Cargo.toml", '[package]\nname = "cochl-worker"\nversion = "0.1.0"\n')
        self.write("crates/worker/src/main.rs", self.MAIN)

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, relative: str, text: str) -> None:
        path = self.repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def worker(self) -> tuple[ct.Binary, list[str]]:
        code = ct.load_code(self.repo)
        return code.binaries["cochl-worker"], code.problems

    def test_settings_read_through_helper_functions(self):
        worker, _ = self.worker()
        self.assertEqual(worker.env, {"COCHL_TABLE_NAME", "COCHL_LIMIT", "COCHL_INSTANCES"})

    def test_transaction_needs_the_actions_of_its_items(self):
        worker, problems = self.worker()
        self.assertEqual(problems, [])
        self.assertEqual(worker.sdk_calls, {("dynamodb", "TransactWriteItems")})
        needed = ct.binary_actions(worker)
        self.assertEqual(set(needed), {"dynamodb:PutItem", "dynamodb:UpdateItem"})
        self.assertIn("TransactWriteItems (update items)", needed["dynamodb:UpdateItem"])

    def test_transaction_items_of_another_kind(self):
        self.write("crates/aws/src/store.rs", self.STORE.replace(".put(put)", ".delete(Delete::builder().build())"))
        worker, _ = self.worker()
        self.assertEqual(set(ct.binary_actions(worker)), {"dynamodb:DeleteItem", "dynamodb:UpdateItem"})

    def test_transaction_whose_items_cannot_be_read(self):
        store = self.STORE.replace("TransactWriteItem::builder().put(put).build()", "items::put(put)")
        store = store.replace("TransactWriteItem::builder().update(Update::builder().build()).build()", "items::count()")
        self.write("crates/aws/src/store.rs", store)
        worker, problems = self.worker()
        self.assertEqual(ct.binary_actions(worker), {})
        self.assertTrue(any("Store::take calls TransactWriteItems" in p and "cannot be read" in p for p in problems),
                        problems)

    # The port the store implements, and a helper of crates/aws generic over it.
    PORTS = textwrap.dedent("""\
        use crate::store::Store;
        pub trait Jobs: Send + Sync {
            fn take(&self) -> impl Future<Output = Result<(), E>> + Send;
        }
        impl Jobs for Store {
            async fn take(&self) -> Result<(), E> { Store::take(self).await }
        }
    """)
    HELPERS = textwrap.dedent("""\
        use crate::ports::Jobs;
        /// Takes one, through the port.
        pub async fn take_one<J: Jobs>(jobs: &J) -> Result<(), E> {
            jobs.take().await
        }
        pub async fn take_via_other<J>(store: &J) -> Result<(), E> where J: Jobs + Sync {
            take_one(store).await
        }
        pub fn unrelated(n: u32) -> u32 { n + 1 }
    """)

    def builds_a_store_and(self, call: str) -> str:
        return self.MAIN.replace("store.take().await?;", call)

    def test_port_bound_type_parameters_are_the_adapters(self):
        self.write("crates/aws/src/ports.rs", self.PORTS)
        self.write("crates/worker/src/main.rs", self.builds_a_store_and("run(&store).await?;") + textwrap.dedent("""\
            async fn run<J: Jobs>(queue: &J) -> Result<(), E> { queue.take().await }
        """))
        worker, problems = self.worker()
        self.assertEqual(problems, [])
        self.assertEqual(worker.uses, {("Store", "take")})

    def test_helpers_of_crates_aws_are_followed(self):
        self.write("crates/aws/src/ports.rs", self.PORTS)
        self.write("crates/aws/src/helpers.rs", self.HELPERS)
        helpers = ct.parse_helpers(self.repo / "crates/aws/src", ct.parse_adapters(self.repo / "crates/aws/src"),
                                   {"Jobs": {"Store"}})
        self.assertEqual(set(helpers), {"take_one", "take_via_other"})
        for call in ("cochl_aws::helpers::take_one(&store).await?;", "take_via_other(&store).await?;"):
            with self.subTest(call=call):
                self.write("crates/worker/src/main.rs", self.builds_a_store_and(call))
                worker, problems = self.worker()
                self.assertEqual(problems, [])
                self.assertEqual(worker.uses, {("Store", "take")})
        # A method of the binary's own with a helper's name is not the helper; neither is a
        # function of its own of that name called bare.
        for own in ("self.take_one().await?;", "take_one().await?;\n}\nfn take_one() {"):
            with self.subTest(own=own):
                self.write("crates/worker/src/main.rs", self.builds_a_store_and(own))
                worker, problems = self.worker()
                self.assertEqual(worker.uses, set())
                self.assertTrue(any("builds a Store" in p for p in problems), problems)

    OBJECTS = textwrap.dedent("""\
        use aws_sdk_s3::Client;
        pub struct Objects {
            client: Client,
        }
        impl Objects {
            pub fn new(client: Client) -> Self { Objects { client } }
            pub async fn head(&self, uri: &Uri, version_id: Option<&str>) -> Result<(), E> {
                self.client
                    .head_object()
                    .bucket(uri.bucket())
                    .set_version_id(version_id.map(str::to_string))
                    .send()
                    .await
            }
            pub async fn get(&self, uri: &Uri) -> Result<(), E> {
                self.client.get_object().bucket(uri.bucket()).send().await
            }
        }
    """)

    def test_reads_naming_a_version(self):
        self.write("crates/aws/src/objects.rs", self.OBJECTS)
        adapter = ct.parse_adapters(self.repo / "crates/aws/src")["Objects"]
        self.assertEqual((adapter.versioned["head"], adapter.versioned["get"]), ({"HeadObject"}, set()))
        self.assertEqual(adapter.version_param, {"head": 1})
        for calls, versioned in (
            ("objects.head(&uri, None).await?;", set()),
            ("objects.head(&uri, Some(&f(a, b))).await?;", {("s3", "HeadObject")}),
            ("objects.head(&uri, None).await?;\n    objects.head(&uri, task.version_id.as_deref()).await?;",
             {("s3", "HeadObject")}),
            ("objects.get(&uri).await?;", set()),
        ):
            with self.subTest(calls=calls):
                self.write("crates/worker/src/main.rs", self.MAIN.replace(
                    "store.take().await?;", f"store.take().await?;\n    let objects = Objects::new(c);\n    {calls}"))
                worker, problems = self.worker()
                self.assertEqual(problems, [])
                self.assertEqual(worker.versioned_calls, versioned)
                self.assertEqual("s3:GetObjectVersion" in ct.binary_actions(worker), bool(versioned))

    def test_parameters_and_arguments_are_split_at_the_top_level(self):
        self.assertEqual(ct.parameter_names("pub async fn head(&self, uri: &S3Uri, version_id: Option<&str>)"),
                         ["uri", "version_id"])
        self.assertEqual(ct.parameter_names("fn f(mut a: [u8; 4], b: HashMap<K, V>)"), ["a", "b"])
        self.assertEqual(ct.split_arguments("&uri, Some(f(a, b)), [1, 2], { x }"),
                         ["&uri", "Some(f(a, b))", "[1, 2]", "{ x }"])

    def test_path_dependencies_are_the_binarys_code(self):
        self.write("Cargo.toml", textwrap.dedent("""\
            [workspace]
            members = ["crates/worker", "crates/logic", "crates/tests-only"]
            [workspace.dependencies]
            worker-logic = { path = "crates/logic" }
            cochl-aws = { path = "crates/aws" }
            serde = "1"
        """))
        self.write("crates/logic/Cargo.toml", '[package]\nname = "worker-logic"\nversion = "0.1.0"\n')
        self.write("crates/logic/src/lib.rs", "pub async fn work(store: &Store) { store.take().await }\n")
        self.write("crates/tests-only/Cargo.toml", '[package]\nname = "tests-only"\nversion = "0.1.0"\n')
        self.write("crates/tests-only/src/lib.rs", "pub async fn probe(store: &Store) { store.take().await }\n")
        self.write("crates/worker/src/main.rs", self.builds_a_store_and("worker_logic::work(&store).await;"))
        manifest = textwrap.dedent("""\
            [package]
            name = "cochl-worker"
            version = "0.1.0"
            [dependencies]
            cochl-aws.workspace = true
            serde.workspace = true
            {logic}
            [dev-dependencies]
            tests-only = {{ path = "../tests-only" }}
        """)
        for logic in ("worker-logic.workspace = true", 'worker-logic = { path = "../logic", version = "0.1" }'):
            with self.subTest(logic=logic):
                self.write("crates/worker/Cargo.toml", manifest.format(logic=logic))
                for toml in (ct.tomllib, None):
                    saved, ct.tomllib = ct.tomllib, toml
                    try:
                        worker, problems = self.worker()
                    finally:
                        ct.tomllib = saved
                    self.assertEqual([p.name for p in worker.sources], ["worker", "logic"])
                    self.assertEqual(problems, [])
                    self.assertEqual(worker.uses, {("Store", "take")})
        self.write("crates/worker/Cargo.toml", manifest.format(logic=""))
        worker, problems = self.worker()
        self.assertEqual([p.name for p in worker.sources], ["worker"])
        self.assertTrue(any("builds a Store" in p for p in problems), problems)


class RustReading(unittest.TestCase):
    def test_strings_comments_and_chars_do_not_count(self):
        source = textwrap.dedent('''\
            // self.client.scan() in a comment
            /* nested /* comment */ self.client.scan() */
            fn f<'a>(x: &'a str) -> char {
                let s = "{ self.client.scan() }";
                let r = r#"}"{"#;
                let c = '{';
                let e = '\\'';
                self.client.get_item()
            }
        ''')
        stripped = ct.strip_rust(source)
        self.assertNotIn("scan", stripped)
        self.assertIn("self.client.get_item()", stripped)
        self.assertIn("<'a>", stripped)
        self.assertEqual(stripped.count("{"), stripped.count("}"))

    def test_test_modules_are_removed(self):
        source = "fn a() { x.put_item() }\n#[cfg(test)]\nmod tests { fn b() { x.delete_item() } }\nfn c() {}"
        code = ct.read_code(self._write(source))
        self.assertIn("put_item", code)
        self.assertNotIn("delete_item", code)
        self.assertIn("fn c", code)

    def test_metric_names_in_the_shapes_the_code_writes_them(self):
        source = textwrap.dedent('''\
            // Metric::count("InAComment")
            fn a(code: &str) { emit(&[("Reason", code)], &[Metric::count("FilesFailed")]); }
            fn b() -> Metric<'static> { Metric { name: "ResultBytes", value: 1.0, unit: Unit::Bytes } }
            fn c() -> Value { json!({"Name": "InFlight", "Unit": "Count", "Dimensions": [["EndpointName"]]}) }
            fn d(n: usize) { let count = |name, v| Metric { name, value: v, unit: Unit::Count }; line(&[], &[count("SweepSettled", n)]); }
            impl Outcome {
                pub fn metric(&self) -> Option<(&'static str, Option<&str>)> {
                    match self { A => Some(("FilesSubmitted", None)), B(c) => Some(("FilesRejected", Some(c))) }
                }
            }
            fn other() { let pair = ("NotAMetric", 1); let s = r#"Metric::count("Raw")"#; }
            #[cfg(test)]
            mod tests { fn t() { Metric::count("OnlyInTests"); } }
        ''')
        self.assertEqual(ct.emitted_metrics(source),
                         {"FilesFailed", "ResultBytes", "InFlight", "SweepSettled", "FilesSubmitted", "FilesRejected"})

    def test_scan_keeps_offsets_and_reads_literals(self):
        source = 'let a = "x{"; // "c"\nlet b = r#"y"z"#; let c = \'"\';'
        masked, literals = ct.scan_rust(source)
        self.assertEqual(len(masked), len(source))
        self.assertEqual([v for _, _, v in literals], ["x{", 'y"z'])
        self.assertNotIn("{", masked)
        self.assertEqual([source[s:e] for s, e, _ in literals], ['"x{"', '"y"z"'])

    def test_function_bodies_are_found_past_array_types(self):
        body = "pub fn a(&self, k: [u8; 4]) -> Result<[u8; 2], E> { self.client.get_item() }\nfn b(); fn c() { x }"
        found = ct.functions_in(body)
        self.assertEqual(set(found), {"a", "c"})
        self.assertIn("get_item", found["a"])

    def test_method_chains_are_joined(self):
        self.assertEqual(ct.normalise_calls("self\n    .client\n    .query()"), "self.client.query()")

    def test_manifest_reading_without_tomllib(self):
        text = (REPO / "crates" / "submit" / "Cargo.toml").read_text(encoding="utf-8")
        saved, ct.tomllib = ct.tomllib, None
        try:
            manifest = ct.read_manifest(text)
        finally:
            ct.tomllib = saved
        self.assertEqual(manifest["package"]["name"], "cochl-submit")
        self.assertEqual(manifest["bin"], [{"name": "cochl-submit", "path": "src/main.rs"}])

    def test_dependencies_read_without_tomllib(self):
        saved, ct.tomllib = ct.tomllib, None
        try:
            root = ct.read_manifest((REPO / "Cargo.toml").read_text(encoding="utf-8"))
            sweeper = ct.read_manifest((REPO / "crates" / "sweeper" / "Cargo.toml").read_text(encoding="utf-8"))
            sources = ct.workspace_dependencies(REPO / "crates" / "sweeper", REPO)
        finally:
            ct.tomllib = saved
        self.assertEqual(root["workspace"]["dependencies"]["cochl-on-result"], {"path": "crates/on-result"})
        self.assertEqual(sweeper["dependencies"]["cochl-on-result"], {"workspace": True})
        self.assertEqual(sources, ct.workspace_dependencies(REPO / "crates" / "sweeper", REPO))

    def test_globals_merge_like_sam(self):
        merged = ct.merge_globals(
            {"Environment": {"Variables": {"RUST_LOG": "info", "A": "1"}}, "Timeout": 3, "Layers": ["x"]},
            {"Environment": {"Variables": {"A": "2"}}, "Timeout": 60, "Layers": ["y"]},
        )
        self.assertEqual(merged["Environment"]["Variables"], {"RUST_LOG": "info", "A": "2"})
        self.assertEqual(merged["Timeout"], 60)
        self.assertEqual(merged["Layers"], ["x", "y"])

    def _write(self, text: str) -> Path:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".rs", delete=False)
        tmp.write(text)
        tmp.close()
        self.addCleanup(Path(tmp.name).unlink)
        return Path(tmp.name)


if __name__ == "__main__":
    unittest.main()
