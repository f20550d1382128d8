"""The recommender eval on the shared runner: toy S3-Rec data end to end (resumable,
report, chart), and the LLMRank Games protocol on the ARAG eval's candidate lists."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite
from aisle.evals.rec_data import load_rec_data
from aisle.evals.rec_suite import BATCH_USERS, RecEvalConfig, RecSuite, rebuild_rec_suite
from aisle.evals.runner import EvalRunner
from aisle.tools.recommenders import ModelConfigs, ModelKind, SASRecConfig, SequenceDataset

WriteS3Rec = Callable[[Path, str, dict[str, tuple[str, ...]]], Path]


def _suite(tmp_path: Path, toy: SequenceDataset, write_s3rec: WriteS3Rec,
           tiny_sasrec: SASRecConfig, **config: object) -> RecSuite:
    write_s3rec(tmp_path / "data" / "amazon-seq", "Toy", toy.sequences)
    rec = load_rec_data(tmp_path / "data", "toy")
    return RecSuite(RecEvalConfig(dataset="toy", configs=ModelConfigs(sasrec=tiny_sasrec),
                                  **config),  # type: ignore[arg-type]
                    rec, threads=1)


def test_full_ranking_eval_end_to_end(tmp_path: Path, toy: SequenceDataset,
                                      write_s3rec: WriteS3Rec,
                                      tiny_sasrec: SASRecConfig) -> None:
    suite = _suite(tmp_path, toy, write_s3rec, tiny_sasrec)
    runner = EvalRunner(suite, tmp_path / "out")
    summary = asyncio.run(runner.run())
    assert summary.stored == {"sasrec": 1, "itemknn": 1, "pop": 1}  # 40 users: one batch
    report = runner.report()
    assert report["users_scored"] == report["users_asked"] == 40
    assert set(report["metrics"]) == {"sasrec", "itemknn", "pop"}
    for m in report["metrics"].values():
        for key in ("recall@5", "recall@10", "ndcg@5", "ndcg@10"):
            assert 0.0 <= m["ci95"][key][0] <= m[key] <= m["ci95"][key][1] <= 1.0
        assert m["recall@5"] <= m["recall@10"]
    assert report["training"]["sasrec"]["epochs"] == tiny_sasrec.max_epochs
    assert len(report["training"]["sasrec"]["history"]) == tiny_sasrec.max_epochs
    assert "history items excluded" in report["protocol"]
    files = runner.write(report)
    assert [f.name for f in files] == ["report.json", "report.md", "report.png"]
    assert runner.paths.folder.parent == tmp_path / "out" / "rec"
    assert runner.paths.folder.name.startswith("toy-full-40u-sasrec-itemknn-pop-")
    assert "| pop | 40 |" in (runner.paths.folder / "report.md").read_text()
    assert json.loads(runner.paths.report.read_text())["metrics"] == \
        json.loads(json.dumps(report["metrics"]))

    # Resumable: a second run finds every batch stored and trains nothing.
    again = _suite(tmp_path, toy, write_s3rec, tiny_sasrec)
    rerun = EvalRunner(again, tmp_path / "out")
    assert asyncio.run(rerun.run()).stored == {}
    assert rerun.report()["metrics"] == report["metrics"]


def test_ranks_match_the_models_own_ranking(tmp_path: Path, toy: SequenceDataset,
                                            write_s3rec: WriteS3Rec,
                                            tiny_sasrec: SASRecConfig) -> None:
    suite = _suite(tmp_path, toy, write_s3rec, tiny_sasrec, models=(ModelKind.itemknn,))
    case = suite.cases()[0]
    model = suite.fitted(ModelKind.itemknn).model
    ranks = suite.rank(model, case)["ranks"]
    for history, target, rank in list(zip(case.histories, case.targets, ranks, strict=True))[:5]:
        order = [r.item_id for r in model.recommend(history, k=len(model.items))]
        assert rank == order.index(target) + 1


def test_excluding_history_is_part_of_the_key(tmp_path: Path, toy: SequenceDataset,
                                              write_s3rec: WriteS3Rec,
                                              tiny_sasrec: SASRecConfig) -> None:
    a = _suite(tmp_path, toy, write_s3rec, tiny_sasrec)
    b = _suite(tmp_path, toy, write_s3rec, tiny_sasrec, exclude_history=False)
    assert a.answer_key() != b.answer_key()
    assert "ranked too" in b.protocol_text()


def test_first_users_only(tmp_path: Path, toy: SequenceDataset, write_s3rec: WriteS3Rec,
                          tiny_sasrec: SASRecConfig) -> None:
    suite = _suite(tmp_path, toy, write_s3rec, tiny_sasrec, n_users=7)
    assert [len(b.users) for b in suite.cases()] == [7]
    assert suite.cases()[0].users == tuple(list(toy.sequences)[:7])
    assert BATCH_USERS >= 7


def test_games_uses_the_arag_candidate_lists(shared_data: Path, tmp_path: Path) -> None:
    rec = load_rec_data(shared_data, "llmrank-games")
    suite = RecSuite(RecEvalConfig(dataset="llmrank-games", models=(ModelKind.pop,)), rec)
    arag = ARAGSuite(ARAGEvalConfig(data=shared_data / "llmrank-games", n_users=200),
                     rec.games)  # type: ignore[arg-type]
    (batch,) = suite.cases()
    assert len(batch.users) == 200
    assert batch.candidates == tuple(c.candidates for c in arag.cases())
    assert batch.targets == tuple(c.target for c in arag.cases())
    runner = EvalRunner(suite, tmp_path)
    asyncio.run(runner.run())
    report = runner.report()
    m = report["metrics"]["pop"]
    assert m["n_users"] == 200
    assert set(m) >= {"ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "recall@5", "recall@10"}
    assert m["ndcg@20"] >= m["ndcg@10"] >= m["ndcg@5"]
    assert report["published"]["SASRec (LLMRank, Table 2)"]["ndcg@5"] == 0.7319
    stored = runner.stored("pop")[batch.id]
    assert all(sorted(r) == sorted(c) for r, c in zip(stored["rankings"], batch.candidates,
                                                      strict=True))


def test_markdown_lists_the_published_rows(tmp_path: Path, toy: SequenceDataset,
                                           write_s3rec: WriteS3Rec,
                                           tiny_sasrec: SASRecConfig) -> None:
    suite = _suite(tmp_path, toy, write_s3rec, tiny_sasrec, models=(ModelKind.pop,))
    runner = EvalRunner(suite, tmp_path / "out")
    asyncio.run(runner.run())
    report = runner.report()
    report["published"] = {"SASRec (somewhere)": {"ndcg@10": 0.0318}}
    assert "| *SASRec (somewhere), published* |" in suite.markdown(report)


def test_a_report_is_rebuilt_from_its_config_and_the_stored_answers(
        tmp_path: Path, toy: SequenceDataset, write_s3rec: WriteS3Rec,
        tiny_sasrec: SASRecConfig) -> None:
    suite = _suite(tmp_path, toy, write_s3rec, tiny_sasrec, models=(ModelKind.pop,))
    runner = EvalRunner(suite, tmp_path / "out")
    asyncio.run(runner.run())
    kept = json.loads(json.dumps(runner.report()))
    rebuilt = EvalRunner(rebuild_rec_suite(kept["run"]["config"], tmp_path / "data"),
                         tmp_path / "out")
    assert rebuilt.paths.folder == runner.paths.folder
    assert json.loads(json.dumps(rebuilt.report())) == kept


def test_grace_in_the_eval_ranks_by_beam_search_and_keys_its_config(
        tmp_path: Path, toy: SequenceDataset, write_s3rec: WriteS3Rec,
        tiny_sasrec: SASRecConfig) -> None:
    from aisle.tools.recommenders import GRACEConfig

    tiny = GRACEConfig(hidden=8, heads=2, inner=16, layers=1, codebook=3, code_levels=2,
                       embedding_dim=4, max_epochs=2, valid_users=None, beam=5)
    write_s3rec(tmp_path / "data" / "amazon-seq", "Toy", toy.sequences)
    rec = load_rec_data(tmp_path / "data", "toy")
    config = RecEvalConfig(dataset="toy", models=(ModelKind.grace, ModelKind.pop),
                           configs=ModelConfigs(sasrec=tiny_sasrec, grace=tiny))
    suite = RecSuite(config, rec, threads=1)
    assert suite.answer_key()["configs"]["grace"]["beam"] == 5
    runner = EvalRunner(suite, tmp_path / "out")
    asyncio.run(runner.run())
    report = runner.report()
    assert set(report["metrics"]) == {"grace", "pop"}
    assert report["training"]["grace"]["epochs"] == 2
    # Only the beam's 5 items are ranked: a target outside it is a miss, never rank 6+.
    ranks = suite.rank(suite.fitted(ModelKind.grace).model, suite.cases()[0])["ranks"]
    assert all(r is None or 1 <= r <= 5 for r in ranks)
    assert any(r is None for r in ranks)
    # Without GRACE, its config stays out of the key (older runs keep their folders).
    classic = RecSuite(RecEvalConfig(dataset="toy"), rec)
    assert "grace" not in classic.answer_key()["configs"]
    assert "grace" not in classic.config_json()["configs"]
