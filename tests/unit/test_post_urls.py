import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.console.task_pages import PLATFORM_LABELS
from services.intake.post_urls import MAX_LENGTH, PLATFORMS, Post, UrlProblems, platform_of, posts

ACCEPTED = [
    # scheme and host lower case, default port dropped, Japanese path percent-encoded, the
    # （） of a pasted place name kept full-width, Maps share tracking dropped, order kept
    ("HTTPS://WWW.Google.CO.JP:443/maps/place/山田クリニック（内科）/@35.6,139.7,17z?g_ep=Eg&hl=ja&entry=ttu",
     "https://www.google.co.jp/maps/place/%E5%B1%B1%E7%94%B0%E3%82%AF%E3%83%AA%E3%83%8B%E3%83%83%E3%82%AF"
     "%EF%BC%88%E5%86%85%E7%A7%91%EF%BC%89/@35.6,139.7,17z?hl=ja&entry=ttu", "google_maps"),
    ("http://maps.google.com:80/?cid=123", "http://maps.google.com/?cid=123", "google_maps"),
    ("https://maps.app.goo.gl/AbC123", "https://maps.app.goo.gl/AbC123", "google_maps"),
    ("https://goo.gl/maps/xyz", "https://goo.gl/maps/xyz", "google_maps"),
    ("https://g.page/r/CabcEAE/review", "https://g.page/r/CabcEAE/review", "google_maps"),
    ("https://g.co/kgs/AbCd", "https://g.co/kgs/AbCd", "google_maps"),
    ("https://business.google.com/reviews", "https://business.google.com/reviews", "google_maps"),
    ("https://www.google.com/maps/contrib/1234/reviews", "https://www.google.com/maps/contrib/1234/reviews", "google_maps"),
    # no scheme but a public host: https://
    ("www.google.com/maps/place/x", "https://www.google.com/maps/place/x", "google_maps"),
    ("x.com/yamada/status/1", "https://x.com/yamada/status/1", "x"),
    # typed in full-width mode: folded as a whole
    ("ｈｔｔｐｓ：／／ｘ．ｃｏｍ／ｙａｍａｄａ／ｓｔａｔｕｓ／１２３？ｓ＝２０", "https://x.com/yamada/status/123", "x"),
    # copy-paste leftovers, X share parameters
    ("「https://x.com/user/status/1?s=20&t=abc」。", "https://x.com/user/status/1", "x"),
    ("  <https://twitter.com/user/status/2?ref_src=twsrc%5Etfw>  ", "https://twitter.com/user/status/2", "x"),
    ("https://mobile.twitter.com/user/status/3！", "https://mobile.twitter.com/user/status/3", "x"),
    ("https://twitter.com/#!/user/status/123", "https://twitter.com/user/status/123", "x"),  # old hashbang
    ("https://t.co/AbCdEf", "https://t.co/AbCdEf", "x"),
    # balanced brackets stay, unbalanced ones are the sentence's
    ("<https://en.wikipedia.org/wiki/Foo_(bar)>", "https://en.wikipedia.org/wiki/Foo_(bar)", "other"),
    ("（https://en.wikipedia.org/wiki/Foo_(bar)）、", "https://en.wikipedia.org/wiki/Foo_(bar)", "other"),
    ("https://example.com/a.", "https://example.com/a", "other"),
    ("https://example.com/a%2E", "https://example.com/a%2E", "other"),  # a real final dot, escaped
    ("\u3000https://example.com/p?id=1,\u3000", "https://example.com/p?id=1", "other"),
    # IDN host to punycode, Japanese path and query, an anchor dropped, a route kept
    ("https://例え.jp/パス?q=あ#section", "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%E3%81%82", "other"),
    ("https://example.com/app#/reviews/12", "https://example.com/app#/reviews/12", "other"),
    ("https://example.com/p#:~:text=%E6%82%AA", "https://example.com/p", "other"),
    ("https://example.com/%7euser/%e3%81%82?b=2&a=1&utm_source=x&fbclid=y",
     "https://example.com/~user/%E3%81%82?b=2&a=1", "other"),
    ("https://8.8.8.8/a", "https://8.8.8.8/a", "other"),  # a public IP is a public page
    ("https://www.instagram.com/p/Cxyz/?igshid=abc&img_index=1", "https://www.instagram.com/p/Cxyz/?img_index=1", "instagram"),
    ("https://m.facebook.com/story.php?story_fbid=1&id=2&mibextid=abc", "https://m.facebook.com/story.php?story_fbid=1&id=2", "facebook"),
    ("https://fb.watch/abc/", "https://fb.watch/abc/", "facebook"),
    ("https://youtu.be/abc?si=xyz&t=30", "https://youtu.be/abc?t=30", "youtube"),  # YouTube's t is kept
    ("https://m.youtube.com/watch?v=abc&feature=share", "https://m.youtube.com/watch?v=abc", "youtube"),
    ("https://open.spotify.com/episode/1?si=abc", "https://open.spotify.com/episode/1", "other"),
    ("https://vm.tiktok.com/ZMabc/", "https://vm.tiktok.com/ZMabc/", "tiktok"),
    ("https://www.tiktok.com/@u/video/1?is_from_webapp=1&sender_device=pc", "https://www.tiktok.com/@u/video/1", "tiktok"),
    ("https://timeline.line.me/post/_abc/1", "https://timeline.line.me/post/_abc/1", "line"),
    ("https://openchat.line.me/jp/cover/abc", "https://openchat.line.me/jp/cover/abc", "line"),
    ("https://egg.5ch.net/test/read.cgi/body/1700000000/123.", "https://egg.5ch.net/test/read.cgi/body/1700000000/123", "5ch"),
    ("https://medaka.2ch.sc/test/read.cgi/a/1/", "https://medaka.2ch.sc/test/read.cgi/a/1/", "other"),
    ("https://bakusai.com/thr_res/acode=3/ctgid=104/bid=1/tid=1/", "https://bakusai.com/thr_res/acode=3/ctgid=104/bid=1/tid=1/", "bakusai"),
    ("https://caloo.jp/hospitals/detail/1131234567", "https://caloo.jp/hospitals/detail/1131234567", "medical_review"),
    ("https://byoinnavi.jp/clinic/12345", "https://byoinnavi.jp/clinic/12345", "medical_review"),
    ("https://www.minnanokaigo.com/facility/1/review/", "https://www.minnanokaigo.com/facility/1/review/", "medical_review"),
    # link shims unwrapped to the post they point at
    ("https://www.google.com/url?sa=t&q=https://www.youtube.com/watch%3Fv%3Dabc%26si%3Dzz&usg=x",
     "https://www.youtube.com/watch?v=abc", "youtube"),
    ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.jp%2Fp%3Ffbclid%3D1&h=x", "https://example.jp/p", "other"),
]

