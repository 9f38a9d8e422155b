"""The addresses of the posts a consultant reports: each line normalised, tagged with the platform
the desk deals with, or refused with a reason the consultant can act on. Pure: never fetches a URL.

Decisions (where the brief left them open):
- Normalisation is url-normalize's: scheme and host lower case, default ports dropped, IDN hosts
  to punycode (ASCII, so a look-alike Unicode host shows as what it is), percent-escapes
  upper-cased and only where needed (Japanese in paths ends up as %XX), dot segments resolved.
  The order of query parameters is KEPT: some sites read them positionally or repeat a key, and
  the desk compares addresses only to drop exact duplicates, so sorting would buy nothing.
- Width: a consultant typing with the IME in full-width mode gives ｈｔｔｐｓ：／／ｘ．ｃｏｍ／….
  NFKC is applied to the scheme and host only; the rest is folded from full-width ASCII to ASCII
  only when the scheme, host or the delimiter after it was typed full-width. A pasted address
  keeps its path as it is: NFKC would turn ｶﾀｶﾅ, ①, ㈱ or the （） of a Google Maps place name
  into other characters, i.e. another address.
- Fragments are dropped (anchors, #:~:text= highlights) except routes of single-page sites,
  '#!…' and '#/…', which are the page itself; old X/Twitter '/#!/user/status/1' is lifted into
  the path as X itself redirects it.
- No scheme but a host under a public suffix ('x.com/…', 'www.google.com/maps/…'): https://.
- Link shims (Google '/url?q=', Facebook 'l.php?u=', Instagram 'l.instagram.com/?u=') are
  unwrapped to their target; a shim without an http(s) target is refused as a search result.
- Copy-paste leftovers are trimmed: brackets and quotes around, and 。、，．.,!?！？:;：」』】）)]>"'
  at the end, except a closing bracket that balances one inside the URL (Wikipedia 'Foo_(bar)').
  So a genuine address ending in '.' must be typed as %2E; addresses we return end with such a
  character only percent-encoded, which keeps normalisation idempotent.
- A line with whitespace inside is refused rather than cut: 'https://x.com/a この投稿' is
  probably a comment after the address, but guessing could report the wrong page. Blank lines
  are skipped. The 2,000-character limit applies to the normalised address we store.
- Hosts: an IP literal must be global; a name needs a dot and an ICANN public suffix (tldextract's
  bundled snapshot: no suffix-list download, no cache writes) so 'intranet.local' is refused.
  Platforms match a host and its subdomains; 'google.*' means Google under any public suffix.
"""
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import idna
import tldextract
from url_normalize import url_normalize

# (host, path prefix, platform), first match wins; a host covers its subdomains
PLATFORMS: tuple[tuple[str, str, str], ...] = (
    ("google.*", "/maps", "google_maps"),  # www.google.co.jp/maps/place/…, /maps/contrib/… (reviews)
    ("maps.google.*", "", "google_maps"),  # maps.google.com/?cid=…
    ("search.google.com", "/local", "google_maps"),  # /local/reviews?placeid=…, /local/writereview
    ("business.google.com", "", "google_maps"),
    ("maps.app.goo.gl", "", "google_maps"),  # the share button's short link
    ("goo.gl", "/maps", "google_maps"),
    ("g.page", "", "google_maps"),  # a Business Profile's own short link
    ("g.co", "/kgs", "google_maps"),  # knowledge panel share link
    ("x.com", "", "x"), ("twitter.com", "", "x"), ("t.co", "", "x"),
    ("instagram.com", "", "instagram"), ("instagr.am", "", "instagram"),
    ("facebook.com", "", "facebook"), ("fb.com", "", "facebook"), ("fb.watch", "", "facebook"),
    ("youtube.com", "", "youtube"), ("youtu.be", "", "youtube"),
    ("tiktok.com", "", "tiktok"),  # www., m., vm., vt.
    ("line.me", "", "line"),  # timeline., openchat., voom., liff.
    ("lin.ee", "", "line"),  # official accounts' short links
    # one operator, one deletion procedure; 2ch.sc and open2ch.net are other operators: 'other'
    ("5ch.net", "", "5ch"), ("2ch.net", "", "5ch"), ("bbspink.com", "", "5ch"),
    ("bakusai.com", "", "bakusai"),
    # sites where patients post reviews of clinics, hospitals and care facilities; editorial
    # sites without patients' posts (doctors-file.jp) and general shop-review sites are 'other'
    ("caloo.jp", "", "medical_review"),  # Caloo
    ("byoinnavi.jp", "", "medical_review"),  # 病院なび
    ("qlife.jp", "", "medical_review"),  # QLife 病院検索
    ("hospita.jp", "", "medical_review"),  # ホスピタ
    ("clinic.epark.jp", "", "medical_review"),  # EPARKクリニック・病院
    ("haisha-yoyaku.jp", "", "medical_review"),  # EPARK歯科
    ("minnanokaigo.com", "", "medical_review"),  # みんなの介護
)

