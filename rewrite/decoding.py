"""Greedy and input-guided decoding for the restorer's T5 model.

Restoring spun text copies most of the input, so the input itself is a good guess of the output.
Input-guided decoding (Shallow Aggressive Decoding, Sun et al. 2021) feeds a run of input tokens
to the decoder in one pass, keeps the longest prefix the model agrees with, appends the model's
own token at the first disagreement and then finds where the output lines up with the input again.
Every kept token is the argmax given the tokens before it, so the result is the greedy output.

    >>> seqs, probs = generate_ids(model, enc.input_ids, enc.attention_mask, 128)   # guided
    >>> seqs == generate_ids(model, enc.input_ids, enc.attention_mask, 128, method="greedy")[0]
    True

One guided pass, for a row whose input is ``x = [A B C D E </s>]`` and output so far ``[A]``:

    decoder input   A | B  C  D  E        (last output token, then the draft x[1:5])
    argmax          B   C  X  ...         (the model's next token at each position)
    accepted        B C   then X          (2 draft tokens agree; X is the model's own token)

After a disagreement the draft continues where the output's last few tokens occur in the input;
when they occur nowhere (the model is inside a rewrite), it guesses that the rewrite replaces the
rest of the input word it diverged at (``word_starts`` tells where input words start).

The decoder cache keeps each row's tokens right-aligned: row b's valid entries are the last
``lengths[b]`` columns, the columns before them are masked. T5 attention depends only on the
distance between tokens, so a row shifted to the right decodes exactly as it would alone.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Collection

import torch

from .errors import InputError

logger = logging.getLogger(__name__)

METHODS = ("guided", "greedy")
# Draft tokens per pass when draft_len is None: POSITIONS_PER_PASS shared by the rows still decoding,
# at most MAX_DRAFT_LEN each. On CPU a pass over a few dozen positions costs little more than a pass
# over one (reading the weights dominates); beyond that every rejected draft token costs time.
POSITIONS_PER_PASS = 64
MAX_DRAFT_LEN = 32
# After a disagreement, a draft found by matching the output's tail in the input is likely right;
# one placed by guessing (inside a rewrite) is often wrong: it gets GUESS_DRAFT_LEN tokens, then 3
# after a pass that accepted nothing, then none (plain greedy steps) until the output's tail is
# found in the input again. A model that does not copy then costs about what greedy costs.
GUESS_DRAFT_LEN = 8
# Matrix products with 2 or 3 rows are slower than with 4 on common CPU BLAS builds (measured:
# a decoder pass over 2 positions took 14 ms, over 4 positions 12.5 ms), so a pass that checks a
# draft at all covers at least this many positions (batch x width).
MIN_POSITIONS = 4
RESYNC_NGRAM = 4  # longest output tail looked up in the input to re-synchronise the draft


def generate_ids(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    method: str = "guided",
    draft_len: int | None = None,
    word_starts: Collection[int] | None = None,
) -> tuple[list[list[int]], list[list[float]]]:
    """Greedy-decode a batch with ``model`` (a ``T5ForConditionalGeneration``).

    ``input_ids``/``attention_mask``: ``[batch, src_len]`` as the tokenizer returns them (padded,
    each row ending in eos). Returns, per row, the generated ids without the decoder start token,
    up to and including eos (a row without eos was cut off at ``max_new_tokens``), and the softmax
    probability of each id (the probability of the argmax at its step).

    ``method="greedy"`` runs ``model.generate``; ``"guided"`` returns the same tokens with far
    fewer decoder passes when the output copies the input. ``draft_len`` caps the draft tokens a
    row checks per pass (default: ``POSITIONS_PER_PASS`` shared by the rows still decoding, at
    most ``MAX_DRAFT_LEN``); ``word_starts`` (see ``word_start_ids``) sharpens the guess after a
    rewrite. Neither changes the output.
    """
    if method not in METHODS:
        raise InputError(f"unknown decoding method {method!r}; choose from {METHODS}")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if draft_len is not None and draft_len < 1:
        raise InputError(f"draft_len must be at least 1, got {draft_len}")
    if input_ids.shape[0] == 0:
        return [], []
    with torch.inference_mode():
        if method == "greedy":
            return _greedy(model, input_ids, attention_mask, max_new_tokens)
        return _guided(model, input_ids, attention_mask, max_new_tokens, draft_len, word_starts)


def word_start_ids(tokenizer) -> frozenset[int]:
    """Ids of the pieces that begin a word ("▁said") or are no word at all (",", "</s>").

        >>> starts = word_start_ids(tokenizer)
        >>> [(p, tokenizer.convert_tokens_to_ids(p) in starts) for p in ["▁said", "ed", ",", "</s>"]]
        [('▁said', True), ('ed', False), (',', True), ('</s>', True)]
    """
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return frozenset(
        i for i, piece in enumerate(pieces) if piece.startswith("▁") or not any(ch.isalnum() for ch in piece)
    ) | frozenset(tokenizer.all_special_ids)


def _special_ids(model) -> tuple[int, int]:
    config = model.config
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.pad_token_id
    return int(start), int(config.eos_token_id)


def _greedy(model, input_ids, attention_mask, max_new_tokens):
    """The baseline: ``model.generate`` greedy search, probabilities from its raw logits."""
    from transformers import GenerationConfig

    start, eos = _special_ids(model)
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        decoder_start_token_id=start,
        eos_token_id=eos,
        pad_token_id=model.config.pad_token_id,
        output_logits=True,
        return_dict_in_generate=True,
    )
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    return _generated_ids(out.sequences[:, 1:], out.logits, eos)  # without the decoder start token


def _generated_ids(tokens: torch.Tensor, step_logits, eos: int) -> tuple[list[list[int]], list[list[float]]]:
    """``generate``'s new tokens ``[batch, steps]`` and per-step logits -> per row, the ids up to and
    including ``eos`` and the probability of each."""
    logits = torch.stack(step_logits, dim=1).float()  # [batch, steps, vocab]
    probs = logits.softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    sequences, token_probs = [], []
    for row, row_probs in zip(tokens.tolist(), probs.tolist()):
        end = row.index(eos) + 1 if eos in row else len(row)
        sequences.append(row[:end])
        token_probs.append(row_probs[:end])
    return sequences, token_probs


class _Row:
    """Decoding state of one input: its source ids, output so far and draft position."""

    __slots__ = ("index", "source", "out", "probs", "ptr", "anchor", "last", "done", "want", "misses")

    def __init__(self, index: int, source: list[int], start: int):
        self.index = index
        self.source = source  # input ids up to and including eos: the draft
        self.out: list[int] = []
        self.probs: list[float] = []
        self.ptr = 0  # source index of the next draft token
        self.anchor: int | None = None  # inside a rewrite: where the input should resume
        self.last = start  # last output token, not yet in the decoder cache
        self.done = False
        self.want = MAX_DRAFT_LEN  # draft length this row would like next
        self.misses = 0  # passes in a row that accepted none of a draft

    def draft(self, length: int, max_new_tokens: int) -> list[int]:
        # A pass emits the accepted draft plus one token of the model's own, so a row with room
        # for r more tokens can use at most r - 1 draft tokens.
        room = max_new_tokens - len(self.out) - 1
        return self.source[self.ptr : self.ptr + min(length, room)]

    def advance(
        self,
        draft: list[int],
        accepted: int,
        token: int,
        probs: list[float],
        eos: int,
        max_new_tokens: int,
        word_starts: Collection[int] | None,
    ) -> None:
        """Record one pass: the first ``accepted`` tokens of ``draft``, then the model's ``token``;
        ``probs`` holds the probability of each of them."""
        emitted = draft[:accepted] + [token]
        if eos in emitted:
            cut = emitted.index(eos) + 1
            self.out += emitted[:cut]
            self.probs += probs[:cut]
            self.done = True
            return
        self.out += emitted
        self.probs += probs
        self.last = emitted[-1]
        if len(self.out) >= max_new_tokens:
            self.done = True
            return
        if accepted:
            self.misses = 0
        elif draft:
            self.misses += 1
        ptr = self.ptr + accepted  # the draft token the model rejected (or the end of the draft)
        if ptr < len(self.source) and self.source[ptr] == self.last:
            self.ptr, self.anchor, self.want = ptr + 1, None, MAX_DRAFT_LEN  # still copying
            return
        if accepted or self.anchor is None:  # a new rewrite starts at source[ptr]
            self.anchor = _next_word(self.source, ptr, word_starts)
        self.ptr = resync(self.source, self.out, hint=self.anchor)
        if 0 < self.ptr and self.source[self.ptr - 1] == self.last:  # found the output's tail
            self.want = MAX_DRAFT_LEN
        else:
            self.want = (GUESS_DRAFT_LEN, 3, 0)[min(self.misses, 2)]


def _next_word(source: list[int], ptr: int, word_starts) -> int:
    """Index of the first word start after ``source[ptr]`` (``ptr + 1`` without ``word_starts``)."""
    end = ptr + 1
    if word_starts is not None:
        while end < len(source) and source[end] not in word_starts:
            end += 1
    return min(end, len(source))


def resync(source: list[int], out: list[int], hint: int, max_ngram: int = RESYNC_NGRAM) -> int:
    """Where in ``source`` the draft continues after ``out``.

    Looks for the longest tail of ``out`` (up to ``max_ngram`` tokens) in ``source`` and returns the
    index just after the occurrence nearest ``hint``; without any match, returns ``hint``.

        >>> resync([5, 6, 7, 8, 9], out=[5, 4, 7], hint=2)    # 4 replaced 6: continue at 8
        3
    """
    for k in range(min(max_ngram, len(out)), 0, -1):
        tail = out[-k:]
        best = None
        for end in range(k, len(source) + 1):
            if source[end - 1] == tail[-1] and source[end - k : end] == tail:
                if best is None or abs(end - hint) < abs(best - hint):
                    best = end
        if best is not None:
            return best
    return min(hint, len(source))


def _guided(model, input_ids, attention_mask, max_new_tokens, draft_len, word_starts):
    from transformers import DynamicCache, EncoderDecoderCache

    start, eos = _special_ids(model)
    pad = int(model.config.pad_token_id)
    device = input_ids.device
    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    enc_mask = attention_mask  # hidden: [active, src_len, d_model], enc_mask: [active, src_len]
    source_lens = attention_mask.sum(1).tolist()
    rows = [_Row(i, ids[: int(n)], start) for i, (ids, n) in enumerate(zip(input_ids.tolist(), source_lens))]
    active = list(rows)  # rows still decoding, in cache order
    lengths = torch.zeros(len(rows), dtype=torch.long, device=device)  # valid cache entries per row
    # Layers are created on first use (DynamicCache(config=...) would deep-copy the config per call).
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())  # updated in place by every pass
    # transformers renamed `past_key_values` to `cache` during 5.x; accept both spellings.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    passes = 0
    while active:
        drafts = _drafts(active, draft_len, max_new_tokens)
        step_ids, n_draft = _step_input(active, drafts, pad, device)  # [active, width], [active]
        width = step_ids.shape[1]
        past = cache.get_seq_length()
        valid = torch.arange(past, device=device)[None, :] >= past - lengths[:, None]
        dec_mask = torch.cat([valid, valid.new_ones(len(active), width)], dim=1).long()
        out = model(
            encoder_outputs=(hidden,),
            attention_mask=enc_mask,
            decoder_input_ids=step_ids,
            decoder_attention_mask=dec_mask,
            use_cache=True,
            **{cache_arg: cache},
        )
        passes += 1
        accepted = _accept(active, drafts, step_ids, n_draft, out.logits, eos, max_new_tokens, word_starts)
        lengths = lengths + 1 + accepted  # the cache holds `width` new columns, 1 + accepted valid
        index, active, lengths, accepted = _retire(active, cache, lengths, accepted)
        if not active:
            break
        if index is not None:
            hidden, enc_mask = hidden[index], enc_mask[index]
        _realign(cache.self_attention_cache, past, accepted, lengths)
    logger.debug("guided decoding: %d rows, %d decoder passes", len(rows), passes)
    return [row.out for row in rows], [row.probs for row in rows]


def _accept(active, drafts, step_ids, n_draft, logits, eos, max_new_tokens, word_starts) -> torch.Tensor:
    """Advance every row by one pass: keep the longest draft prefix the model agrees with, then the
    model's own token. ``logits``: ``[active, width, vocab]`` for ``step_ids`` (each row's last
    token and its draft). Returns ``accepted``: draft tokens kept per row, ``[active]``."""
    preds = logits.argmax(-1)
    # accepted[b]: how many draft tokens in a row equal the model's prediction before them
    positions = torch.arange(step_ids.shape[1], device=step_ids.device)[None, :]
    agree = (preds[:, :-1] == step_ids[:, 1:]) & (positions[:, :-1] < n_draft[:, None])
    accepted = agree.long().cumprod(1).sum(1)  # [active]
    emit = positions <= accepted[:, None]  # the accepted drafts and one token of the model's own
    emit_probs = logits[emit].float().softmax(-1).gather(-1, preds[emit][:, None]).squeeze(-1).tolist()
    preds_list, accepted_list = preds.tolist(), accepted.tolist()
    offset = 0
    for b, row in enumerate(active):
        a = accepted_list[b]
        row.advance(drafts[b], a, preds_list[b][a], emit_probs[offset : offset + a + 1], eos, max_new_tokens,
                    word_starts)
        offset += a + 1
    return accepted


def _retire(active: list[_Row], cache, lengths: torch.Tensor, accepted: torch.Tensor):
    """Drop the rows that finished from the batch and the cache. Returns ``(index, active, lengths,
    accepted)``: ``index`` selects the rows kept (None when all are), for the caller's own
    per-row tensors; ``active`` is empty when every row is done."""
    keep = [b for b, row in enumerate(active) if not row.done]
    if not keep or len(keep) == len(active):
        return None, [row for row in active if not row.done], lengths, accepted
    index = torch.tensor(keep, device=lengths.device)
    cache.batch_select_indices(index)
    return index, [active[b] for b in keep], lengths[index], accepted[index]


def _drafts(active: list[_Row], draft_len: int | None, max_new_tokens: int) -> list[list[int]]:
    """The draft of every row for one pass.

    The pass is as wide as the longest draft any row wants, and every row drafts that many tokens:
    the positions are computed for every row anyway, so a longer draft costs nothing extra.
    """
    cap = draft_len or max(1, min(MAX_DRAFT_LEN, POSITIONS_PER_PASS // len(active)))
    length = min(cap, max(row.want for row in active))
    if length:
        length = min(cap, max(length, -(-MIN_POSITIONS // len(active)) - 1))
    return [row.draft(length, max_new_tokens) for row in active]


def _step_input(active: list[_Row], drafts: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder input of one pass: each row's last output token and its draft, padded."""
    width = 1 + max(len(d) for d in drafts)
    rows = [[row.last, *d] + [pad] * (width - 1 - len(d)) for row, d in zip(active, drafts)]
    return torch.tensor(rows, device=device), torch.tensor([len(d) for d in drafts], device=device)


