"""Free-text columns (names, titles, short descriptions): decide from the data which text
columns are free text, and turn each into word features inside the pipeline.

Why: a text column with a different value in every row used to be dropped as an identifier,
and a high-cardinality one was one-hot coded (30 values kept) or ordinal coded, yet the
words of a passenger name ("Braund, Mr. Owen Harris": mr, mrs, miss, family names) or of a
job title carry signal. True identifiers (codes, UUIDs, e-mail addresses, ticket numbers)
have one word per value or words that never repeat: they stay dropped.

The rule (:func:`free_text`) uses no target, so it is safe before cross-validation. A text
column (not dates, not numbers stored as text) is free text when

* the encoders cannot keep its values: more than ``MAX_ONEHOT_CATEGORIES`` distinct values,
  or a different value in every row (an identifier candidate);
* its values hold on average at least ``MIN_MEAN_WORDS`` words, a word being a
  whitespace-separated piece with a letter in it ("A-1234", a UUID, an e-mail address and
  "PC 17599" hold one word; "Braund, Mr. Owen Harris" four);
* its words repeat: at least ``MIN_COVERED_SHARE`` of the values contain one of the
  ``MAX_TOKENS`` most frequent *informative* tokens, a token (two or more letters or digits,
  with a letter) being informative when it occurs in at least ``MIN_TOKEN_ROWS`` values and in
  fewer than ``MAX_TOKEN_SHARE`` of them (a prefix shared by every row, "user 17", tells no
  row apart). These are exactly the tokens the vectorizer keeps.

Random codes reach a low coverage: 4,096 hex groups over 5,000 rows put about 5 rows behind each
of the top 100 tokens, 10 % at most; titles of passengers cover ~99 % of the rows.

:class:`TextTokens` (fitted per fold, shipped with the model): per column a scikit-learn
``TfidfVectorizer`` (the tokens above, seen in at least ``MIN_TOKEN_ROWS`` training rows, the
``MAX_TOKENS`` most frequent, sublinear term frequency, L2-normalised rows: values in [0, 1],
so no scaling is needed) plus log(1 + number of words); dense output so every family takes
it. Missing text is the empty string; unseen words are ignored.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# A token: two or more letters / digits, at least one of them a letter (pure numbers inside
# text are mostly ids, years or amounts, which a token cannot order anyway).
TOKEN_PATTERN = r"(?u)\b(?=\w*[^\W\d_])\w\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
_WORD_HAS_LETTER = re.compile(r"[^\W\d_]")

MIN_MEAN_WORDS = 2.0  # words per value, on average
MIN_TOKEN_ROWS = 2  # a token must occur in this many values to count (and to be kept when fitting)
MAX_TOKEN_SHARE = 0.95  # ... and in fewer than this share of them
MIN_COVERED_SHARE = 0.5  # share of values holding one of the kept tokens
MAX_TOKENS = 100  # tokens kept per column (the most frequent)
DECISION_SAMPLE = 5000  # values the decision looks at (seeded sample of larger columns)


def _words(value: str) -> int:
    return sum(1 for w in value.split() if _WORD_HAS_LETTER.search(w))


def _tokens(value: str) -> set[str]:
    return set(_TOKEN.findall(value.lower()))


def free_text(col: pd.Series) -> tuple[bool, str]:
    """(whether a text column is free text, the measured reason either way, for the notes).

    The caller has checked that the column is text, not dates nor numbers, and that its values
    are too many for the encoders (see the module docstring).
    """
    values = col.dropna().astype(str)
    if values.empty:
        return False, "no values"
    if len(values) > DECISION_SAMPLE:
        values = values.sample(DECISION_SAMPLE, random_state=0)
    n = len(values)
    mean_words = float(np.mean([_words(v) for v in values]))
    if mean_words < MIN_MEAN_WORDS:
        return False, f"{mean_words:.1f} word(s) per value"
    token_sets = [_tokens(v) for v in values]
    df: dict[str, int] = {}
    for tokens in token_sets:
        for t in tokens:
            df[t] = df.get(t, 0) + 1
    informative = [t for t, k in df.items() if k >= MIN_TOKEN_ROWS and k < MAX_TOKEN_SHARE * n]
    kept = set(sorted(informative, key=lambda t: (-df[t], t))[:MAX_TOKENS])
    covered = sum(1 for tokens in token_sets if tokens & kept) / n
    if covered < MIN_COVERED_SHARE:
        return False, f"{mean_words:.1f} words per value, but only {covered:.0%} of the values share a repeating word"
    top = ", ".join(sorted(kept, key=lambda t: (-df[t], t))[:5])
    return True, f"{mean_words:.1f} words per value; {covered:.0%} of the values share a repeating word ({top}, ...)"


def _as_text(values) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)
            for v in np.asarray(values, dtype=object).ravel()]


class TextTokens(TransformerMixin, BaseEstimator):
    """Each input column of free text → TF-IDF of its frequent words plus log(1 + word count)."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py

    def __init__(self, max_tokens: int = MAX_TOKENS, min_rows: int = MIN_TOKEN_ROWS):
        self.max_tokens = max_tokens
        self.min_rows = min_rows

    def _vectorizer(self, min_df: int):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(token_pattern=TOKEN_PATTERN, lowercase=True, min_df=min_df,
                               max_features=self.max_tokens, sublinear_tf=True, dtype=np.float64)

    def fit(self, X, y=None):
        frame = pd.DataFrame(X)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.vectorizers_ = []
        for j in range(frame.shape[1]):
            texts = _as_text(frame.iloc[:, j].to_numpy(dtype=object))
            vectorizer = None
            for min_df in (self.min_rows, 1):  # a small fold may have no repeating word: keep every word
                try:
                    vectorizer = self._vectorizer(min_df).fit(texts)
                    break
                except ValueError:  # no token left (or none at all): only the word count remains
                    vectorizer = None
            self.vectorizers_.append(vectorizer)
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        blocks = []
        for j, vectorizer in enumerate(self.vectorizers_):
            texts = _as_text(frame.iloc[:, j].to_numpy(dtype=object))
            if vectorizer is not None:
                blocks.append(vectorizer.transform(texts).toarray())
            blocks.append(np.log1p(np.array([_words(t) for t in texts], dtype=float)).reshape(-1, 1))
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else self.feature_names_in_
        out = []
        for name, vectorizer in zip(names, self.vectorizers_):
            if vectorizer is not None:
                out += [f"{name}__{t}" for t in vectorizer.get_feature_names_out()]
            out.append(f"{name}__n_words")
        return np.asarray(out, dtype=object)
