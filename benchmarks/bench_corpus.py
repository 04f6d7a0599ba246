"""Speed of the espeak-ng corpus generator (``unit2av.demo.corpus.make_corpus``).

    python benchmarks/bench_corpus.py                 # 24 utterances (4 voices x 6), median of 3

Prints seconds per run and utterances per second. The tests build their corpora with the same
function; ``tests/test_corpus.py`` checks what it writes, not how fast.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=6, help="sentences per voice (default voices: 4)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from unit2av.demo.corpus import make_corpus

    seconds, count = [], 0
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            count = len(make_corpus(Path(tmp) / "corpus", sentences_per_voice=args.sentences, chapters=2, seed=i))
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(
        f"make_corpus: {count} utterances in {median:.2f} s (median of {args.repeats}), "
        f"{count / median:.1f} utterances/s"
    )


if __name__ == "__main__":
    main()
