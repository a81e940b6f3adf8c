"""The book's Sphinx extension: two cross-reference roles and two fixes for the offline HTML.

- ``{src}`tests/test_forward.py::test_one_step_has_eq2_moments``` renders as that text, linked to
  ``<repository url>/blob/<branch>/tests/test_forward.py``; ``{src}`q_sample <minidiff/forward.py>```
  shows only ``q_sample``. A link to a missing file, or to a function or class that the file does
  not define, is a build warning (an error under ``-W``). The URL and branch come from the
  ``repository:`` section of _config.yml (via ``html_theme_options``), the one place they are set.
- ``{chapter}`notebooks/01_forward_process``` (or ``{chapter}`title <notebooks/...>```) links to
  that chapter (with its own title, or the given one) when it is in
  the table of contents, and renders as plain text otherwise, so pages can name chapters that are
  still being written without breaking the strict (``-W -n``) build. Pages with such links are
  re-read at every build, so they follow the table of contents.
- MathJax (served from the build) is loaded on every page, so math in the navigation renders
  on pages whose own content has none.
- Matplotlib's HTML animation player (``to_jshtml``) links Font Awesome 4 from a CDN for its
  button icons; the link is dropped from notebook outputs, and the theme's own bundled Font
  Awesome draws the same ``fa fa-play``-style icons offline.
- Each inline script is written once per page: sphinx-thebe's configuration script otherwise
  appears twice and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared".
- Notebook pages show what a reader needs, not the test machinery: the lines ``# NBVAL_...`` (the
  markers nbval reads when it runs the notebooks) are dropped from the code shown, and the Colab
  install cell (the first code cell, ``.ci/check_notebook_outputs.py --guard``) is left out of the
  page. The notebooks themselves keep both; the launch button opens them with the guard in Colab.
"""

from __future__ import annotations

import pathlib
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

# <link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css">
_CDN_FONT_AWESOME = re.compile(r"""<link\b[^>]*href=["']https?://[^"']*font-awesome[^"']*["'][^>]*>""", re.I)


def drop_cdn_font_awesome(app, doctree, docname):
    """Remove the CDN stylesheet link from raw HTML outputs (matplotlib's animation player)."""
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "html" in node.get("format", "") and _CDN_FONT_AWESOME.search(text):
            new = nodes.raw(node.rawsource, _CDN_FONT_AWESOME.sub("", text), format=node["format"])
            new["classes"] = list(node.get("classes", []))
            node.replace_self(new)


# A line of a code cell that only carries an nbval marker: "# NBVAL_CHECK_OUTPUT", "# NBVAL_SKIP", ...
_NBVAL_LINE = re.compile(r"^[ \t]*# NBVAL_[A-Z_]+[^\n]*(?:\n|$)", re.M)
# The first line after the marker in the Colab guard cell (see .ci/check_notebook_outputs.py).
_COLAB_GUARD = "# Google Colab only: install minidiff"


def _code_cells(doctree) -> list[nodes.Element]:
    return [n for n in doctree.findall(nodes.container) if n.get("nb_element") == "cell_code"]


def tidy_notebook_cells(app, doctree) -> None:
    """Leave the Colab guard cell out of a notebook page and drop ``# NBVAL_`` lines from its code."""
    cells = _code_cells(doctree)
    if not cells:
        return
    first = cells[0]
    source = "".join(b.astext() for b in first.findall(nodes.literal_block))
    if _COLAB_GUARD in source:
        first.parent.remove(first)
        cells = cells[1:]
    for cell in cells:
        for block in list(cell.findall(nodes.literal_block)):
            if block.parent is None or block.parent.get("nb_element") != "cell_code_source":
                continue  # an output, not the code
            text = block.astext()
            stripped = _NBVAL_LINE.sub("", text)
            if stripped != text:
                new = block.copy()
                new.children = []
                new += nodes.Text(stripped)
                new.rawsource = stripped
                block.replace_self(new)


def _repo_base(app) -> str:
    opts = app.config.html_theme_options or {}
    url = str(opts.get("repository_url", "")).rstrip("/")
    branch = opts.get("repository_branch", "main") or "main"
    if not url:
        raise ValueError("the {src} role needs repository.url in _config.yml")
    return f"{url}/blob/{branch}"


def _check_target(app, env, lineno, path: str, name: str) -> None:
    """Warn (an error under -W) when a {src} link names a file or a function that does not exist."""
    file = pathlib.Path(app.srcdir) / path
    if not file.is_file():
        logger.warning(f"{{src}} link to a missing file: {path}", location=(env.docname, lineno))
        return
    env.note_dependency(str(file))
    if name and not re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", file.read_text(), re.M):
        logger.warning(f"{{src}} link to {name!r}, which {path} does not define", location=(env.docname, lineno))


def setup(app):
    def src_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        explicit = re.match(r"^(.+?)\s*<([^<>]+)>$", text.strip())  # {src}`title <path::name>`
        title, target = (explicit.group(1), explicit.group(2)) if explicit else (text, text)
        path, _, name = (part.strip() for part in target.partition("::"))
        _check_target(app, inliner.document.settings.env, lineno, path, name)
        node = nodes.reference(rawtext, "", refuri=f"{_repo_base(app)}/{path}", classes=["minidiff-src"])
        node += nodes.literal(title, title)
        return [node], []

    def chapter_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        env = inliner.document.settings.env
        explicit = re.match(r"^(.+?)\s*<([^<>]+)>$", text.strip())  # {chapter}`title <notebooks/name>`
        title, target = (explicit.group(1), explicit.group(2)) if explicit else (None, text)
        docname = target.strip().lstrip("/")
        # Pages with {chapter} links are re-read at every build (see below), so they follow the TOC.
        if not hasattr(env, "minidiff_chapter_docs"):
            env.minidiff_chapter_docs = set()
        env.minidiff_chapter_docs.add(env.docname)
        if docname not in env.found_docs:
            label = f"{title or docname} (in preparation)"
            return [nodes.inline(rawtext, label, classes=["minidiff-todo"])], []
        node = addnodes.pending_xref(rawtext, refdomain="std", reftype="doc", reftarget=f"/{docname}",
                                     refexplicit=bool(title), refwarn=True, refdoc=env.docname)
        node += nodes.inline(rawtext, title or docname, classes=["xref", "std", "std-doc"])
        return [node], []

    def dedupe_scripts(app, pagename, templatename, context, doctree):
        seen, unique = set(), []
        for js in context.get("script_files", []):
            # The same inline script is registered once with filename None and once with "".
            attributes = tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items()))
            key = (str(getattr(js, "filename", js) or ""), attributes)
            if key not in seen:
                seen.add(key)
                unique.append(js)
        context["script_files"] = unique

    def reread_chapter_links(app, env, added, changed, removed):
        return sorted(getattr(env, "minidiff_chapter_docs", set()) & env.found_docs - removed)

    def purge(app, env, docname):
        getattr(env, "minidiff_chapter_docs", set()).discard(docname)

    app.connect("env-get-outdated", reread_chapter_links)
    app.connect("env-purge-doc", purge)
    app.set_html_assets_policy("always")
    app.connect("doctree-resolved", drop_cdn_font_awesome)
    app.connect("doctree-read", tidy_notebook_cells)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_role("src", src_role)
    app.add_role("chapter", chapter_role)
    # env_version: a new version makes Sphinx re-read every page, so a change here reaches the
    # pickled doctrees of an earlier build (raise it when a doctree-read handler changes).
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
