"""Batches and compare as a new user reads them (the findings of a new user's evening with batches):

1. ``batch --dry-run`` shows the seeds the real run sends (a seed copied from the plan makes that image
   again), for a prompt list and a template, through the CLI and the emulator's record of the wire;
2. after Stop, places never sent read "not sent" (a still placeholder, not the waiting one), failed ones
   "failed: <why>", through the Batch tab's handlers with the emulator holding its replies;
3. a batch that took under a second says so, never "Took 0:00.";
4. *Compare with…*: the first pick says what to do next on the gallery's status line, identical prompts get
   no "only in A / only in B" legend, the second pick brings the compare view into sight;
5. opening a stored batch fills the Batch tab's form with what it ran.

In process (the handlers the page's events call, ``request=None``: the local owner, English), over the
session's emulator; no app launch.
"""

from __future__ import annotations

import json

import pytest

from aliyun_image.generation import BatchSpec, batch as batches

from .conftest import TEST_KEY, run_cli


def sent(emu) -> list:
    """Generation requests the emulator carried out (each may be billed)."""
    return [r for r in emu.calls("generation") + emu.calls("task_create") if not r.throttled]


def seeds_sent(emu) -> dict[str, list[int]]:
    """The seeds that went out on the wire, by prompt (in the order sent)."""
    out: dict[str, list[int]] = {}
    for call in sent(emu):
        prompt = call.json["input"]["messages"][0]["content"][-1]["text"]
        out.setdefault(prompt, []).append(call.json["parameters"]["seed"])
    return {k: sorted(v) for k, v in out.items()}


def dry_lines(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines() if line.strip()]


def seeds_planned(stdout: str) -> dict[str, list[str]]:
    """The dry run's seed column, by prompt (the last column)."""
    out: dict[str, list[str]] = {}
    for cols in dry_lines(stdout):
        assert len(cols) == 7, cols  # number, model, size, seed, images, values, prompt (batch --help)
        out.setdefault(cols[6], []).append(cols[3])
    return out


# --- 1. the dry run's seeds are the seeds sent --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["list", "template"])
def test_dry_run_seeds_are_the_seeds_the_real_run_sends(kind, emu, clean_env, tmp_path):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    prompts = tmp_path / "p.txt"
    if kind == "list":
        prompts.write_text("a lighthouse at dusk\n# skip\na red bicycle\n", encoding="utf-8")
        extra: list[str] = ["-n", "2"]
    else:
        prompts.write_text("a {animal} in a {place}, watercolor\n", encoding="utf-8")
        extra = ["--var", "animal=cat,fox", "--var", "place=forest,city"]
    dry = run_cli(["batch", str(prompts), *extra, "--dry-run"], env, clean_env)
    assert dry.returncode == 0 and not sent(emu), dry.stderr
    planned = seeds_planned(dry.stdout)
    assert all(s.isdigit() for v in planned.values() for s in v), planned  # seeds, not "random"
    again = run_cli(["batch", str(prompts), *extra, "--dry-run", "--json"], env, clean_env)
    units = json.loads(again.stdout)["units"]
    assert sorted(str(u["seed"]) for u in units) == sorted(s for v in planned.values() for s in v)  # stable
    real = run_cli(["batch", str(prompts), *extra], env, clean_env)
    assert real.returncode == 0, real.stderr
    assert seeds_sent(emu) == {p: sorted(int(s) for s in v) for p, v in planned.items()}
    # the batch is stored now: a dry run of the same input shows its stored seeds (what resume would send)
    after = run_cli(["batch", str(prompts), *extra, "--dry-run"], env, clean_env)
    assert seeds_planned(after.stdout) == planned


def test_dry_run_with_new_says_random_for_seeds_not_fixed_and_keeps_fixed_ones(emu, clean_env, tmp_path):
    env = {"DASHSCOPE_API_KEY": TEST_KEY, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    prompts = tmp_path / "p.txt"
    prompts.write_text("a {animal}\n", encoding="utf-8")
    dry = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--dry-run"], env, clean_env)
    assert [c[3] for c in dry_lines(dry.stdout)] == ["random", "random"], dry.stdout
    js = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--dry-run", "--json"], env, clean_env)
    assert [u["seed"] for u in json.loads(js.stdout)["units"]] == [None, None]
    fixed = run_cli(["batch", str(prompts), "--var", "animal=cat,fox", "--new", "--seed", "42", "--dry-run"],
                    env, clean_env)
    assert [c[3] for c in dry_lines(fixed.stdout)] == ["42", "42"], fixed.stdout
    grid = run_cli(["grid", "a fox", "--x", "seed=5,6", "--new", "--dry-run"], env, clean_env)
    assert [c[3] for c in dry_lines(grid.stdout)] == ["5", "6"]
    assert not sent(emu)


def test_the_same_spec_draws_the_same_seeds_another_owner_or_new_does_not(service):
    spec = BatchSpec("a cat\na dog\na fox")
    mine = [u.options["seed"] for u in batches.preview(service, spec, owner="a").units]
    assert mine == [u.options["seed"] for u in batches.preview(service, spec, owner="a").units]
    assert mine != [u.options["seed"] for u in batches.preview(service, spec, owner="b").units]
    prepared = batches.prepare(service, spec, owner="a")
    stored = batches.find(service, prepared.batch_id, "a")
    assert stored is not None and [u.options["seed"] for u in stored[1]] == mine
    fresh = batches.prepare(service, spec, owner="a", new=True)
    other = batches.find(service, fresh.batch_id, "a")
    assert other is not None and [u.options["seed"] for u in other[1]] != mine  # --new: new random seeds


def test_batch_help_documents_the_dry_run_columns(clean_env):
    for lang, word in (("en", "tab separated"), ("zh_CN", "制表符"), ("ja_JP", "タブ区切り")):
        r = run_cli(["batch", "--help"], {"LANG": f"{lang}.UTF-8"}, clean_env)
        assert r.returncode == 0 and word in r.stdout, (lang, r.stdout[-400:])