# pages that list search results rather than show a post: (host, path prefix)
SEARCH_PAGES: tuple[tuple[str, str], ...] = (
    ("google.*", "/search"),
    ("google.*", "/maps/search"),  # a Maps search, not a place
    ("search.yahoo.co.jp", ""),  # Yahoo! JAPAN: web, realtime (posts on X), images...
    ("search.yahoo.com", ""),
    ("bing.com", "/search"), ("bing.com", "/images/search"), ("bing.com", "/news/search"),
    ("duckduckgo.com", ""),
    ("x.com", "/search"), ("twitter.com", "/search"),  # search inside a platform
    ("youtube.com", "/results"), ("tiktok.com", "/search"), ("facebook.com", "/search"),
)

# link shims that carry the real address in a parameter: (host, path prefix, parameters)
REDIRECTORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("google.*", "/url", ("q", "url")),  # links copied from a results page
    ("l.facebook.com", "/l.php", ("u",)), ("lm.facebook.com", "/l.php", ("u",)),
    ("l.instagram.com", "", ("u",)),
)

# query parameters dropped everywhere: they say who shared or which ad, never which post
# ('utm_*' is a prefix)
TRACKING = (
    "utm_*",  # Google Analytics campaigns
    "fbclid", "mibextid", "__cft__*", "__tn__",  # Facebook click and share ids
    "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "_gl",  # Google Ads / Analytics linker
    "yclid",  # Yahoo! / Yandex ads
    "msclkid",  # Microsoft ads
    "twclid", "ref_src", "ref_url",  # X ads and embeds
    "igshid", "igsh",  # Instagram share
    "ttclid",  # TikTok ads
    "mc_cid", "mc_eid",  # Mailchimp
    "_hsenc", "_hsmi",  # HubSpot
    "spm",  # Alibaba-style share tracking
)
# dropped on one site only, because elsewhere the same name means something (YouTube's t is
# the second to start at)
TRACKING_ON: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("youtube.com", ("si", "feature", "pp")), ("youtu.be", ("si", "feature")),
    ("open.spotify.com", ("si",)),
    ("x.com", ("s", "t")), ("twitter.com", ("s", "t")),  # the share sheet's ?s=20&t=…
    ("tiktok.com", ("_r", "_t", "is_from_webapp", "sender_device", "web_id", "is_copy_url")),
    ("google.*", ("g_ep", "g_st")),  # Maps share links
)

MAX_LENGTH = 2000
_MAX_PASTE = 4 * MAX_LENGTH  # longer than this is not worth parsing, tracking or not
MESSAGES_JA: dict[str, str] = {
    "url_scheme": "http:// または https:// で始まる、投稿のページのアドレス（URL）を入力してください。",
    "url_invalid": "アドレス（URL）として読み取れません。投稿のページを開き、ブラウザのアドレス欄のURLを"
                   "そのまま貼り付けてください（1行に1件）。",
    "url_too_long": f"アドレス（URL）が長すぎます（{MAX_LENGTH:,}文字まで）。投稿のページを開き、"
                    "共有ボタンの「リンクをコピー」で得られるURLを貼り付けてください。",
    "url_search_results": "検索結果のページのアドレスです。窓口では投稿そのもののアドレスが必要です。"
                          "検索結果から投稿や口コミを開き、そのページのアドレス（URL）をコピーしてください。",
}

