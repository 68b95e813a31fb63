"""Pseudo-queries from a corpus alone, for label-free adaptation (no judgements are read).

* ``crop`` — independent cropping (Izacard et al., "Unsupervised Dense Information Retrieval with
  Contrastive Learning" (Contriever), TMLR 2022): a random span of ``min_words`` to ``max_words``
  words of a document is a query for that document.
* ``crop-out`` — the same span, and the document without it as the positive (``crop:<id>:<start>``),
  so the query's words are not copied into its positive; Contriever's two crops of a document
  share no span either. With plain ``crop`` a lexical teacher finds every source first by a wide
  margin, and distilling it taught all-MiniLM-L6-v2 span matching (``benchmarks/README.md``).
* ``ict`` — the inverse cloze task (Lee, Chang and Toutanova, ACL 2019): one sentence of a
  document is the query, and the document without that sentence is its positive.
* ``generate`` (:func:`generate_queries`) — doc2query (Nogueira et al., 2019; docTTTTTquery): a
  local generator LM (causal or encoder-decoder, loaded with transformers) writes queries for each
  document, sampled from its top ``top_k`` tokens, as GPL generates its queries.

Each document gives ``per_doc`` queries, drawn from a generator seeded by ``seed`` and the
document's position, so the same settings give the same examples. :func:`consistent` keeps the
pseudo-queries whose own document the current retriever ranks within its top ``k`` (the
round-trip filter of synthetic-query work, e.g. GPL and Promptagator).

>>> from rankwise.data.beir import Document
>>> ex = crop_queries({"d": Document("one two three four five six seven eight")}, min_words=3, max_words=3)
>>> len(ex[0].query.split()), ex[0].positives[0][0]
(3, 'd')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rankwise.data.beir import Dataset, Document
from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError

METHODS = ("crop", "crop-out", "ict", "generate")
_DERIVED = ("crop:", "ict:")  # positives that are a corpus document less the query: "<kind>:<source>:<n>"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def crop_queries(
    corpus: Mapping[str, Document],
    *,
    method: str = "crop",
    per_doc: int = 1,
    min_words: int = 4,
    max_words: int = 16,
    seed: int = 42,
) -> list[TrainExample]:
    """Pseudo (query, positive) examples for every document long enough to give one."""
    if method not in METHODS[:3]:
        raise ConfigError(
            f"method={method}: choose one of crop, crop-out, ict (generate: generate_queries)", param="method"
        )
    if not 1 <= min_words <= max_words:
        raise ConfigError(f"min_words={min_words}, max_words={max_words}: need 1 <= min <= max", param="min_words")
    out: list[TrainExample] = []
    for i, (did, doc) in enumerate(corpus.items()):
        rng = np.random.default_rng([seed, i])
        for j in range(per_doc):
            if method == "ict":
                ex = _ict(did, doc, rng, j)
            else:
                ex = _crop(did, doc, rng, min_words, max_words, out=method == "crop-out")
            if ex is not None:
                out.append(ex)
    return out


def _crop(did: str, doc: Document, rng, min_words: int, max_words: int, *, out: bool = False) -> TrainExample | None:
    words = doc.full_text.split()
    if len(words) < min_words + 1:
        return None
    n = int(rng.integers(min_words, min(max_words, len(words) - 1) + 1))
    start = int(rng.integers(0, len(words) - n + 1))
    query, qid = " ".join(words[start : start + n]), f"crop:{did}:{start}"
    if out:  # the positive: the document less the span
        return TrainExample(query, [(qid, " ".join(words[:start] + words[start + n :]))], query_id=qid)
    return TrainExample(query, [(did, doc.full_text)], query_id=qid)


def _ict(did: str, doc: Document, rng, j: int) -> TrainExample | None:
    sentences = [s for s in _SENTENCE.split(doc.full_text) if s.strip()]
    if len(sentences) < 2:
        return None
    k = int(rng.integers(len(sentences)))
    rest = " ".join(sentences[:k] + sentences[k + 1 :])
    return TrainExample(sentences[k], [(f"ict:{did}:{k}", rest)], query_id=f"ict:{did}:{j}")


FILTERS = ("model", "hybrid")


def consistent(
    examples: list[TrainExample],
    model,
    corpus: Mapping[str, Document],
    k: int = 10,
    *,
    cache: bool = False,
    by: str = "model",
) -> list[TrainExample]:
    """The examples whose positive document is retrieved in the top ``k`` (for ``ict`` and
    ``crop-out``, the source document, :func:`source_id`) by the dual encoder ``model`` (``by="model"``)
    or by it and BM25 fused, CombSUM over each one's min-max scores (``"hybrid"``: the label-free
    teacher's retriever, which also keeps the queries the model misses and a lexical match finds,
    those a hybrid teacher has the most to teach on). ``cache``: the corpus embeddings from (and into)
    the embeddings cache, which evaluating the starting model then reuses."""
    from rankwise.index.retrieve import BM25Retriever, DenseRetriever, cached_embeddings

    if by not in FILTERS:
        raise ConfigError(f"consistency filter {by!r}: expected one of {', '.join(FILTERS)}", param="by")
    ids = list(corpus)
    texts = [corpus[d].full_text for d in ids]
    retriever = DenseRetriever(model, ids, texts, embeddings=cached_embeddings(model, texts) if cache else None)
    if by == "hybrid":
        from rankwise.index.fusion import FusedRetriever, parse_fusion

        retriever = FusedRetriever([BM25Retriever(ids, texts), retriever], parse_fusion("combsum:min-max"))
    rows, _, _ = retriever.search([ex.query for ex in examples], k, states=False)
    return [ex for ex, row in zip(examples, rows) if source_id(ex) in {ids[int(r)] for r in row if r >= 0}]


def source_id(ex: TrainExample) -> str:
    """The corpus document a pseudo-query came from (for ``ict`` and ``crop-out``, whose positive
    is that document less the query, the id inside ``<kind>:<id>:<n>``)."""
    did = ex.positives[0][0]
    kind = next((k for k in _DERIVED if did.startswith(k)), None)
    return did[len(kind) :].rsplit(":", 1)[0] if kind else did  # a source id may hold ':' itself


def pseudo_dataset(corpus: Mapping[str, Document], examples: list[TrainExample], path=None) -> Dataset:
    """The corpus with the pseudo-queries as its judged queries (each judging its source document),
    so that mining strategies and teachers find a query's hard negatives, and never its source,
    as they do for real judgements."""
    queries = {ex.query_id: ex.query for ex in examples}
    qrels = {ex.query_id: {source_id(ex): 1} for ex in examples}
    # a teacher scores what the student trains on: for ict and crop-out the source less the query,
    # not the source, which holds the query word for word and would take nearly all of the target
    derived = {
        ex.query_id: {source_id(ex): ex.positives[0][1]} for ex in examples if source_id(ex) != ex.positives[0][0]
    }
    return Dataset(dict(corpus), queries, qrels, path=path, split="pseudo", positive_texts=derived)


PROMPT = "passage: {doc}\nquery:"


def generate_queries(
    corpus: Mapping[str, Document],
    generator: str | Path,
    *,
    per_doc: int = 1,
    max_new_tokens: int = 24,
    doc_tokens: int = 200,
    prompt: str = PROMPT,
    sample: bool = True,
    top_k: int = 10,
    seed: int = 42,
    batch_size: int = 8,
    device: str | None = None,
) -> list[TrainExample]:
    """doc2query: ``per_doc`` queries a document from the LM in ``generator`` (a folder or hub name).
    A causal LM continues ``prompt`` (the document cut to ``doc_tokens`` tokens); an encoder-decoder
    reads the document and writes the query. A query is the first line of the new text; an empty
    one is dropped. Sampling (``sample``, top-``top_k``) is seeded by ``seed`` and the batch."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from rankwise.device import resolve_device

    seq2seq = bool(getattr(AutoConfig.from_pretrained(str(generator)), "is_encoder_decoder", False))
    tok = AutoTokenizer.from_pretrained(str(generator))
    lm = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(str(generator))
    lm = lm.to(resolve_device(device)).eval()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    items = list(corpus.items())
    out: list[TrainExample] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        texts = [_cut(tok, doc.full_text, doc_tokens) for _, doc in chunk]
        texts = texts if seq2seq else [prompt.format(doc=t) for t in texts]
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed * 1_000_003 + start)
            new = _generate(lm, tok, texts, seq2seq, pad, per_doc, max_new_tokens, sample, top_k)
        for i, (did, doc) in enumerate(chunk):
            for j in range(per_doc):
                query = new[i * per_doc + j].strip().split("\n")[0].strip()
                if query:
                    out.append(TrainExample(query, [(did, doc.full_text)], query_id=f"gen:{did}:{j}"))
    return out


def _cut(tok, text: str, limit: int) -> str:
    return tok.decode(tok(text, add_special_tokens=False)["input_ids"][:limit])


def _generate(lm, tok, texts, seq2seq: bool, pad: int, n: int, max_new: int, sample: bool, top_k: int) -> list[str]:
    """Each text's ``n`` continuations (new tokens only), prompts left-padded so all end together."""
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=seq2seq).to(lm.device)
    ids = lm.generate(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        max_new_tokens=max_new,
        do_sample=sample,
        top_k=top_k if sample else None,
        num_return_sequences=n,
        pad_token_id=pad,
    )
    new = ids if seq2seq else ids[:, enc["input_ids"].shape[1] :]
    return tok.batch_decode(new, skip_special_tokens=True)
