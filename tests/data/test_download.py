import http.server
import threading
import zipfile
from functools import partial

import pytest

from rankwise.data import load_beir
from rankwise.data.download import get_dataset, parse_spec
from rankwise.errors import DataError, RankwiseError


def _zip_of(folder, zip_path, top="toy"):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in folder.rglob("*"):
            if f.is_file():
                zf.write(f, f"{top}/{f.relative_to(folder)}")
    return zip_path


def test_get_over_loopback_http(tmp_path, toy_beir):
    serve = tmp_path / "serve"
    serve.mkdir()
    _zip_of(toy_beir, serve / "toy.zip")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(serve))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seen = []
        url = f"http://127.0.0.1:{server.server_address[1]}/toy.zip"
        path = get_dataset("beir:toy", tmp_path / "out", url=url, progress=lambda d, t: seen.append((d, t)))
    finally:
        server.shutdown()
    assert path == tmp_path / "out" / "toy"
    assert load_beir(path, "test").qrels == load_beir(toy_beir, "test").qrels
    assert seen and seen[-1][0] == seen[-1][1] == (serve / "toy.zip").stat().st_size
    assert not (tmp_path / "out" / "toy.zip").exists()


def test_get_from_file_url_and_bad_zips(tmp_path, toy_beir):
    good = _zip_of(toy_beir, tmp_path / "good.zip")
    assert (get_dataset("beir:toy", tmp_path / "o1", url=good.as_uri()) / "corpus.jsonl").is_file()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="unsafe member path"):
        get_dataset("beir:toy", tmp_path / "o2", url=evil.as_uri())
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(DataError, match="no BEIR folder"):
        get_dataset("beir:toy", tmp_path / "o3", url=empty.as_uri())


def test_bad_spec_and_unreachable_url(tmp_path):
    with pytest.raises(RankwiseError, match="expected beir:<name>"):
        parse_spec("msmarco")
    with pytest.raises(RankwiseError, match="cannot download"):
        get_dataset("beir:toy", tmp_path, url=(tmp_path / "missing.zip").as_uri())
