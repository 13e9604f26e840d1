"""The built-in model's tokenizer: a small byte-level BPE we train and ship as JSON.

Byte-level, so any text round-trips exactly (no unknown characters); special tokens have fixed ids
0..5 in the order of ``SPECIALS``. Satisfies ``diffprompt.dlm.base.DLTokenizer``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from diffprompt.errors import ModelError

SPECIALS: tuple[str, ...] = ("[PAD]", "[MASK]", "[EOS]", "[BOS]", "[SEP]", "[UNK]")


class BuiltinTokenizer:
    """A thin wrapper over a ``tokenizers.Tokenizer`` with the special ids as attributes."""

    def __init__(self, tok: object) -> None:
        from tokenizers import Tokenizer

        if not isinstance(tok, Tokenizer):
            raise ModelError("BuiltinTokenizer needs a tokenizers.Tokenizer; use BuiltinTokenizer.load(path)")
        self._tok = tok
        ids = [tok.token_to_id(s) for s in SPECIALS]
        if ids != list(range(len(SPECIALS))):
            raise ModelError(f"tokenizer special ids {ids} are not 0..5; retrain with train_tokenizer()")
        fixed = list(range(len(SPECIALS)))  # == ids, checked above
        self.pad_id, self.mask_id, self.eos_id, self.bos_id, self.sep_id, self.unk_id = fixed
        self.special_ids = frozenset(fixed)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS are added; ``add_special_tokens`` is accepted for HF parity)."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; special tokens are dropped when ``skip_special_tokens``."""
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def save(self, path: str | Path) -> None:
        self._tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> BuiltinTokenizer:
        from tokenizers import Tokenizer

        p = Path(path)
        if not p.is_file():
            raise ModelError(f"tokenizer file {p} not found; run `diffprompt dlm train` to create it")
        return cls(Tokenizer.from_file(str(p)))


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 4096) -> BuiltinTokenizer:
    """Train a byte-level BPE on ``texts`` (deterministic for the same texts and order)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return BuiltinTokenizer(tok)