def _realign(self_cache, past: int, accepted: torch.Tensor, lengths: torch.Tensor) -> None:
    """Drop rejected draft columns and right-align every row's valid entries again.

    Before: row b's valid columns are ``[past - old_len, past + 1 + accepted[b])`` followed by
    rejected ones. After: they are the last ``lengths[b]`` columns of a cache just wide enough for
    the longest row.
    """
    most = int(accepted.max())
    end = past + 1 + most  # new common end column
    begin = end - int(lengths.max())  # columns before this are padding in every row
    shift = most - accepted  # [active]: how far right each row moves
    if int(shift.max()) == 0:
        for layer in self_cache.layers:
            layer.keys = layer.keys[:, :, begin:end]
            layer.values = layer.values[:, :, begin:end]
        return
    # source column of each new column; clamped columns land in the masked padding
    index = (torch.arange(begin, end, device=shift.device)[None, :] - shift[:, None]).clamp(min=0)
    for layer in self_cache.layers:
        batch, heads, _, dim = layer.keys.shape
        gather = index[:, None, :, None].expand(batch, heads, end - begin, dim)
        layer.keys = layer.keys.gather(2, gather)
        layer.values = layer.values.gather(2, gather)


def guided_lm(
    model,
    prompts: list[list[int]],
    drafts: list[list[int]],
    eos: int,
    max_new_tokens: int,
    word_starts: Collection[int] | None = None,
    draft_len: int | None = None,
) -> tuple[list[list[int]], list[list[float]]]:
    """Input-guided greedy decoding for a decoder-only restorer (``rewrite.lm``).

    ``prompts``: each sentence's prompt (``rewrite.lm.prompt_ids``); ``drafts``: the continuation
    to check first (``rewrite.lm.draft_ids``: the spun ids, then ``eos``). Each prompt but its last
    token is run once (left-padded, so every row's cache entries end in the same column); the last
    token is each row's first decoder input, then the loop of ``_guided`` runs with the drafts.
    Rotary position embeddings depend only on the distance between tokens, and each row's
    positions count its own tokens, so a row decodes as it would alone. Returns, per row, the
    generated ids up to and including ``eos`` and the probability of each.
    """
    from transformers import DynamicCache

    if not prompts:
        return [], []
    with torch.inference_mode():
        device = next(model.parameters()).device
        heads = [p[:-1] for p in prompts]  # the last token of each prompt is its row's first `last`
        width = max(len(p) for p in heads)
        pad = eos
        prompt_ids = torch.tensor([[pad] * (width - len(p)) + p for p in heads], device=device)
        lengths = torch.tensor([len(p) for p in heads], device=device)
        mask = (torch.arange(width, device=device)[None, :] >= width - lengths[:, None]).long()
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        cache = DynamicCache()
        # transformers renamed `past_key_values` to `cache` during 5.x; accept both spellings.
        cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        model(input_ids=prompt_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
              **{cache_arg: cache})  # the prompt's logits are not needed: its last token is decoded next
        rows = [_Row(i, list(draft), prompt[-1]) for i, (prompt, draft) in enumerate(zip(prompts, drafts))]
        active = list(rows)
        passes = 1
        while active:
            guesses = _drafts(active, draft_len, max_new_tokens)
            step_ids, n_draft = _step_input(active, guesses, pad, device)  # [active, width]
            step = step_ids.shape[1]
            past = cache.get_seq_length()
            valid = torch.arange(past, device=device)[None, :] >= past - lengths[:, None]
            attn = torch.cat([valid, valid.new_ones(len(active), step)], dim=1).long()
            pos = lengths[:, None] + torch.arange(step, device=device)[None, :]
            logits = model(input_ids=step_ids, attention_mask=attn, position_ids=pos, use_cache=True,
                           **{cache_arg: cache}).logits  # [active, step, vocab]
            passes += 1
            accepted = _accept(active, guesses, step_ids, n_draft, logits, eos, max_new_tokens, word_starts)
            lengths = lengths + 1 + accepted
            _, active, lengths, accepted = _retire(active, cache, lengths, accepted)
            if not active:
                break
            _realign(cache, past, accepted, lengths)
    logger.debug("guided LM decoding: %d rows, %d passes", len(rows), passes)
    return [row.out for row in rows], [row.probs for row in rows]


def greedy_lm(model, prompts: list[list[int]], eos: int, max_new_tokens: int):
    """The baseline for ``guided_lm``: ``model.generate`` greedy search over left-padded prompts
    (``rewrite.lm.prompt_ids``), with the probability of each generated id; same return value."""
    from transformers import GenerationConfig

    if not prompts:
        return [], []
    width = max(len(p) for p in prompts)
    input_ids = torch.tensor([[eos] * (width - len(p)) + p for p in prompts])
    mask = (input_ids != eos) | (torch.arange(width)[None, :] >= width - torch.tensor([len(p) for p in prompts])[:, None])
    config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, eos_token_id=eos,
                              pad_token_id=eos, output_logits=True, return_dict_in_generate=True)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=mask.long(), generation_config=config)
    return _generated_ids(out.sequences[:, width:], out.logits, eos)
