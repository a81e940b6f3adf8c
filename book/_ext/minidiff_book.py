"""The book's Sphinx extension: two cross-reference roles and two fixes for the offline HTML.

- ``{src}`tests/test_forward.py::test_one_step_has_eq2_moments``` renders as that text, linked to
  ``<repository url>/blob/<branch>/tests/test_forward.py``. The URL and branch come from the
  ``repository:`` section of _config.yml (via ``html_theme_options``), the one place they are set.
- ``{chapter}`notebooks/01_forward_process``` links to that chapter (with its title) when it is in
  the table of contents, and renders as plain text otherwise, so pages can name chapters that are
  still being written without breaking the strict (``-W -n``) build. The page is rebuilt when the
  chapter's notebook appears or changes.
- MathJax (served from the build) is loaded on every page, so math in the navigation renders
  on pages whose own content has none.
- Each inline script is written once per page: sphinx-thebe's configuration script otherwise
  appears twice and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations

from docutils import nodes
from sphinx import addnodes


def _repo_base(app) -> str:
    opts = app.config.html_theme_options or {}
    url = str(opts.get("repository_url", "")).rstrip("/")
    branch = opts.get("repository_branch", "main") or "main"
    if not url:
        raise ValueError("the {src} role needs repository.url in _config.yml")
    return f"{url}/blob/{branch}"


def setup(app):
    def src_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        path = text.split("::", 1)[0].strip()
        node = nodes.reference(rawtext, "", refuri=f"{_repo_base(app)}/{path}", classes=["minidiff-src"])
        node += nodes.literal(text, text)
        return [node], []

    def chapter_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        env = inliner.document.settings.env
        docname = text.strip().lstrip("/")
        # A missing file counts as changed at every build, so this page is re-read once it exists.
        env.note_dependency(env.relfn2path(f"/{docname}.ipynb")[1])
        if docname not in env.found_docs:
            return [nodes.inline(rawtext, f"{docname}.ipynb (in preparation)", classes=["minidiff-todo"])], []
        node = addnodes.pending_xref(rawtext, refdomain="std", reftype="doc", reftarget=f"/{docname}",
                                     refexplicit=False, refwarn=True, refdoc=env.docname)
        node += nodes.inline(rawtext, docname, classes=["xref", "std", "std-doc"])
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

    app.set_html_assets_policy("always")
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_role("src", src_role)
    app.add_role("chapter", chapter_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