REFUSED = [
    ("javascript:alert(1)", "url_scheme"),
    ("data:text/html,<b>x</b>", "url_scheme"),
    ("file:///etc/passwd", "url_scheme"),
    ("ftp://example.com/a", "url_scheme"),
    ("mailto:a@example.com", "url_scheme"),
    ("口コミがひどいです", "url_invalid"),
    ("https://", "url_invalid"),
    ("https://intranet/a", "url_invalid"),  # no dot
    ("https://example.invalid/a", "url_invalid"),  # no public suffix
    ("http://localhost:8000/a", "url_invalid"),
    ("localhost:8000/a", "url_invalid"),
    ("http://192.168.0.1/a", "url_invalid"),
    ("http://127.0.0.1/a", "url_invalid"),
    ("http://[::1]/a", "url_invalid"),
    ("https://example.com:99999/a", "url_invalid"),
    ("https://www.google.com@evil.example.com/", "url_invalid"),  # userinfo hides the real host
    ("https://x.com/user/status/1 この投稿です", "url_invalid"),  # a comment after the address
    ("https://example.com/" + "a" * MAX_LENGTH, "url_too_long"),
    ("https://example.com/" + "あ" * 300, "url_too_long"),  # 2,700 characters once escaped
    ("https://www.google.co.jp/search?q=山田クリニック+口コミ", "url_search_results"),
    ("https://www.google.com/search?q=a", "url_search_results"),
    ("https://www.google.com/maps/search/クリニック/@35.6,139.7,14z", "url_search_results"),
    ("https://search.yahoo.co.jp/search?p=abc", "url_search_results"),
    ("https://search.yahoo.co.jp/realtime/search?p=abc", "url_search_results"),
    ("https://www.bing.com/search?q=a", "url_search_results"),
    ("https://duckduckgo.com/?q=a", "url_search_results"),
    ("https://x.com/search?q=%E5%8C%BB%E9%99%A2", "url_search_results"),
    ("https://www.google.com/url?sa=t&usg=x", "url_search_results"),  # a shim without its target
    ("https://www.google.co.jp/url?q=javascript:alert(1)", "url_search_results"),
]


