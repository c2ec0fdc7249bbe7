"""The numeric baselines' pieces: chunk means of the reader's embeddings, and PCA fitted on training texts."""

from __future__ import annotations

import torch
from eval_rows import sst_examples

from latentwire_core.anchor import mean_pool_slot
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.methods.numeric import PCABaseline

LM = FakeFrozenLM(d_model=16, n_layers=1, vocab=60, seed=2)


def test_mean_pool_slot_is_the_chunk_mean_of_token_embeddings() -> None:
    ids = LM.tokenize(["abcdefg"])[0]
    out = mean_pool_slot(LM, ids, 3)
    emb = LM.embed(torch.tensor([ids]))[0]
    # 7 tokens in 3 chunks: [0,2), [2,4), [4,7)
    expected = torch.stack([emb[0:2].mean(0), emb[2:4].mean(0), emb[4:7].mean(0)])
    torch.testing.assert_close(out, expected)


def test_pca_is_fitted_on_training_texts_and_keeps_the_budget() -> None:
    train = [LM.tokenize([e.source])[0] for e in sst_examples(40)]
    pca = PCABaseline(LM, train, m=4, rank=5)
    codes = pca.codes(LM.tokenize(["an unseen evaluation text"])[0])
    assert codes.shape == (4, 5) and pca.reconstruct(codes).shape == (4, 16)
    assert 0 < pca.explained <= 1
    # reconstruction of a training chunk from its own codes is close to the chunk
    chunk = mean_pool_slot(LM, train[0], 4)
    err = (pca.reconstruct(pca.codes(train[0])) - chunk).norm() / chunk.norm()
    assert float(err) < 0.8
