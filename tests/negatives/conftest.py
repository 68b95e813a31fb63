import pytest

from tests.conftest import write_beir


@pytest.fixture()
def topics_beir(tmp_path):
    """40 documents on 8 topics (5 each), 16 queries, each with one positive; 2 queries judge a grade-0 document."""
    topics = [
        "apple fruit orchard",
        "ocean wave water",
        "python code parser",
        "train rail station",
        "violin string music",
        "volcano lava eruption",
        "bee honey hive",
        "snow winter cold",
    ]
    corpus = [
        {"_id": f"d{t}{j}", "text": f"{topics[t]} " + " ".join([topics[t].split()[j % 3]] * (j + 1)) + f" note {j}"}
        for t in range(8)
        for j in range(5)
    ]
    queries = [
        {"_id": f"q{t}{j}", "text": f"{topics[t].split()[j]} {topics[t].split()[(j + 1) % 3]}"}
        for t in range(8)
        for j in range(2)
    ]
    qrels = [(f"q{t}{j}", f"d{t}{j}", 1) for t in range(8) for j in range(2)] + [("q00", "d04", 0), ("q10", "d14", 0)]
    return write_beir(tmp_path / "topics", corpus, queries, {"train": qrels})
