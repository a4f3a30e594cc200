"""`make mutate`'s bookkeeping (benchmarks/mutation.py): the equivalents file, the mutants
set apart before a run, the counts and the summary line. No mutmut here: its results are
written by hand in the layout it leaves under ``mutants/``."""

import json

import pytest

from benchmarks.mutation import (SKIPPED, Mutant, mutant_key, read_equivalents, set_apart,
                                 summarize, summary_line)


def _mutant(number, status, key=None):
    name = f"gradcheck.core.x__plan__mutmut_{number}"
    return Mutant("gradcheck.core", "_plan", name, key or f"{number:012x}", 10, "a  →  b",
                  status)


def _write_meta(root, codes):
    meta = root / "mutants" / "gradcheck" / "core.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "other": 1}), "utf-8")
    return meta


def test_listed_mutants_are_set_apart_as_skipped_and_counted_as_equivalent(tmp_path):
    mutants = [_mutant(1, "not checked"), _mutant(2, "not checked"), _mutant(3, "not checked")]
    meta = _write_meta(tmp_path, {m.name: None for m in mutants})
    equivalents = {mutants[1].key: (mutants[1].name, "no observable change")}

    assert set_apart(tmp_path, mutants, equivalents) == 1
    data = json.loads(meta.read_text("utf-8"))
    assert data["exit_code_by_key"] == {mutants[0].name: None, mutants[1].name: SKIPPED,
                                        mutants[2].name: None}
    assert data["other"] == 1                      # the rest of mutmut's record is kept

    after = [_mutant(1, "killed"), _mutant(2, "skipped"), _mutant(3, "survived")]
    counts, survivors, stale = summarize(after, equivalents)
    assert (counts["killed"], counts["survived"], counts["equivalent"]) == (1, 1, 1)
    assert [m.name for m in survivors] == [mutants[2].name] and stale == []


def test_a_mutant_already_judged_is_not_set_apart(tmp_path):
    judged = _mutant(1, "survived")
    _write_meta(tmp_path, {judged.name: 0})
    assert set_apart(tmp_path, [judged], {judged.key: (judged.name, "why")}) == 0


def test_an_entry_matching_no_mutant_or_a_killed_one_is_reported_stale():
    killed, gone = _mutant(1, "killed"), "0123456789ab"
    equivalents = {killed.key: (killed.name, "was equivalent"), gone: ("old_name", "gone")}
    counts, survivors, stale = summarize([killed], equivalents)
    assert counts["equivalent"] == 0 and survivors == []
    assert set(stale) == {f"{gone} old_name: matches no mutant: its code changed "
                          "(listed as: gone)",
                          f"{killed.key} {killed.name}: now killed by a test "
                          "(listed as: was equivalent)"}


def test_the_survival_rate_counts_survivors_against_killed_and_surviving():
    mutants = ([_mutant(i, "killed") for i in range(9)] + [_mutant(9, "no tests")]
               + [_mutant(10, "skipped")])
    counts, _, _ = summarize(mutants, {mutants[-1].key: (mutants[-1].name, "why")})
    line, rate = summary_line(counts)
    assert rate == pytest.approx(10.0)
    assert line == ("mutation: killed 9, survived 1, equivalent 1, survival rate 10.0% "
                    "(unkilled, equivalents included: 18.2%)")


def test_the_key_depends_on_what_the_mutant_changes_not_on_its_number():
    key = mutant_key("gradcheck.core", "_plan", "a < b", "a <= b")
    assert key == mutant_key("gradcheck.core", "_plan", "a < b", "a <= b")
    assert len({key, mutant_key("gradcheck.core", "_plan", "a < b", "a > b"),
                mutant_key("gradcheck.core", "_plan", "a < b", "a <= b", occurrence=1),
                mutant_key("gradcheck.core", "_fast", "a < b", "a <= b")}) == 4


def test_the_equivalents_file_is_read_and_a_malformed_line_is_named(tmp_path):
    path = tmp_path / "equivalent.txt"
    path.write_text("# a comment\n\n0123456789ab gradcheck.core.x__plan__mutmut_1 a reason"
                    " # and a note\n", "utf-8")
    assert read_equivalents(path) == {
        "0123456789ab": ("gradcheck.core.x__plan__mutmut_1", "a reason")}
    path.write_text("0123456789ab no-reason\n", "utf-8")
    with pytest.raises(SystemExit, match=r"equivalent.txt:1: expected 'KEY MUTANT REASON'"):
        read_equivalents(path)
    assert read_equivalents(tmp_path / "missing.txt") == {}