@pytest.mark.parametrize(("given", "url", "platform"), ACCEPTED)
def test_an_accepted_address_is_normalised_and_tagged(given, url, platform):
    assert posts([given]) == [Post(url, platform)]
    assert posts([url]) == [Post(url, platform)]  # and stays so


@pytest.mark.parametrize(("given", "code"), REFUSED)
def test_a_refused_address_says_why_in_japanese(given, code):
    with pytest.raises(UrlProblems) as caught:
        posts([given])
    [problem] = caught.value.problems
    assert (problem.code, problem.index) == (code, 0)
    assert problem.message_ja and not problem.message_ja.isascii()


def test_every_refused_line_is_named_at_once_and_blank_lines_are_skipped():
    with pytest.raises(UrlProblems) as caught:
        posts(["https://x.com/a/status/1", "", "javascript:alert(1)", "   ", "https://www.bing.com/search?q=a"])
    assert [(p.index, p.code) for p in caught.value.problems] == [(2, "url_scheme"), (4, "url_search_results")]


def test_duplicates_after_normalisation_are_dropped_keeping_the_first_order():
    assert posts([
        "https://x.com/a/status/1?s=20",
        "https://caloo.jp/h/1",
        "HTTPS://X.COM:443/a/status/1",
        "x.com/a/status/1。",
        "https://caloo.jp/h/1?utm_source=line",
    ]) == [Post("https://x.com/a/status/1", "x"), Post("https://caloo.jp/h/1", "medical_review")]


def test_the_search_message_asks_for_the_post_itself():
    with pytest.raises(UrlProblems) as caught:
        posts(["https://www.google.co.jp/search?q=a"])
    assert "投稿そのもの" in caught.value.problems[0].message_ja


def test_every_platform_has_a_label_and_is_recognised():
    found = {post.platform for given, _, _ in ACCEPTED for post in posts([given])}
    assert found == {code for _, _, code in PLATFORMS} | {"other"}
    assert found == set(PLATFORM_LABELS)  # the console names each of them
    assert platform_of("not a url") == "other"


def test_the_public_suffix_list_is_the_bundled_one_no_network_no_cache(tmp_path):
    """tldextract would download the list and cache it under ~/.cache by default."""
    program = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network touched')\n"
        "socket.socket.connect = socket.getaddrinfo = socket.create_connection = refuse\n"
        "from services.intake.post_urls import posts\n"
        "assert posts(['https://www.google.co.jp/maps/place/x'])[0].platform == 'google_maps'\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    run = subprocess.run([sys.executable, "-c", program], cwd=Path(__file__).parents[2], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not any(tmp_path.iterdir())


_HOSTS = st.one_of(
    st.sampled_from(["x.com", "www.google.co.jp", "maps.app.goo.gl", "youtu.be", "egg.5ch.net", "caloo.jp",
                     "www.instagram.com", "example.com", "xn--r8jz45g.jp", "例え.jp", "Example.ORG"]),
    st.builds("{}.{}".format, st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
              st.sampled_from(["com", "co.jp", "jp", "net", "みんな"])),
)
_TEXT = st.text(st.sampled_from("aZ09-._~!$&'()*+,;=:@%（）ｱ①あ漢。、\"<>[]|\\^`{}é"), max_size=8)
_PATHS = st.lists(_TEXT.map(lambda s: s.replace("&", "")), max_size=4).map("/".join)
_QUERIES = st.lists(st.tuples(st.sampled_from(["q", "id", "t", "s", "si", "utm_medium", "fbclid", "v", "a b"]),
                              _TEXT.map(lambda s: s.replace("&", ""))), max_size=4)
_FRAGMENTS = st.sampled_from(["", "#x", "#!/a/b", "#/r?x=1", "#:~:text=a", "#!"])


@settings(max_examples=400, deadline=None)
@given(_HOSTS, st.sampled_from(["https://", "http://", "HTTPS://", ""]), st.sampled_from(["", ":443", ":80", ":8080"]),
       _PATHS, _QUERIES, _FRAGMENTS)
def test_normalising_twice_changes_nothing(host, scheme, port, path, query, fragment):
    raw = f"{scheme}{host}{port}/{path}" + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "") + fragment
    try:
        [post] = posts([raw])
    except UrlProblems:
        return
    assert post.url.isascii() and len(post.url) <= MAX_LENGTH
    assert posts([post.url]) == [post]