_OPENERS = "<「『【（([\"'“‘"
_TRAILING = "。、，．.,!?！？:;：；」』】）)]>\"'”’"
_PAIRS = {")": "(", "）": "（", "]": "["}
_HEAD = re.compile(r"[^/／?？#＃]*(?:[/／]{2}[^/／?？#＃]*)?")  # scheme and host, any width
_WIDE_ASCII = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!\d+(?:[/?#]|$))")  # not 'host:8080/'
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_FRAGMENT_SAFE = "~:/?[]@!$&'()*+,;="
_SUFFIXES = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


@dataclass(frozen=True)
class Post:
    url: str  # normalised
    platform: str  # a code of PLATFORMS, or "other" (the console's screens name them in Japanese)


class UrlProblem(ValueError):
    def __init__(self, code: str, index: int = -1):
        super().__init__(f"line {index}: {code}")
        self.code, self.message_ja, self.index = code, MESSAGES_JA[code], index


class UrlProblems(ValueError):
    def __init__(self, problems: list[UrlProblem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def posts(raw: list[str]) -> list[Post]:
    """Every non-blank line as a Post, duplicates after normalisation dropped (first kept);
    raises UrlProblems naming every refused line."""
    found: dict[str, Post] = {}
    problems: list[UrlProblem] = []
    for index, line in enumerate(raw):
        try:
            post = _post(line)
        except UrlProblem as problem:
            problems.append(UrlProblem(problem.code, index))
            continue
        if post is not None:
            found.setdefault(post.url, post)
    if problems:
        raise UrlProblems(problems)
    return list(found.values())


def platform_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "other"
    return next((code for site, prefix, code in PLATFORMS if _at(host, parts.path, site, prefix)), "other")


def _post(line: str, depth: int = 0) -> Post | None:
    text = _trim(_fold_width(_trim(line)))
    if not text:
        return None
    if len(text) > _MAX_PASTE:
        raise UrlProblem("url_too_long")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in text):
        raise UrlProblem("url_invalid")
    url, fragment = _normalised(_with_scheme(text))
    parts = urlsplit(url)
    host = _public_host(parts)
    for site, prefix, names in REDIRECTORS:
        if _at(host, parts.path, site, prefix):
            return _unwrapped(parts.query, names, depth)
    if any(_at(host, parts.path, site, prefix) for site, prefix in SEARCH_PAGES):
        raise UrlProblem("url_search_results")
    url = _without_tracking(url, host) + fragment
    url = url[:-1] + f"%{ord(url[-1]):02X}" if _trim(url) != url else url
    if len(url) > MAX_LENGTH:
        raise UrlProblem("url_too_long")
    return Post(url, platform_of(url))


def _trim(text: str) -> str:
    """Whitespace, <…>, quotes and brackets around, punctuation caught at the end."""
    text = text.strip().lstrip(_OPENERS).strip()
    while text and text[-1] in _TRAILING:
        last = text[-1]
        if last in _PAIRS and text.count(_PAIRS[last]) >= text.count(last):
            break  # it closes a bracket of the URL itself
        text = text[:-1].rstrip()
    return text


def _fold_width(text: str) -> str:
    head = _HEAD.match(text).group()
    rest = text[len(head):]
    if any(0xFF01 <= ord(c) <= 0xFF5E for c in head + rest[:1]):  # typed in full-width mode
        rest = rest.translate(_WIDE_ASCII)
    return unicodedata.normalize("NFKC", head) + rest


def _with_scheme(text: str) -> str:
    scheme = _SCHEME.match(text)
    if scheme and "." not in scheme.group(1):
        if scheme.group(1).lower() not in ("http", "https"):
            raise UrlProblem("url_scheme")
        return text
    return "https:" + text if text.startswith("//") else "https://" + text


def _normalised(url: str) -> tuple[str, str]:
    """The normalised address without its fragment, and the fragment worth keeping."""
    url, _, fragment = url.partition("#")
    try:
        url = url_normalize(url)
        parts = urlsplit(url)
        if fragment.startswith("!/") and parts.path == "/" and platform_of(url) == "x":
            return _normalised(f"{parts.scheme}://{parts.netloc}{fragment[1:]}")  # old '#!/' links
    except ValueError:  # also UnicodeError from IDNA
        raise UrlProblem("url_invalid") from None
    if fragment.startswith(("!", "/")) and fragment.strip("!/"):
        return url, "#" + quote(unicodedata.normalize("NFC", unquote(fragment)), safe=_FRAGMENT_SAFE)
    return url, ""


def _public_host(parts) -> str:
    """The host, if a report could point at it: a public name or a global IP address."""
    try:
        host, _ = parts.hostname or "", parts.port
    except ValueError:  # a port that is not a number
        raise UrlProblem("url_invalid") from None
    if parts.username is not None or not host:  # 'https://google.com@elsewhere.example/'
        raise UrlProblem("url_invalid")
    try:
        if not ipaddress.ip_address(host).is_global:
            raise UrlProblem("url_invalid")
        return host
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlProblem("url_invalid")
    name = _SUFFIXES(_unicode(host))
    if not name.suffix or not name.domain:
        raise UrlProblem("url_invalid")
    return host


def _unwrapped(query: str, names: tuple[str, ...], depth: int) -> Post | None:
    targets = [value for name, value in parse_qsl(query) if name in names]
    if depth >= 3 or not targets or not re.match(r"https?://", targets[0], re.IGNORECASE):
        raise UrlProblem("url_search_results")
    return _post(targets[0], depth + 1)


def _without_tracking(url: str, host: str) -> str:
    base, _, query = url.partition("?")
    dropped = TRACKING + tuple(name for site, names in TRACKING_ON if _at(host, "", site, "") for name in names)
    kept = [pair for pair in query.split("&") if pair and not _named(pair.partition("=")[0], dropped)]
    return base + ("?" + "&".join(kept) if kept else "")


def _named(key: str, names: tuple[str, ...]) -> bool:
    return any(key.startswith(name[:-1]) if name.endswith("*") else key == name for name in names)


def _at(host: str, path: str, site: str, prefix: str) -> bool:
    """Whether host is site or under it, and path is prefix or under it ('google.*' is
    google under any public suffix)."""
    if site.endswith(".*"):
        site = site[:-1] + _SUFFIXES(_unicode(host)).suffix
    under_site = host == site or host.endswith("." + site)
    return under_site and (not prefix or path == prefix or path.startswith(prefix + "/"))


def _unicode(host: str) -> str:
    """The public suffix list is written in Unicode; our hosts are punycode."""
    try:
        return idna.decode(host)
    except UnicodeError:  # not valid IDNA: the host is then checked as it is
        return host
