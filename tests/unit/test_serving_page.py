"""The try-it page's files and rules, without a browser or Ray: what it loads is served, what is served ships in the
wheel, titles are never parsed as HTML, and the script's element ids and limits match the page and the schema.
The page in a real browser on the real app: ``tests/integration/test_page.py``."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from coldstart.serving import schema
from coldstart.serving.page import ASSETS, PAGE_HEADERS, asset, index_html

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "coldstart" / "serving" / "static"
JS = (STATIC / "page.js").read_text()


@pytest.mark.parametrize("root_path, base", [("", "/"), ("/", "/"), ("/shop", "/shop/"), ("/shop/", "/shop/"),
                                             ('/a"><script>x', "/a&quot;&gt;&lt;script&gt;x/")])
def test_the_page_resolves_its_urls_under_the_route_prefix(root_path, base):
    page = index_html(root_path)
    assert page.count("<base ") == 1
    assert f'<base href="{base}">' in page


def test_the_page_loads_only_served_assets_by_relative_urls():
    page = re.sub(r"<base [^>]*>", "", index_html(""))
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    static = [url for url in loaded if url.startswith("static/")]
    assert sorted(u.removeprefix("static/") for u in static) == sorted(ASSETS)
    assert not [u for u in loaded if u.startswith("/")], "absolute URLs break under a route prefix"
    for name in ASSETS:
        content, media_type = asset(name)
        assert content == (STATIC / name).read_bytes() and media_type.startswith("text/")


@pytest.mark.parametrize("name", ["index.html", "README.md", "../page.py", "..%2Fpage.py", "page.js/", ""])
def test_only_the_listed_assets_are_served(name):
    assert asset(name) is None


def test_every_page_file_ships_in_the_wheel():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["coldstart"]
    for path in STATIC.iterdir():
        relative = path.relative_to(ROOT / "coldstart").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} is not in the package data"


def test_nothing_inline_so_the_content_security_policy_holds():
    policy = PAGE_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page = index_html("")
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="static/page.js" defer>']
    assert not re.search(r"\sstyle=|\son[a-z]+=|javascript:", page, re.IGNORECASE)


def test_the_script_never_parses_data_as_html():
    code = re.sub(r"//[^\n]*", "", JS)  # comments may name what is avoided
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink
    assert "textContent" in code


def test_the_script_finds_every_element_it_uses():
    page = index_html("")
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    used = set(re.findall(r'\$\("([^"]+)"\)', JS))
    assert used and used <= ids, sorted(used - ids)


def test_the_script_keeps_the_schemas_click_limit_and_names_every_signal():
    assert int(re.search(r"const MAX_CLICKS = (\d+);", JS).group(1)) == schema.MAX_CLICKS
    described = schema.RecommendResponse.model_fields["signals"].description
    names = set(re.findall(r"`([a-z0-9_]+)`", described))
    block = re.search(r"const SIGNALS = \{(.*?)\};", JS, re.S).group(1)
    assert names and names <= set(re.findall(r"^\s*([a-z0-9_]+):", block, re.M)), described
