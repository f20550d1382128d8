"""GRACE: semantic IDs (unique codes, collisions resolved), item token paths, the prefix
trie, constrained beam search (only real items, never an excluded one), journey-aware
sparse attention against its documented pattern and against dense attention, the
attention FLOPs counter, the decoding cache, resumable training, and the tools'
reasoning paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aisle.errors import ConfigurationError
from aisle.tools.recommenders import (
    GRACE,
    EpochLog,
    GRACEConfig,
    ItemSide,
    ModelConfigs,
    ModelKind,
    SequenceDataset,
    leave_one_out,
    recommender_tools,
    train_model,
)
from aisle.tools.recommenders._epochs import STATE_FILE
from aisle.tools.recommenders._grace_net import (
    GraceNet,
    attention_flops,
    attention_pairs,
    jsa_attention,
    jsa_pattern,
    masked_attention,
)
from aisle.tools.recommenders.grace import CODES_FILE
from aisle.tools.recommenders.semantic_ids import (
    ATTR_NONE,
    ItemTokens,
    PrefixTrie,
    add_collision_level,
    attribute_paths,
    games_platform,
    residual_kmeans,
)

TINY = GRACEConfig(hidden=8, heads=2, inner=16, layers=1, dropout=0.1, max_len=8,
                   codebook=3, code_levels=2, embedding_dim=4, batch_tokens=256,
                   max_epochs=2, patience=2, valid_users=None, seed=7)
SIDE = ItemSide(attributes={str(i): [f"group{i % 3}", f"shelf{i % 2}"] for i in range(1, 14)})


def _fit(toy: SequenceDataset, config: GRACEConfig = TINY, folder: Path | None = None,
         progress: object | None = None) -> GRACE:
    split = leave_one_out(toy)
    return GRACE(config, side=SIDE, threads=1).fit(
        split.train_sequences, items=toy.items, validation=split.validation_pairs,
        checkpoint_dir=folder, progress=progress)  # type: ignore[arg-type]


# -- semantic IDs ----------------------------------------------------------------------
def test_every_item_gets_a_unique_code_and_collisions_are_numbered() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 6)).astype(np.float32)
    x = np.concatenate([base, base[:10], base[:5]])  # 15 exact duplicates
    codes, books = residual_kmeans(x, levels=2, codebook=8, seed=0)
    assert codes.shape == (55, 2)
    assert [b.shape for b in books] == [(8, 6), (8, 6)]
    full, stats = add_collision_level(codes)
    assert len({tuple(r) for r in full.tolist()}) == 55  # unique after the extra level
    assert stats["items"] == 55
    assert stats["max_group"] >= 3  # an item and its two copies share every code
    assert stats["colliding_items"] >= 25
    assert stats["distinct_codes"] == len({tuple(r) for r in codes.tolist()})
    # The extra level numbers a group 0, 1, 2, ... in catalog order.
    first = full[0]
    group = [i for i in range(55) if tuple(codes[i]) == tuple(codes[0])]
    assert [int(full[i, -1]) for i in group] == list(range(len(group)))
    assert first[-1] == 0


def test_residual_levels_explain_what_the_first_leaves() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    codes, books = residual_kmeans(x, levels=3, codebook=16, seed=0)
    approx = np.zeros_like(x)
    errors = []
    for level, book in enumerate(books):
        approx = approx + book[codes[:, level]]
        errors.append(float(np.linalg.norm(x - approx)))
    assert errors[0] > errors[1] > errors[2]


def test_attribute_paths_run_coarse_to_fine_and_fill_empty_slots() -> None:
    attrs = [["brand1", "cat"], ["cat", "sub"], ["cat"], [], ["sub", "cat", "brand2"]]
    paths = attribute_paths(attrs, 2)
    # "cat" is on 4 of 5 items, "sub" on 2, brands on 1: the most shared first.
    assert paths == [("cat", "brand1"), ("cat", "sub"), ("cat", ATTR_NONE),
                     (ATTR_NONE, ATTR_NONE), ("cat", "sub")]


def test_item_tokens_lay_out_the_vocabulary() -> None:
    codes = np.array([[0, 1, 0], [1, 0, 0], [1, 0, 1]])
    tokens = ItemTokens.build([("a", ATTR_NONE), ("b", "a"), ("b", "a")], codes)
    assert tokens.attr_names == (ATTR_NONE, "a", "b")
    assert tokens.code_sizes == (2, 2, 2)
    assert tokens.depth == 5
    assert tokens.vocab == 2 + 3 + 6
    assert tokens.paths[0].tolist() == [0] * 5
    assert [tokens.describe(t) for t in tokens.paths[2]] == \
        ["b", "a", "code0:1", "code1:0", "code2:0"]
    assert len({tuple(p) for p in tokens.paths[1:].tolist()}) == 3


def test_games_platform_from_titles() -> None:
    assert games_platform("Halo 3 - Xbox 360") == "Xbox 360"
    assert games_platform("Uncharted 4 (PS4)") == "PlayStation 4"
    assert games_platform("Mario Kart 8 - Nintendo Switch") == "Nintendo Switch"
    assert games_platform("The Sims 3 - PC/Mac") == "Mac"
    assert games_platform("A Controller Charging Cable") is None


# -- the trie and constrained decoding -------------------------------------------------
def test_trie_children_and_dead_nodes() -> None:
    paths = np.array([[0, 0], [5, 7], [5, 8], [6, 7]])
    trie = PrefixTrie(paths)
    _, tokens, children = trie.children(0, np.array([0]))
    assert tokens.tolist() == [5, 6]
    owner, tokens, leaves = trie.children(1, children)
    assert owner.tolist() == [0, 0, 1]
    assert tokens.tolist() == [7, 8, 7]
    assert trie.items_of(leaves).tolist() == [1, 2, 3]
    # User 0 excludes items 1 and 2: the prefix 5 is dead for them; user 1 excludes item
    # 1 only: prefix 5 still leads to item 2.
    dead1 = trie.dead(1, np.array([0, 0, 1]), np.array([1, 2, 1]))
    assert dead1.tolist() == [0 * trie.n_nodes(1) + int(children[0])]
    with pytest.raises(ValueError, match="share a token path"):
        PrefixTrie(np.array([[0, 0], [5, 7], [5, 7]]))


def _random_grace(n_items: int = 300, seed: int = 0) -> GRACE:
    """An untrained GRACE over a catalog whose codes leave most code combinations
    unused, so an unconstrained decoder would often emit a code that is no item."""
    rng = np.random.default_rng(seed)
    model = GRACE(GRACEConfig(hidden=16, heads=2, inner=32, layers=1, max_len=10,
                              attribute_tokens=1, beam=15), threads=1)
    model._set_items([f"i{i}" for i in range(n_items)])
    codes = rng.integers(0, 16, size=(n_items, 3))
    full, _ = add_collision_level(codes)
    attrs = [(f"cat{int(c) % 4}",) for c in codes[:, 0]]
    model._tokens = ItemTokens.build(attrs, full)
    torch.manual_seed(seed)
    model._net = model._new_net().eval()
    return model


def test_beam_search_only_emits_real_items_never_excluded_ones() -> None:
    model = _random_grace()
    rng = np.random.default_rng(3)
    histories = [rng.choice(np.arange(1, 301), size=int(rng.integers(1, 12)), replace=False)
                 for _ in range(200)]
    found = model.beam_search(histories, 15, histories)
    for history, (items, scores) in zip(histories, found, strict=True):
        assert len(items) == 15
        assert len(set(items.tolist())) == 15
        assert ((items >= 1) & (items <= 300)).all()
        assert not set(items.tolist()) & set(history.tolist())
        assert (np.diff(scores) <= 1e-6).all()  # best first
        # Each score is the exact log-probability of that item's path.
        exact = model.path_logprobs([history], [items])[0].sum(axis=1)
        np.testing.assert_allclose(scores, exact, rtol=1e-4, atol=1e-4)


def test_without_the_trie_the_decoder_would_emit_codes_that_are_no_item() -> None:
    # Greedy decoding over the whole vocabulary: the test above is not vacuous.
    model = _random_grace()
    real = {tuple(p) for p in model.tokens.paths[1:].tolist()}
    invalid = 0
    for first in range(1, 41):
        ctx = model._context([np.array([first])])
        with torch.inference_mode():
            path = [int(model.net.logits(ctx.last_hidden).argmax(-1))]
            for _ in range(model.tokens.depth - 1):
                h = model.net.decode(ctx, torch.tensor([[path]]))[:, :, -1]
                path.append(int(model.net.logits(h).argmax(-1)))
        invalid += tuple(path) not in real
    assert invalid > 20


def test_exclusion_prunes_whole_branches() -> None:
    model = _random_grace(n_items=30)
    everything = np.arange(1, 31)
    keep = np.array([7, 19])
    excluded = np.setdiff1d(everything, keep)
    (items, _), = model.beam_search([np.array([1])], 15, [excluded])
    assert sorted(items.tolist()) == [7, 19]


# -- attention -------------------------------------------------------------------------
def test_jsa_pattern_is_the_documented_rule() -> None:
    # 3 items of 2 tokens, window 1. Columns: 7 tokens, then 3 segment summaries.
    expected = [
        # start token: itself
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        # item 0: start token, own segment causally
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        # item 1: start, item 0 (window), own causally; no summary yet
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        # item 2: start, item 1 (window), own causally, item 0's summary
        [1, 0, 0, 1, 1, 1, 0, 1, 0, 0],
        [1, 0, 0, 1, 1, 1, 1, 1, 0, 0],
    ]
    assert jsa_pattern(3, 2, 1).int().tolist() == expected


@pytest.mark.parametrize(("n", "depth", "window"), [(1, 3, 0), (4, 2, 0), (5, 3, 1),
                                                    (6, 4, 2), (3, 2, 5),
                                                    # several query blocks
                                                    (40, 2, 2), (35, 3, 0), (33, 2, 20)])
def test_sparse_attention_equals_its_masked_reference(n: int, depth: int, window: int) -> None:
    torch.manual_seed(n * 10 + window)
    q, k, v = (torch.randn(2, 3, 1 + n * depth, 4) for _ in range(3))
    fast = jsa_attention(q, k, v, depth, window)
    reference = masked_attention(q, k, v, jsa_pattern(n, depth, window), depth)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_sparse_attention_equals_dense_when_the_window_covers_everything(n: int) -> None:
    torch.manual_seed(n)
    q, k, v = (torch.randn(1, 2, 1 + n * 3, 8) for _ in range(3))
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(jsa_attention(q, k, v, 3, n), dense, rtol=1e-5, atol=1e-5)
    # A narrower window is a different attention.
    if n > 2:
        assert not torch.allclose(jsa_attention(q, k, v, 3, 0), dense, atol=1e-3)


def test_attention_pairs_and_flops_by_hand() -> None:
    # Dense over 1 + 2 * 2 = 5 tokens: 5 * 6 / 2 pairs.
    assert attention_pairs(2, 2, 0, "dense") == 15
    # JSA, window 0: start 1; item 0: (1+1) + (1+2); item 1: (1+1+1) + (1+2+1).
    assert attention_pairs(2, 2, 0, "jsa") == 1 + 5 + 7
    # Window 1 over 3 items of 2: start 1; item 0: 2+3; item 1: 4+5; item 2: 5+6 (window 2
    # tokens + own + start + one summary).
    assert attention_pairs(3, 2, 1, "jsa") == 1 + 5 + 9 + 11
    assert attention_pairs(3, 2, 1, "jsa") == int(jsa_pattern(3, 2, 1).sum())
    # FLOPs: 4 * hidden per pair and layer, plus 2 * hidden per token for the summaries.
    assert attention_flops(3, 2, 1, 8, 2, "dense") == 2 * 4 * 8 * (7 * 8 // 2)
    assert attention_flops(3, 2, 1, 8, 2, "jsa") == 2 * (4 * 8 * 26 + 2 * 8 * 6)
    # The target's regime: 1000 items of 6 tokens, window 2.
    dense = attention_flops(1000, 6, 2, 64, 2, "dense")
    sparse = attention_flops(1000, 6, 2, 64, 2, "jsa")
    assert sparse < 0.6 * dense


@pytest.mark.parametrize("mode", ["jsa", "dense"])
def test_decoding_from_the_cache_equals_a_full_pass(mode: str) -> None:
    torch.manual_seed(0)
    net = GraceNet(40, depth=3, max_len=10, hidden=16, layers=2, heads=2, inner=32,
                   dropout=0.0, attention=mode, window=1).eval()  # type: ignore[arg-type]
    n = torch.tensor([2, 4, 1])
    tokens = torch.zeros(3, 13, dtype=torch.long)
    tokens[:, 0] = 1
    for row in range(3):
        tokens[row, 1:1 + int(n[row]) * 3] = torch.randint(2, 40, (int(n[row]) * 3,))
    with torch.inference_mode():
        ctx = net.context(tokens, n)
        new = torch.randint(2, 40, (3, 2, 3))
        decoded = net.decode(ctx, new)
        for row in range(3):
            length = 1 + int(n[row]) * 3
            assert torch.allclose(net(tokens[row:row + 1, :length])[0, -1],
                                  ctx.last_hidden[row], atol=1e-5)
            for r in range(2):
                full = net(torch.cat([tokens[row, :length], new[row, r]])[None])[0]
                torch.testing.assert_close(full[-3:], decoded[row, r], rtol=1e-4, atol=1e-5)


# -- training --------------------------------------------------------------------------
class _Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.epochs: list[int] = []
        self.stop_after = stop_after

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        pass

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        self.epochs.append(log.epoch)
        if log.epoch == self.stop_after:
            raise KeyboardInterrupt


def test_interrupted_training_resumes_with_the_same_codes(toy: SequenceDataset,
                                                          tmp_path: Path) -> None:
    config = TINY.model_copy(update={"max_epochs": 3, "patience": 5})
    first = _Recorder(stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy, config, tmp_path / "ckpt", first)
    assert (tmp_path / "ckpt" / STATE_FILE).is_file()
    assert (tmp_path / "ckpt" / CODES_FILE).is_file()

    second = _Recorder()
    resumed = _fit(toy, config, tmp_path / "ckpt", second)
    assert second.epochs == [2, 3]
    assert resumed.training is not None
    assert resumed.training.resumed_at == 2

    straight = _fit(toy, config)
    assert straight.training is not None
    assert [h.loss for h in straight.training.history] == \
        [h.loss for h in resumed.training.history]
    np.testing.assert_array_equal(straight.tokens.paths, resumed.tokens.paths)
    for name, tensor in straight.net.state_dict().items():
        assert torch.equal(tensor, resumed.net.state_dict()[name]), name


def test_a_checkpoint_of_another_config_is_refused(toy: SequenceDataset,
                                                   tmp_path: Path) -> None:
    _fit(toy, TINY.model_copy(update={"max_epochs": 1}), tmp_path / "ckpt")
    with pytest.raises(ConfigurationError, match="another config"):
        _fit(toy, TINY.model_copy(update={"max_epochs": 2, "hidden": 12, "heads": 2}),
             tmp_path / "ckpt")


def test_training_lowers_the_loss_and_the_ablations_train(toy: SequenceDataset) -> None:
    for config in (TINY.model_copy(update={"max_epochs": 4}),
                   TINY.model_copy(update={"max_epochs": 4, "attribute_tokens": 0}),
                   TINY.model_copy(update={"max_epochs": 4, "attention": "dense"})):
        model = _fit(toy, config)
        assert model.training is not None
        losses = [h.loss for h in model.training.history]
        assert losses[-1] < losses[0]
        assert model.tokens.depth == config.attribute_tokens + config.code_levels + 1


def test_train_model_gives_grace_the_datasets_attributes(toy: SequenceDataset,
                                                         tmp_path: Path) -> None:
    data = SequenceDataset(toy.name, toy.items, toy.sequences,
                           {i: (int(i) % 3, 10 + int(i) % 2) for i in toy.items})
    configs = ModelConfigs(grace=TINY.model_copy(update={"max_epochs": 1}))
    trained = train_model(data, ModelKind.grace, configs, home=tmp_path, threads=1)
    assert isinstance(trained.model, GRACE)
    names = set(trained.model.tokens.attr_names)
    assert {"attr0", "attr1", "attr2"} <= names
    again = train_model(data, ModelKind.grace, configs, home=tmp_path)
    assert again.loaded
    assert again.model.recommend(["1", "2"], k=3) == trained.model.recommend(["1", "2"], k=3)


# -- as a tool -------------------------------------------------------------------------
def test_tools_carry_the_attribute_path(toy: SequenceDataset) -> None:
    model = _fit(toy)
    recommend, score = recommender_tools(model)
    assert "reasoning" in recommend.description
    result = json.loads(recommend.invoke({"history": ["1", "2"], "k": 3}))
    assert result["status"] == "ok"
    for item in result["items"]:
        steps = item["reasoning"]
        expected = [a for a in SIDE.attributes_of(item["item_id"])]  # type: ignore[union-attr]
        assert {s["attribute"] for s in steps} <= set(expected)
        assert len(steps) == 2
        assert all(0.0 <= s["probability"] <= 1.0 for s in steps)
    scored = json.loads(score.invoke({"history": ["1"], "candidate_ids": ["4", "5"]}))
    assert all("reasoning" in item for item in scored["items"])
    # The reasoning's probabilities are the path's first steps: their logs sum to at
    # least the whole path's score.
    (path,) = model.reasoning(["1"], ["4"])
    (total,) = model.score(["1"], ["4"])
    assert sum(np.log(s.probability) for s in path) >= total - 1e-5


def test_device_names_resolve_or_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from aisle.settings import get_settings
    from aisle.tools.recommenders.grace import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigurationError, match="unknown torch device"):
        resolve_device("gpu0")
    with pytest.raises(ConfigurationError, match="not supported"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="sees no GPU"):
            resolve_device("cuda")
    monkeypatch.setenv("AISLE_REC_DEVICE", "cpu")
    get_settings.cache_clear()
    try:
        assert GRACE(TINY).device == torch.device("cpu")
        monkeypatch.setenv("AISLE_REC_DEVICE", "tpu")
        get_settings.cache_clear()
        with pytest.raises(ConfigurationError, match="AISLE_REC_DEVICE"):
            GRACE(TINY)
    finally:
        monkeypatch.delenv("AISLE_REC_DEVICE")
        get_settings.cache_clear()


def test_a_saved_model_holds_cpu_tensors_and_loads_on_the_device_asked(
        toy: SequenceDataset, tmp_path: Path) -> None:
    model = _fit(toy)
    model.save(tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in saved["model"].values())
    loaded = GRACE.load(tmp_path / "model.pt", threads=1, device="cpu")
    assert loaded.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in loaded.net.parameters())
    history = [toy.items[0], toy.items[1]]
    assert [r.item_id for r in loaded.recommend(history, k=3)] == \
        [r.item_id for r in model.recommend(history, k=3)]
